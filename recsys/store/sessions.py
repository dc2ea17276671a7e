"""Live sessions: per user, the recent events (item, event, timestamp), capped in length, with a TTL."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from recsys.errors import CorruptValueError
from recsys.store.backend import KVBackend
from recsys.store.keys import Keys


@dataclass(frozen=True)
class SessionEvent:
    item_id: str
    event: str
    timestamp: float

    def encode(self) -> bytes:
        return f"{self.item_id}\t{self.event}\t{self.timestamp:.3f}".encode()

    @classmethod
    def decode(cls, raw: bytes) -> SessionEvent:
        """One stored entry; CorruptValueError unless it is UTF-8 `item\tevent\tts` with a finite ts."""
        try:
            item, event, ts = raw.decode("utf-8").split("\t")
            seconds = float(ts)
        except (UnicodeDecodeError, ValueError) as exc:  # wrong arity, not a number, not UTF-8
            raise CorruptValueError(f"malformed session entry {raw[:60]!r}: {exc}") from exc
        if not item or not event or not math.isfinite(seconds):
            raise CorruptValueError(f"malformed session entry {raw[:60]!r}: empty field or non-finite time")
        return cls(item, event, seconds)


class SessionStore:
    """`{ns}:s:{user}` lists; the serving read gets them through `Store.read_user` in its round trip."""

    def __init__(self, backend: KVBackend, keys: Keys, *, max_events: int = 50, ttl_seconds: int = 1800) -> None:
        self._backend = backend
        self._keys = keys
        self.max_events = max_events
        self.ttl_seconds = ttl_seconds

    def append(self, user_id: str, events: Iterable[SessionEvent]) -> None:
        """Append, keep the newest `max_events`, and restart the inactivity TTL: one atomic step."""
        payload = [e.encode() for e in events]
        if payload:
            self._backend.list_append(self._keys.session(user_id), payload, self.max_events,
                                      self.ttl_seconds * 1000)

    def get(self, user_id: str) -> list[SessionEvent]:
        """The well-formed events of the user's session (malformed entries are skipped)."""
        return decode_session(self._backend.list_range(self._keys.session(user_id)))[0]

    def delete(self, user_id: str) -> None:
        self._backend.delete(self._keys.session(user_id))


def decode_session(raw: list[bytes]) -> tuple[list[SessionEvent], list[str]]:
    """The well-formed entries, and why each other one was skipped: a malformed entry (written by hand, a
    bug, another writer) costs that entry, never the user's requests, and later valid events still count."""
    events: list[SessionEvent] = []
    problems: list[str] = []
    for r in raw:
        try:
            events.append(SessionEvent.decode(r))
        except CorruptValueError as exc:
            problems.append(str(exc))
    return events, problems
