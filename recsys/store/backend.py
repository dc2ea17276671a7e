"""The byte-level operations a store backend provides; every domain store is written on top of them.

Backends know keys and bytes only: no versions, users or sessions (those are the domain stores'
business, see `recsys.store.Store`). Every failure surfaces as a `StoreError` subclass
(`StoreUnavailableError` when the store cannot serve the call), never as a driver exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class BreakerStats:
    """The circuit breaker of a networked backend, for /metrics."""

    open: bool
    rejected_calls: int
    outages: int


class KVBackend(Protocol):
    """Minimal byte-level operations; Redis and the embedded SQLite file both implement them."""

    url: str
    # True when keys live in different slots of a Redis Cluster: one round trip may only read keys of
    # one slot (the user's hash tag), so global keys (the version pointer) stay out of serving reads.
    clustered: bool

    def ping(self) -> bool: ...

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_ms: int | None = None) -> None: ...

    def set_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Write all `items` in one batch (one MSET / one transaction); the caller sizes the batch."""

    def delete(self, *keys: str) -> None: ...

    def set_if_absent(self, key: str, value: bytes, ttl_ms: int) -> bool: ...

    def compare_and_delete(self, key: str, value: bytes) -> bool: ...

    def compare_and_expire(self, key: str, value: bytes, ttl_ms: int) -> bool: ...

    def expire_prefix(self, prefix: str, ttl_ms: int) -> int:
        """Give every key under `prefix` a TTL (0 deletes them now); returns how many keys."""

    def list_append(self, key: str, values: Sequence[bytes], max_len: int, ttl_ms: int | None) -> None:
        """Append, keep the last `max_len`, and (re)set the TTL: one atomic step."""

    def list_range(self, key: str) -> list[bytes]: ...

    def fetch(self, keys: Sequence[str], lists: Sequence[str]) -> tuple[list[bytes | None], list[list[bytes]]]:
        """GET each of `keys` and read each list of `lists`, in one round trip."""

    def breaker(self) -> BreakerStats | None:
        """The circuit breaker's state, or None for a backend without one (the embedded file)."""

    def close(self) -> None: ...
