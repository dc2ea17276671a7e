"""Candidate Recall@100 on ml-100k: the Spark engine against the implicit (local) engine, same protocol.

    python benchmarks/spark_recall.py --data ../shared/data/ml-100k          # grid + both engines
    python benchmarks/spark_recall.py --data … --reg 0.1 --alpha 1           # skip the grid

Protocol (tests/integration/test_refresh.py's ml-100k recall test): DESIGN.md §6 session-holdout; each
engine refreshes on the training part and publishes into a store; Recall@100 of the published lists
over the held-out targets, read back from the store as serving reads them. Seeds: the same ALS seed
(RECSYS_SEED / --seed) for both engines.

Spark's regParam and alpha are chosen on an inner split (session-holdout of the training part), never
on the test users: each grid point fits MLlib ALS on the inner training part and scores the inner
targets with the same top-N code. Results go to benchmarks/results/spark_recall.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engines_spark import run_spark_refresh  # noqa: E402
from engines_spark.refresh import _distinct_pairs, _fit_als, _item_factors  # noqa: E402
from engines_spark.session import partitions_of, spark_session  # noqa: E402
from recsys.candidates.generate import generate_candidates  # noqa: E402
from recsys.candidates.index import ItemIndex  # noqa: E402
from recsys.candidates.matrix import code_interactions  # noqa: E402
from recsys.candidates.popularity import popular_order  # noqa: E402
from recsys.config import Settings  # noqa: E402
from recsys.data.loaders import load_dataset  # noqa: E402
from recsys.data.splits import session_holdout  # noqa: E402
from recsys.engines.local import run_refresh  # noqa: E402
from recsys.evaluation.metrics import recall_at  # noqa: E402
from recsys.store import Store, open_store  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"


def published_recall(store: Store, version: str, targets: dict[str, list[str]]) -> float:
    item_ids = store.candidates.item_ids(version)
    recalls = []
    for user, wanted in targets.items():
        rec = store.read_user(version, user).candidates
        recalls.append(recall_at([item_ids[i] for i in rec[0]] if rec is not None else [], wanted, 100))
    return float(np.mean(recalls))


def inner_recall(spark, settings: Settings, train: pl.DataFrame, targets: dict[str, list[str]],  # type: ignore[no-untyped-def]
                 work: Path) -> float:
    """MLlib ALS on `train` with settings.spark's hyperparameters; Recall@100 of its top-N on `targets`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    coded = code_interactions(train)
    matrix = coded.to_matrix()
    path = work / f"inner-{time.monotonic_ns()}.parquet"
    pq.write_table(pa.table({"user": coded.user, "item": coded.item, "ts": coded.timestamp}), path)
    partitions = partitions_of(spark, settings.spark)
    pairs = _distinct_pairs(spark, path, partitions)
    model = _fit_als(settings, pairs, partitions)
    items = _item_factors(model.itemFactors, matrix.n_items, settings.spark.factors)
    users = _item_factors(model.userFactors, matrix.n_users, settings.spark.factors)  # same layout: id, features
    pairs.unpersist()
    popular = popular_order(np.asarray(matrix.matrix.sum(axis=0)).ravel())
    lists = generate_candidates(users, items, ItemIndex("flat").fit(items), matrix.matrix, popular, 100)
    row = matrix.user_index()
    recalls = [recall_at([str(matrix.item_ids[i]) for i in lists.row(row[u])[0]], t, 100)
               for u, t in targets.items() if u in row]
    return float(np.mean(recalls))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "ml-100k"))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--reg", type=float, nargs="*", default=[0.03, 0.1, 0.3])
    ap.add_argument("--alpha", type=float, nargs="*", default=[1.0, 4.0])
    ap.add_argument("--json", default=str(RESULTS / "spark_recall.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    ds = load_dataset(args.data)
    split = session_holdout(ds.interactions)
    inner = session_holdout(split.train)
    work = Path(tempfile.mkdtemp(prefix="spark-recall-"))
    settings = Settings(artifacts_dir=work / "art", store_url=f"embedded://{work / 'store.sqlite'}", seed=args.seed)
    settings.als.random_state = args.seed
    settings.spark.master = args.master
    spark = spark_session(settings.spark)
    grid = []
    try:
        for reg, alpha in itertools.product(args.reg, args.alpha):
            settings.spark.reg_param, settings.spark.alpha = reg, alpha
            started = time.perf_counter()
            value = inner_recall(spark, settings, inner.train, inner.targets, work)
            grid.append({"reg_param": reg, "alpha": alpha, "inner_recall@100": round(value, 4),
                         "seconds": round(time.perf_counter() - started, 1)})
            print(json.dumps(grid[-1]), flush=True)
        best = max(grid, key=lambda g: g["inner_recall@100"])
        settings.spark.reg_param, settings.spark.alpha = best["reg_param"], best["alpha"]

        train = ds.with_interactions(split.train)
        rows = []
        for engine in ("local", "spark"):
            store = open_store(f"embedded://{work / f'{engine}.sqlite'}")
            started = time.perf_counter()
            if engine == "spark":
                result = run_spark_refresh(settings, store, train, force=True, spark=spark)
            else:
                result = run_refresh(settings, store, train, force=True)
            rows.append({"engine": engine, "recall@100": round(published_recall(store, result.version,
                                                                                split.targets), 4),
                         "users": result.users, "items": result.items, "eval_users": len(split.targets),
                         "seconds": round(time.perf_counter() - started, 1)})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        spark.stop()
    out = {"protocol": "session-holdout (DESIGN.md §6), refresh on the training part, published lists",
           "seed": args.seed, "master": args.master, "implicit_als": settings.als.model_dump(),
           "spark_als": settings.spark.model_dump(include={"factors", "reg_param", "alpha", "iterations"}),
           "inner_grid": grid, "engines": rows,
           "difference": round(rows[1]["recall@100"] - rows[0]["recall@100"], 4),
           "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2))
    print("| engine | Recall@100 | seconds |\n|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {r['recall@100']:.4f} | {r['seconds']} |")


if __name__ == "__main__":
    main()
