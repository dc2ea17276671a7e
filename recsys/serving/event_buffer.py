"""Session events that arrived while the store was down, kept in memory and written when it returns.

Why: a Redis outage must not turn `POST /v1/events` into errors nor lose the events. The buffer is
bounded (events beyond it are refused, so a long outage cannot grow the process), per process (an
API replica that dies loses what it holds), and replays in arrival order once the store answers.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from recsys.errors import RecsysError, StoreUnavailableError
from recsys.store import SessionEvent
from recsys.store.sessions import SessionStore

log = logging.getLogger(__name__)


class EventBuffer:
    def __init__(self, sessions: SessionStore, *, max_events: int) -> None:
        self.sessions = sessions
        self.max_events = max_events
        self._pending: deque[tuple[str, list[SessionEvent]]] = deque()
        self._count = 0
        self._lock = threading.Lock()
        # One replay at a time: two threads replaying the same head entry wrote it twice and then
        # popped two entries, losing one (or popped an empty deque: a 500 on POST /v1/events).
        self._replaying = threading.Lock()

    @property
    def pending(self) -> int:
        return self._count

    def append(self, user_id: str, events: list[SessionEvent]) -> bool:
        """Write to the store, or buffer when it is down. False: store down and buffer full."""
        if self._count:
            self.flush()  # a backlog goes first: events stay in arrival order
        if self._count == 0:
            try:
                self.sessions.append(user_id, events)
                return True
            except StoreUnavailableError:
                pass
        with self._lock:
            if self._count + len(events) > self.max_events:
                return False
            self._pending.append((user_id, events))
            self._count += len(events)
        return True

    def flush(self) -> int:
        """Replay buffered events in order; stops at the first store failure. Returns events written.

        A call while another thread is replaying returns 0 at once: that replay drains the buffer,
        including what is appended meanwhile, and `append` keeps new events behind the backlog.
        """
        if not self._replaying.acquire(blocking=False):
            return 0
        try:
            return self._replay()
        finally:
            self._replaying.release()

    def _replay(self) -> int:
        written = 0
        while True:
            with self._lock:
                if not self._pending:
                    return written
                user_id, events = self._pending[0]
            try:
                self.sessions.append(user_id, events)
            except RecsysError:
                return written
            with self._lock:
                self._pending.popleft()
                self._count -= len(events)
            written += len(events)
            if written and not self._pending:
                log.info("event=buffered_events_replayed events=%d", written)
