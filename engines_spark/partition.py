"""The executor side of the Spark refresh: top-N and the store write for one partition of users.

No Spark import here: Spark hands each partition to `write_partition` as Arrow record batches, and
everything in it is numpy, pyarrow and the library (the same `generate_candidates` and the same
codec as the local engine). What the driver sends along (`TopNPayload`) travels as bytes made of
JSON and `.npy`/FAISS serialisations, never pickle.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from recsys.candidates.generate import generate_candidates
from recsys.candidates.index import ItemIndex
from recsys.engines.publish import write_user_rows
from recsys.store import open_store

# What a partition returns to the driver: users written and their candidate bytes (no user data).
RESULT_SCHEMA = pa.schema([("users", pa.int64()), ("bytes", pa.int64())])
RESULT_DDL = "users long, bytes long"  # the same, as Spark's mapInArrow wants it


@dataclass
class TopNPayload:
    """Everything a partition needs, built once by the driver and broadcast."""

    store_url: str
    namespace: str
    version: str
    n_candidates: int
    history_limit: int
    wide: bool  # u32 item indices: decided for the whole version, so a blob does not depend on its partition
    index_kind: str
    index_bytes: bytes
    item_factors: np.ndarray  # float32 [n_items, factors]
    popular: np.ndarray  # int64, item indices by descending popularity (the fill order)

    def to_bytes(self) -> bytes:
        head = json.dumps({"store_url": self.store_url, "namespace": self.namespace, "version": self.version,
                           "n_candidates": self.n_candidates, "history_limit": self.history_limit,
                           "wide": self.wide, "index_kind": self.index_kind}).encode()
        arrays = io.BytesIO()
        np.savez(arrays, item_factors=self.item_factors, popular=self.popular,
                 index=np.frombuffer(self.index_bytes, dtype=np.uint8))
        body = arrays.getvalue()
        return len(head).to_bytes(8, "little") + head + body

    @classmethod
    def from_bytes(cls, data: bytes) -> TopNPayload:
        size = int.from_bytes(data[:8], "little")
        head = json.loads(data[8:8 + size])
        with np.load(io.BytesIO(data[8 + size:]), allow_pickle=False) as f:
            return cls(**head, index_bytes=f["index"].tobytes(), item_factors=f["item_factors"],
                       popular=f["popular"])


@dataclass
class _Worker:
    payload: TopNPayload
    index: ItemIndex


# One deserialised payload per Python worker and version: Spark reuses workers across tasks, and
# rebuilding a FAISS index per partition would cost more than the partition's search.
_WORKERS: dict[str, _Worker] = {}


def _worker(payload_bytes: bytes) -> _Worker:
    payload = TopNPayload.from_bytes(payload_bytes)
    cached = _WORKERS.get(payload.version)
    if cached is None:
        import faiss

        faiss.omp_set_num_threads(1)  # Spark runs one task per core: a task must not take them all
        _WORKERS.clear()
        cached = _Worker(payload, ItemIndex.from_bytes(payload.index_bytes, payload.index_kind))
        _WORKERS[payload.version] = cached
    return cached


@dataclass
class UserRows:
    """One Arrow batch decoded: users, their factors, all their distinct items and their recent history."""

    user_ids: list[str]
    factors: np.ndarray  # float32 [users, factors]
    seen: sp.csr_matrix  # users × items
    history_indptr: np.ndarray  # int64 [users + 1]
    history_indices: np.ndarray  # int32, oldest first within a user

    @classmethod
    def from_batch(cls, batch: pa.RecordBatch, n_items: int, history_limit: int) -> UserRows:
        """Columns: user_id (string), features (list<float>), items (list<int>: the user's distinct items
        ordered by (last time, item index), as the local engine orders histories)."""
        user_ids = batch.column("user_id").to_pylist()
        n = len(user_ids)
        features = batch.column("features")
        factors = np.asarray(features.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(n, -1)
        items_col = batch.column("items")
        offsets = np.asarray(items_col.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
        offsets = offsets - offsets[0]
        items = np.asarray(items_col.flatten().to_numpy(zero_copy_only=False), dtype=np.int32)
        lengths = np.diff(offsets)
        # A copy: Arrow's buffers are read-only, and sorting the seen matrix must not reorder the history.
        seen = sp.csr_matrix((np.ones(items.size, dtype=np.float32), items.copy(), offsets.copy()),
                             shape=(n, n_items))
        seen.sort_indices()
        # The history is the tail of the time-ordered list: its last `history_limit` items.
        from_end = np.repeat(offsets[1:], lengths) - np.arange(items.size) - 1
        keep = from_end < history_limit
        history_indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.minimum(lengths, history_limit), out=history_indptr[1:])
        return cls(user_ids, factors, seen, history_indptr, items[keep])


def write_partition(batches: Iterator[pa.RecordBatch], payload_bytes: bytes) -> Iterator[pa.RecordBatch]:
    """Top-N unseen items per user (the local engine's `generate_candidates`), encoded with the shared
    codec and written into the driver's staging version; yields one (users, bytes) row per batch.

    Writing from the partition keeps candidates off the driver. Nothing written here is visible: the
    driver flips the pointer only after every partition has returned, and abandons the version otherwise.
    """
    worker = _worker(payload_bytes)
    p = worker.payload
    n_items = int(p.item_factors.shape[0])
    store = open_store(p.store_url, namespace=p.namespace)
    try:
        writer = store.candidates.join(p.version)
        for batch in batches:
            if batch.num_rows == 0:
                continue
            rows = UserRows.from_batch(batch, n_items, p.history_limit)
            lists = generate_candidates(rows.factors, p.item_factors, worker.index, rows.seen, p.popular,
                                        p.n_candidates)
            written = write_user_rows(writer, rows.user_ids, lists.items, lists.scores, lists.n_primary,
                                      rows.history_indptr, rows.history_indices, 0, len(rows.user_ids),
                                      wide=p.wide)
            yield pa.RecordBatch.from_pydict({"users": [len(rows.user_ids)], "bytes": [written]},
                                             schema=RESULT_SCHEMA)
    finally:
        store.close()
