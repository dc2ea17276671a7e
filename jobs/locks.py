"""Store-side job locks shared by every scheduler on the store.

Two keys guard a scheduled job:
- the *tick claim* `lock:{job}:tick:{fire time}` (SET NX, never released, expires after the misfire window):
  the first scheduler to claim a tick runs it and the others skip it, so a tick runs once even when one
  scheduler finishes before another wakes up;
- the *run lock* `lock:{job}` (SET NX PX, renewed every ttl/3 while the job runs, released by compare-and-
  delete): no two runs of a job overlap, whichever tick or trigger started them. A renewal that fails (the
  lock expired: process stalled longer than the TTL, or the store went away) marks the lock lost, and the
  job must not publish after that.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

from recsys.errors import StoreUnavailableError
from recsys.store import Store

log = logging.getLogger(__name__)


def tick_id(fire_time: datetime) -> str:
    """A scheduled fire time as the same string on every machine (UTC, seconds)."""
    return fire_time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def claim_tick(store: Store, job: str, tick: str, ttl_seconds: float) -> bool:
    """True for exactly one caller per (job, tick) while the claim lives."""
    return store.locks.acquire(f"{job}:tick:{tick}", ttl_seconds) is not None


class JobLock:
    """The run lock of one job, renewed by a daemon thread while held."""

    def __init__(self, store: Store, name: str, ttl_seconds: float,
                 renew_every: float | None = None) -> None:
        self.store = store
        self.name = name
        self.ttl_seconds = ttl_seconds
        self.renew_every = renew_every if renew_every is not None else ttl_seconds / 3.0
        self.token: str | None = None
        self.lost = threading.Event()
        self.renewals = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        self.token = self.store.locks.acquire(self.name, self.ttl_seconds)
        if self.token is None:
            return False
        self._stop.clear()
        self.lost.clear()
        self._thread = threading.Thread(target=self._renew_loop, name=f"lock-renew-{self.name}", daemon=True)
        self._thread.start()
        return True

    def _renew_loop(self) -> None:
        assert self.token is not None
        while not self._stop.wait(self.renew_every):
            try:
                ok = self.store.locks.renew(self.name, self.token, self.ttl_seconds)
            except StoreUnavailableError as exc:
                # Keep trying until the TTL runs out: a blip shorter than the TTL loses nothing.
                log.warning("event=lock_renew_error job=%s error=%r", self.name, str(exc))
                continue
            if not ok:
                log.error("event=lock_lost job=%s", self.name)
                self.lost.set()
                return
            self.renewals += 1

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.token is not None and not self.lost.is_set():
            try:
                self.store.locks.release(self.name, self.token)
            except StoreUnavailableError as exc:  # it expires by itself within one TTL
                log.warning("event=lock_release_error job=%s error=%r", self.name, str(exc))
        self.token = None
