"""Named locks in the store (SET NX PX with a random token; renew and release only with that token)."""

from __future__ import annotations

import secrets

from recsys.store.backend import KVBackend
from recsys.store.keys import Keys


class LockStore:
    def __init__(self, backend: KVBackend, keys: Keys) -> None:
        self._backend = backend
        self._keys = keys

    def acquire(self, name: str, ttl_seconds: float) -> str | None:
        """The lock's token when this caller got it, None when someone holds it."""
        token = secrets.token_hex(8)
        ok = self._backend.set_if_absent(self._keys.lock(name), token.encode(), int(ttl_seconds * 1000))
        return token if ok else None

    def renew(self, name: str, token: str, ttl_seconds: float) -> bool:
        return self._backend.compare_and_expire(self._keys.lock(name), token.encode(), int(ttl_seconds * 1000))

    def release(self, name: str, token: str) -> bool:
        return self._backend.compare_and_delete(self._keys.lock(name), token.encode())

    def holder(self, name: str) -> str | None:
        """The token holding the lock now, None when it is free."""
        raw = self._backend.get(self._keys.lock(name))
        return raw.decode() if raw is not None else None
