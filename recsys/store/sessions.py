"""Live sessions: per user, the recent events (item, event, timestamp), capped in length, with a TTL."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
        item, event, ts = raw.decode().split("\t")
        return cls(item, event, float(ts))


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
        return decode_session(self._backend.list_range(self._keys.session(user_id)))

    def delete(self, user_id: str) -> None:
        self._backend.delete(self._keys.session(user_id))


def decode_session(raw: list[bytes]) -> list[SessionEvent]:
    return [SessionEvent.decode(r) for r in raw]
