"""The Spark refresh (`recsys refresh --engine spark`): the local engine's contract on Spark.

    driver: load + validate + guardrails (the library's loaders) → code ids → interaction log as Parquet
    Spark:  distinct (user, item) pairs → MLlib ALS (implicit preferences) → item factors to the driver
    driver: FAISS index over item factors, popularity, the item-side bundle (the library's code)
    Spark:  user factors ⋈ each user's items → mapInArrow: top-N unseen (FAISS, broadcast), codec, store write
    driver: every partition returned → items + meta → pointer flip (recsys/engines/publish.py)

Serving cannot tell the engines apart: same keys, same codec, same bundle files. A failure anywhere
before the flip abandons the staging version (nothing published) and deletes the bundle.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engines_spark.partition import RESULT_DDL, TopNPayload, write_partition
from recsys.artifacts import ArtifactRegistry, registry_for
from recsys.candidates.matrix import code_interactions
from recsys.candidates.pipeline import HISTORY_LIMIT, build_item_side, fit_index
from recsys.candidates.popularity import popular_order, popularity_counts_coded
from recsys.config import Settings
from recsys.data.loaders import ColumnMap, Dataset
from recsys.engines.local import RefreshResult, load_refresh_input
from recsys.engines.publish import abandon, finish_version
from recsys.errors import ConfigError, RecsysError
from recsys.progress import NullProgress, Progress
from recsys.store import Store, new_version_id
from recsys.store.codec import index_width
from recsys.timing import Stopwatch, peak_rss_bytes

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


def spark_available() -> bool:
    """pyspark importable and a `java` on PATH: what the engine (and its tests) need."""
    try:
        found = importlib.util.find_spec("pyspark") is not None
    except (ImportError, ValueError):  # a broken or half-removed install counts as missing
        found = False
    return found and shutil.which("java") is not None


def run_spark_refresh(settings: Settings, store: Store, data: str | Path | Dataset | None = None, *,
                      columns: ColumnMap | None = None, progress: Progress | None = None,
                      before_publish: Callable[[], None] | None = None, registry: ArtifactRegistry | None = None,
                      force: bool = False, spark: SparkSession | None = None) -> RefreshResult:
    """`recsys.engines.local.run_refresh` with ALS and the per-user top-N on Spark; same arguments, same
    result, same all-or-nothing publish. `spark`: an existing session (tests); else one is started from
    `settings.spark` and stopped at the end."""
    if store.url.startswith("embedded://:memory:"):
        raise ConfigError("the spark engine writes from its executors: use a store they can open "
                          "(redis://…, redis-cluster://…, or embedded://PATH on one machine)")
    progress = progress or NullProgress()
    registry = registry or registry_for(settings, store)
    cfg = settings.spark
    watch = Stopwatch("refresh")
    checked = load_refresh_input(settings, store, data, columns=columns, force=force, watch=watch)
    dataset, rows_base, rows_lake, lake_upto, guard = (checked.dataset, checked.rows_base, checked.rows_lake,
                                                       checked.lake_upto, checked.guard)
    del checked  # holds the loaded frame: dropping `dataset` below must free it
    source, n_interactions, items, notes = (dataset.source, dataset.interactions.height, dataset.items,
                                            list(dataset.report.notes))
    with watch.stage("code"):
        coded = code_interactions(dataset.interactions)
    del dataset
    with watch.stage("matrix"):
        matrix = coded.to_matrix()

    version = new_version_id()
    work = (cfg.work_dir or settings.artifacts_dir / "spark-tmp") / version
    own_session = spark is None
    try:
        with watch.stage("spark_start"):
            if spark is None:
                from engines_spark.session import spark_session

                spark = spark_session(cfg)
        from engines_spark.session import partitions_of

        partitions = partitions_of(spark, cfg)
        with watch.stage("spark_input"):
            # The coded log as Parquet, read by Spark: in production this is the lake itself.
            work.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table({"user": coded.user, "item": coded.item, "ts": coded.timestamp}),
                           work / "events.parquet")
            pq.write_table(pa.table({"user": np.arange(coded.n_users, dtype=np.int32),
                                     "user_id": pa.array(coded.user_ids.tolist(), pa.string())}),
                           work / "users.parquet")
            pairs = _distinct_pairs(spark, work / "events.parquet", partitions)
        with watch.stage("als"):
            tick = progress.stage("Spark ALS fit", 1)
            model = _fit_als(settings, pairs, partitions)
            item_factors = _item_factors(model.itemFactors, matrix.n_items, cfg.factors)
            tick(1)
        with watch.stage("faiss"):
            index = fit_index(item_factors, matrix.n_items, settings.candidates, seed=settings.als.random_state)
            all_time, recent = popularity_counts_coded(coded, matrix.matrix,
                                                       recent_days=settings.candidates.recent_window_days)
            popular = popular_order(all_time)
        bundle, _ = build_item_side(coded, matrix, items, item_factors, index, (all_time, recent), version=version,
                                    candidate_config=settings.candidates, seed=settings.als.random_state,
                                    watch=watch)
        n_users, n_items = matrix.n_users, matrix.n_items
        del coded, matrix
        with watch.stage("bundle_write"):
            bundle.save(registry, extra={"source": source, "data_format": "spark", "users": n_users,
                                         "interactions": n_interactions, "engine": "spark",
                                         "spark_als": cfg.model_dump(include={"factors", "reg_param", "alpha",
                                                                              "iterations"}),
                                         "candidates": settings.candidates.model_dump()})
        try:
            with watch.stage("topn_publish"):
                payload = TopNPayload(store.url, store.namespace, version, settings.candidates.n_candidates,
                                      HISTORY_LIMIT, index_width(n_items), index.kind, index.to_bytes(), item_factors,
                                      popular.astype(np.int64))
                writer = store.candidates.begin(version)
                users, total_bytes = _write_users(spark, model.userFactors, pairs, work / "users.parquet",
                                                  payload, partitions)
                if users != n_users:
                    raise RecsysError(f"spark refresh: partitions wrote {users} users of {n_users}")
                writer.users_written = users
                finish_version(store, writer, bundle.item_ids, {
                    "items": n_items, "created_at": time.time(), "source": source, "engine": "spark",
                    "interactions": n_interactions, "rows_base": rows_base, "rows_lake": rows_lake,
                    "lake_events_upto": lake_upto, **({"guardrails_forced": guard.problems} if guard.forced else {})},
                    before_publish)
        except BaseException:
            log.error("event=publish_failed version=%s engine=spark", version)
            abandon(store, version)
            registry.delete_bundle(version)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if own_session and spark is not None:
            spark.stop()
    keep = {version} | {str(v["version"]) for v in store.candidates.versions()}
    registry.prune_bundles(keep)
    result = RefreshResult(version=version, users=n_users, items=n_items, interactions=n_interactions,
                           bytes_per_user=total_bytes / n_users if n_users else 0.0, seconds=watch.wall,
                           cpu_seconds=watch.cpu, bundle_path=str(registry.bundle_location(version)), notes=notes,
                           peak_rss_bytes=peak_rss_bytes(), guardrails=guard, rows_base=rows_base,
                           rows_lake=rows_lake)
    if guard.forced:
        result.notes.append("published with --force over the guardrails: " + "; ".join(guard.problems))
    log.info("event=refresh_done version=%s engine=spark master=%s rows_base=%d rows_lake=%d users=%d items=%d "
             "total_s=%.2f driver_peak_rss_mb=%.0f %s", version, cfg.master, rows_base, rows_lake, n_users, n_items,
             result.total_seconds, result.peak_rss_bytes / 2**20,
             " ".join(f"{k}_s={v:.2f}" for k, v in watch.wall.items()))
    return result


def _distinct_pairs(spark: SparkSession, events: Path, partitions: int) -> DataFrame:
    """(user, item, ts): one row per pair with its last time; persisted (ALS and the top-N read it)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    log_df = spark.read.parquet(str(events)).repartition(partitions, "user")
    pairs = log_df.groupBy("user", "item").agg(F.max("ts").alias("ts"))
    return pairs.persist(StorageLevel.MEMORY_AND_DISK)


def _fit_als(settings: Settings, pairs: DataFrame, partitions: int):  # type: ignore[no-untyped-def]
    """MLlib ALS on the binary matrix (every pair counts 1, as in the local engine)."""
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    cfg = settings.spark
    ratings = pairs.select("user", "item", F.lit(1.0).cast("float").alias("rating"))
    als = ALS(rank=cfg.factors, maxIter=cfg.iterations, regParam=cfg.reg_param, alpha=cfg.alpha, implicitPrefs=True,
              seed=settings.als.random_state, userCol="user", itemCol="item", ratingCol="rating",
              numUserBlocks=partitions, numItemBlocks=partitions, coldStartStrategy="drop")
    return als.fit(ratings)


def _item_factors(frame: DataFrame, n_items: int, rank: int) -> np.ndarray:
    """Item factors to the driver in index order (the one large thing collected: items × factors)."""
    table = frame.select("id", "features").toArrow()
    ids = table.column("id").to_numpy()
    values = np.asarray(table.column("features").combine_chunks().flatten().to_numpy(zero_copy_only=False),
                        dtype=np.float32).reshape(-1, rank)
    out = np.zeros((n_items, rank), dtype=np.float32)
    out[ids] = values
    return out


def _write_users(spark: SparkSession, user_factors: DataFrame, pairs: DataFrame, users_path: Path,
                 payload: TopNPayload, partitions: int) -> tuple[int, int]:
    """Every user's top-N written from the partitions; returns (users, candidate bytes) summed on the driver."""
    from pyspark.sql import functions as F

    per_user = (pairs.groupBy("user")
                .agg(F.sort_array(F.collect_list(F.struct("ts", "item"))).alias("events"))
                .select("user", F.transform("events", lambda e: e["item"]).alias("items")))
    users = spark.read.parquet(str(users_path))
    frame = (user_factors.withColumnRenamed("id", "user").join(per_user, "user").join(users, "user")
             .select("user_id", "features", "items").repartition(partitions))
    shipped = spark.sparkContext.broadcast(payload.to_bytes())

    def run(batches):  # type: ignore[no-untyped-def]
        return write_partition(batches, shipped.value)

    counts = frame.mapInArrow(run, RESULT_DDL).toArrow()
    shipped.destroy()
    return int(np.sum(counts.column("users").to_numpy())), int(np.sum(counts.column("bytes").to_numpy()))
