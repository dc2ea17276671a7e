"""The key-value primitives a store backend provides; everything above is backend-agnostic."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class KVBackend(Protocol):
    """Minimal byte-level operations; Redis and the embedded SQLite file both implement them."""

    url: str

    def ping(self) -> bool: ...

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_ms: int | None = None) -> None: ...

    def set_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        """Write many keys in one batch (pipelined / one transaction)."""

    def delete(self, *keys: str) -> None: ...

    def set_if_absent(self, key: str, value: bytes, ttl_ms: int) -> bool: ...

    def compare_and_delete(self, key: str, value: bytes) -> bool: ...

    def compare_and_expire(self, key: str, value: bytes, ttl_ms: int) -> bool: ...

    def expire_prefix(self, prefix: str, ttl_ms: int) -> int:
        """Give every key under `prefix` a TTL (0 deletes them now); returns how many keys."""

    def list_append(self, key: str, values: list[bytes], max_len: int, ttl_ms: int | None) -> None:
        """Append, keep the last `max_len`, and (re)set the TTL: one atomic step."""

    def list_range(self, key: str) -> list[bytes]: ...

    def read_user(self, keys: list[str], list_key: str | None) -> tuple[list[bytes | None], list[bytes]]:
        """GET each of `keys` and read `list_key`, in one round trip."""

    def memory_usage(self, key: str) -> int | None:
        """Bytes the backend itself accounts for `key` (Redis MEMORY USAGE), None when unknown."""

    def close(self) -> None: ...
