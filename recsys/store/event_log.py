"""The append-only event and impression logs, their readers' acknowledgements, and forget requests.

Two logs (`STREAMS`): `events` (every accepted event) and `impressions` (every served list). Records
are opaque bytes here (their format is recsys.events.records). One reader consumes them today, the
lake ingest: it reads after its acknowledged id, commits what it read to the lake, then acknowledges
and trims. The trim never passes the acknowledged id, so an entry leaves the store only once the lake
has it (see docs/loop.md, "Exactly once").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from recsys.store.backend import KVBackend, LogInfo, parse_log_id
from recsys.store.keys import Keys

EVENTS = "events"
IMPRESSIONS = "impressions"
STREAMS = (EVENTS, IMPRESSIONS)
DEFAULT_MAX_LEN = 1_000_000


@dataclass(frozen=True)
class LogState:
    """A log's length, id range and the acknowledged id: what the lag gauges report."""

    stream: str
    length: int
    first_id: str | None
    last_id: str | None
    acked_id: str | None
    max_len: int

    @property
    def fill(self) -> float:
        """Share of the cap in use: near 1 the oldest unread entries are about to be trimmed (alert)."""
        return self.length / self.max_len if self.max_len else 0.0


def _check_stream(stream: str) -> None:
    if stream not in STREAMS:
        raise ValueError(f"unknown log {stream!r}; known: {STREAMS}")


class EventLogStore:
    def __init__(self, backend: KVBackend, keys: Keys, *, max_len: int = DEFAULT_MAX_LEN) -> None:
        self._backend = backend
        self._keys = keys
        self.max_len = max_len

    def append(self, stream: str, records: Sequence[bytes]) -> list[str]:
        """Append encoded records in order, one round trip; returns their ids."""
        _check_stream(stream)
        return self._backend.log_append(self._keys.log(stream), records, self.max_len)

    def read(self, stream: str, after: str | None, count: int) -> list[tuple[str, bytes]]:
        """Up to `count` (id, record) pairs after `after` (from the oldest when None), oldest first."""
        _check_stream(stream)
        return self._backend.log_read(self._keys.log(stream), after, count)

    def acknowledged(self, stream: str) -> str | None:
        raw = self._backend.get(self._keys.log_acked(stream))
        return raw.decode() if raw else None

    def acknowledge(self, stream: str, upto: str) -> None:
        """Record that every entry up to `upto` is committed downstream; never moves backwards."""
        current = self.acknowledged(stream)
        if current is None or parse_log_id(upto) > parse_log_id(current):
            self._backend.set(self._keys.log_acked(stream), upto.encode())

    def trim_acknowledged(self, stream: str) -> int:
        """Delete what every reader has acknowledged; returns how many entries."""
        acked = self.acknowledged(stream)
        return self._backend.log_trim(self._keys.log(stream), acked) if acked else 0

    def state(self, stream: str) -> LogState:
        info: LogInfo = self._backend.log_info(self._keys.log(stream))
        return LogState(stream, info.length, info.first_id, info.last_id, self.acknowledged(stream),
                        self.max_len)

    def delete_where(self, stream: str, matches: Callable[[bytes], bool], *, batch: int = 5000) -> int:
        """Delete every entry whose record `matches` (a full scan: forgetting a user); returns how many."""
        key = self._keys.log(stream)
        after: str | None = None
        doomed: list[str] = []
        while rows := self._backend.log_read(key, after, batch):
            doomed += [i for i, record in rows if matches(record)]
            after = rows[-1][0]
        return self._backend.log_delete(key, doomed)

    # ---- forget requests (sha256 hex of the user id: the store keeps no plain id) ------------------
    def request_forget(self, user_hash: str) -> None:
        self._backend.list_append(self._keys.forget, [user_hash.encode()], 1_000_000, None)

    def forget_requests(self) -> list[str]:
        return sorted({raw.decode() for raw in self._backend.list_range(self._keys.forget)})

    def clear_forget_requests(self, user_hashes: Sequence[str]) -> None:
        self._backend.list_remove(self._keys.forget, [h.encode() for h in user_hashes])
