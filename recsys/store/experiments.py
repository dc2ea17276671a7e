"""Experiment definitions in the store: one JSON object under `{ns}:experiments`, read by every replica.

One value rather than a key per experiment so that a replica's poll is one GET and sees every
experiment at the same instant (the traffic slices of running experiments never overlap in what a
replica holds). Writes are read-modify-write under a short store lock: admin changes are rare, and two
admins creating at once must not lose one of the two definitions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from recsys.errors import StoreUnavailableError
from recsys.store.backend import KVBackend
from recsys.store.codec import decode_experiments, encode_experiments
from recsys.store.keys import Keys
from recsys.store.locks import LockStore

LOCK_NAME = "experiments"
LOCK_TTL_S = 10.0
LOCK_WAIT_S = 5.0

Definitions = dict[str, dict[str, Any]]


class ExperimentStore:
    def __init__(self, backend: KVBackend, keys: Keys, locks: LockStore) -> None:
        self._backend = backend
        self._key = keys.experiments
        self._locks = locks

    def all(self) -> Definitions:
        """Every stored definition by name (empty when none); CorruptValueError when the value is damaged."""
        raw = self._backend.get(self._key)
        return decode_experiments(raw) if raw is not None else {}

    def update(self, change: Callable[[Definitions], Definitions]) -> Definitions:
        """Apply `change` to the stored definitions atomically (under the lock) and return what was written.

        `change` may raise to write nothing (its error propagates).
        """
        deadline = time.monotonic() + LOCK_WAIT_S
        while (token := self._locks.acquire(LOCK_NAME, LOCK_TTL_S)) is None:
            if time.monotonic() > deadline:
                raise StoreUnavailableError("another experiment change holds the lock; try again")
            time.sleep(0.05)
        try:
            new = change(self.all())
            self._backend.set(self._key, encode_experiments(new))
            return new
        finally:
            self._locks.release(LOCK_NAME, token)
