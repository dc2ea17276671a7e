"""The item catalogue (DESIGN.md §11): versioned apart from candidate versions, applied on the next request.

The whole catalogue is one blob and a version counter, written together in one MSET under the
`catalogue` lock (read, change, write: concurrent admin writes never lose each other's changes). A
serving process reads only the counter per request (in its one serving round trip) and reloads the
blob when the counter moved, so a change reaches every replica on its next request. One blob keeps
the read whole and consistent; its cost is a rewrite per change, fine for catalogues of up to ~100k
items (bulk writes batch up to 1,000 items in one rewrite).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from recsys.errors import StoreUnavailableError
from recsys.store.backend import KVBackend
from recsys.store.codec import decode_catalogue, encode_catalogue
from recsys.store.item_record import ItemRecord
from recsys.store.keys import Keys
from recsys.store.locks import LockStore

LOCK_NAME = "catalogue"
LOCK_TTL_SECONDS = 30.0
LOCK_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class CatalogueSnapshot:
    """The catalogue at one version (tombstones of deleted items included)."""

    version: int
    items: dict[str, ItemRecord]

    def live(self) -> list[ItemRecord]:
        return [it for it in self.items.values() if not it.deleted]


Change = Callable[[dict[str, ItemRecord]], Iterable[ItemRecord]]


class CatalogueStore:
    def __init__(self, backend: KVBackend, keys: Keys, locks: LockStore) -> None:
        self._backend = backend
        self._keys = keys
        self._locks = locks

    def version(self) -> int:
        """The catalogue version (0: never written). One GET: cheap enough for every request."""
        return parse_catalogue_version(self._backend.get(self._keys.catalogue_version))

    def snapshot(self) -> CatalogueSnapshot:
        """The whole catalogue (CorruptValueError when the blob does not decode)."""
        raw = self._backend.get(self._keys.catalogue_data)
        if raw is None:
            return CatalogueSnapshot(0, {})
        version, items = decode_catalogue(raw)
        return CatalogueSnapshot(version, {it.item_id: it for it in items})

    def write(self, change: Change) -> tuple[CatalogueSnapshot, list[ItemRecord]]:
        """Apply `change` (current items → the records to store) under the lock; returns the new snapshot
        and the records written. `change` may raise to write nothing."""
        token = self._acquire()
        try:
            current = self.snapshot()
            items = dict(current.items)
            written = list(change(items))
            for it in written:
                items[it.item_id] = it
            if not written:
                return current, []
            version = current.version + 1
            self._backend.set_many([(self._keys.catalogue_data, encode_catalogue(version, items.values())),
                                    (self._keys.catalogue_version, str(version).encode())])
            return CatalogueSnapshot(version, items), written
        finally:
            self._locks.release(LOCK_NAME, token)

    def put(self, records: Sequence[ItemRecord]) -> CatalogueSnapshot:
        return self.write(lambda _: records)[0]

    def _acquire(self) -> str:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            token = self._locks.acquire(LOCK_NAME, LOCK_TTL_SECONDS)
            if token is not None:
                return token
            if time.monotonic() > deadline:
                raise StoreUnavailableError(f"the catalogue has been locked by another writer for over "
                                            f"{LOCK_WAIT_SECONDS:.0f} s; retry")
            time.sleep(0.01)


def parse_catalogue_version(raw: bytes | None) -> int:
    """The counter's value; garbage reads as -1 (never equal to a loaded version: forces a reload)."""
    if raw is None:
        return 0
    try:
        return int(raw)
    except ValueError:
        return -1
