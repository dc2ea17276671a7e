"""The Spark engine's executor side without Spark: a partition writes the bytes the local engine writes.

`engines_spark.partition` imports no pyspark, so this runs in the default install. Given the same
factors, the partition's top-N + codec + store write must equal the local publish user for user:
that is what lets serving not tell the engines apart.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from engines_spark.partition import TopNPayload, UserRows, write_partition
from recsys.candidates.matrix import code_interactions
from recsys.candidates.pipeline import HISTORY_LIMIT, build_candidates_coded
from recsys.config import ALSConfig, CandidateConfig
from recsys.engines.publish import publish_artifacts
from recsys.store import Store, open_store
from tests.helpers import clustered_interactions

REPO = Path(__file__).resolve().parents[2]


def _user_batches(coded, user_factors: np.ndarray, rows: np.ndarray) -> pa.RecordBatch:  # type: ignore[no-untyped-def]
    """Spark's per-user rows: distinct items ordered by (last time, item), as the engine's groupBy builds them."""
    items_per_user = []
    for u in rows.tolist():
        mask = coded.user == u
        last: dict[int, int] = {}
        for item, ts in zip(coded.item[mask].tolist(), coded.timestamp[mask].tolist(), strict=True):
            last[item] = max(ts, last.get(item, ts))
        items_per_user.append([i for _, i in sorted((t, i) for i, t in last.items())])
    return pa.RecordBatch.from_pydict({
        "user_id": pa.array(coded.user_ids[rows].tolist(), pa.string()),
        "features": pa.array(user_factors[rows].tolist(), pa.list_(pa.float32())),
        "items": pa.array(items_per_user, pa.list_(pa.int32()))})


def test_a_partition_writes_what_the_local_engine_publishes(tmp_path: Path) -> None:
    inter, items = clustered_interactions(n_users=90, n_items=60, per_user=25, seed=11)
    coded = code_interactions(inter)
    local = build_candidates_coded(coded, items, version="v-local", als_config=ALSConfig(factors=8),
                                   candidate_config=CandidateConfig(n_candidates=40))
    store = open_store(f"embedded://{tmp_path / 'store.sqlite'}")
    publish_artifacts(store, local, version="v-local")
    payload = TopNPayload(store.url, store.namespace, "v-spark", 40, HISTORY_LIMIT, False, "flat",
                          local.bundle.index.to_bytes(),  # type: ignore[union-attr]
                          local.als.item_factors_, np.argsort(-local.bundle.popularity, kind="stable"))
    payload = TopNPayload.from_bytes(payload.to_bytes())  # what an executor receives
    store.candidates.begin("v-spark")
    # Two batches in a shuffled order: a user's blob must not depend on its partition or neighbours.
    order = np.random.default_rng(0).permutation(coded.n_users)
    batches = [_user_batches(coded, local.als.user_factors_, part) for part in np.array_split(order, 2)]
    counts = list(write_partition(iter(batches), payload.to_bytes()))
    assert sum(b.column("users")[0].as_py() for b in counts) == coded.n_users
    both = _blobs(store, "v-local", coded.user_ids.tolist()), _blobs(store, "v-spark", coded.user_ids.tolist())
    assert both[0] == both[1]
    assert all(c is not None and h is not None for c, h in both[1])


def _blobs(store: Store, version: str, users: list[str]) -> list[tuple[bytes | None, bytes | None]]:
    return store.read_user_blobs(version, users)


def test_user_rows_keep_the_last_history_items_oldest_first() -> None:
    batch = pa.RecordBatch.from_pydict({"user_id": ["a", "b"], "features": [[1.0, 0.0], [0.0, 1.0]],
                                        "items": [[5, 3, 9, 1], [2]]})
    rows = UserRows.from_batch(batch.slice(0, 2), n_items=10, history_limit=3)
    assert rows.history_indices.tolist() == [3, 9, 1, 2]  # a's last three, then b's one
    assert rows.history_indptr.tolist() == [0, 3, 4]
    assert rows.seen[0].indices.tolist() == [1, 3, 5, 9]  # every item counts as seen, sorted


def test_the_default_engine_never_imports_spark() -> None:
    code = ("import sys; from jobs.definitions import refresh_engine; from recsys.config import Settings; "
            "fn = refresh_engine(Settings()); assert fn.__module__ == 'recsys.engines.local', fn.__module__; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('pyspark', 'engines_spark', 'py4j')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
