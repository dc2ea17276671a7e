"""A circuit breaker for the store: while it is down, fail in microseconds instead of a socket timeout.

Without it, every request during an outage where Redis does not answer (host frozen, network
black hole) waits the full socket timeout before falling back. Under load those waits hold worker
threads, the pool runs dry and the queue grows without bound: fallbacks that should be instant take
seconds. With it, the first connection failure opens the circuit; calls fail fast for `cooldown_s`;
then exactly one call is let through as a probe (half-open). Its success closes the circuit, its
failure opens it for another cool-down. Other calls keep failing fast while the probe is in flight.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitBreaker:
    """Thread-safe three-state breaker. `cooldown_s <= 0` disables it (every call goes through)."""

    def __init__(self, name: str, cooldown_s: float = 1.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._opened_at = 0.0
        self.opened_count = 0  # outages seen: closed → open transitions
        self.rejected_count = 0  # calls refused without touching the store

    @property
    def state(self) -> str:
        return self._state

    @property
    def enabled(self) -> bool:
        return self.cooldown_s > 0

    def allow(self) -> bool:
        """May a call go to the store now? In half-open state only the one probe may."""
        if not self.enabled:
            return True
        with self._lock:
            if self._state == CLOSED:
                return True
            now = self._clock()
            # After the cool-down one caller becomes the probe. A probe that never reports back (a
            # caller killed mid-call) must not wedge the breaker: after another cool-down, probe again.
            if now - self._opened_at >= self.cooldown_s:
                self._state = HALF_OPEN
                self._opened_at = now
                return True
            self.rejected_count += 1
            return False

    def record_success(self) -> None:
        if not self.enabled or self._state == CLOSED:
            return
        with self._lock:
            if self._state != CLOSED:
                self._state = CLOSED
                log.info("event=circuit_closed store=%s", self.name)

    def record_failure(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            was = self._state
            self._state = OPEN
            self._opened_at = self._clock()
            if was == CLOSED:  # a new outage; a failed probe is the same one going on
                self.opened_count += 1
                log.warning("event=circuit_open store=%s cooldown_s=%.2f", self.name, self.cooldown_s)

    def retry_in(self) -> float:
        """Seconds until the next probe may go out (0 when closed)."""
        if self._state == CLOSED:
            return 0.0
        return max(0.0, self.cooldown_s - (self._clock() - self._opened_at))
