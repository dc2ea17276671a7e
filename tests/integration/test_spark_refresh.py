"""`recsys refresh --engine spark` on a real local Spark (local[1]): it publishes a version the real API
serves, on the real Redis and on the embedded store, and a failed job publishes nothing.

Skipped when pyspark or java is missing (the default install); `.ci/run` installs the `[spark]` extra.
Tiny data and one Spark session for the module keep it under a minute or two on a busy machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from engines_spark import spark_available
from recsys.artifacts import open_registry
from recsys.candidates.bundle import ItemBundle
from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.ranking.train import train_ranker
from recsys.store import Store
from tests.helpers import clustered_interactions

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not spark_available(), reason="the [spark] extra (pyspark) or java is missing")]


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    from engines_spark.session import spark_session
    from recsys.config import SparkConfig

    session = spark_session(SparkConfig(master="local[1]", driver_memory="1g", partitions=2))
    yield session
    session.stop()


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    inter, items = clustered_interactions(n_users=120, n_items=160, per_user=20, seed=5)
    return Dataset(inter, items, "generated", "test")


def _settings(tmp_path: Path, store: Store) -> Settings:
    s = Settings(artifacts_dir=tmp_path / "artifacts", artifacts_storage="files", store_url=store.url,
                 store_namespace=store.namespace, reload_interval_seconds=0.2)
    s.als.factors = 8
    s.spark.master, s.spark.factors, s.spark.iterations, s.spark.partitions = "local[1]", 8, 5, 2
    return s


@pytest.mark.redis
@pytest.mark.parametrize("backend", ["redis", "embedded"])
def test_spark_refresh_publishes_a_version_the_api_serves(backend: str, request: pytest.FixtureRequest,
                                                          spark: object, dataset: Dataset, tmp_path: Path) -> None:
    from engines_spark import run_spark_refresh

    store: Store = request.getfixturevalue(f"{backend}_store")
    settings = _settings(tmp_path, store)
    result = run_spark_refresh(settings, store, dataset, spark=spark)  # type: ignore[arg-type]
    assert store.candidates.current_version() == result.version
    assert (result.users, result.items) == (120, 160)
    assert store.candidates.meta(result.version)["engine"] == "spark"  # type: ignore[index]
    bundle = ItemBundle.load(open_registry(settings.artifacts_dir), result.version)
    assert bundle.item_ids == store.candidates.item_ids(result.version)
    # Every user got a full list of 100 unseen items (160 items - 20 seen) from the partitions.
    seen = {u: set(g["item_id"].to_list()) for (u,), g in dataset.interactions.group_by("user_id")}
    for user in ("u0", "u57", "u119"):
        rec = store.read_user(result.version, user, with_session=False)
        assert rec.candidates is not None and rec.history is not None
        items = [bundle.item_ids[i] for i in rec.candidates[0]]
        assert len(items) == 100 and not set(items) & seen[user]
        assert {bundle.item_ids[i] for i in rec.history} == seen[user]
    train_ranker(settings, dataset)
    with TestClient(create_app(settings, store)) as client:
        body = client.get("/v1/users/u5/recommendations", params={"k": 10}).json()
    assert body["candidates_version"] == result.version
    assert body["fallback"] is None
    assert len(body["items"]) == 10 and not {i["item_id"] for i in body["items"]} & seen["u5"]
    # u5 is in cluster 1 (of 4): ALS from Spark must have found the block structure.
    assert sum(int(i["item_id"][1:]) % 4 == 1 for i in body["items"]) >= 6


def test_failed_spark_refresh_publishes_nothing(spark: object, dataset: Dataset, embedded_store: Store,
                                                tmp_path: Path) -> None:
    """The partitions have written every user when the job fails: the version and its bundle go."""
    from engines_spark import run_spark_refresh

    settings = _settings(tmp_path, embedded_store)
    failed: list[str] = []

    def lose_the_lock() -> None:
        staging = [v["version"] for v in embedded_store.candidates.versions() if v["state"] == "staging"]
        assert len(staging) == 1
        assert embedded_store.read_user(staging[0], "u0", with_session=False).candidates is not None
        failed.append(staging[0])
        raise RuntimeError("lost the job lock")

    with pytest.raises(RuntimeError, match="lost the job lock"):
        run_spark_refresh(settings, embedded_store, dataset, spark=spark,  # type: ignore[arg-type]
                          before_publish=lose_the_lock)
    assert len(failed) == 1
    assert embedded_store.candidates.current_version() is None
    assert embedded_store.candidates.versions() == []
    assert embedded_store.read_user(failed[0], "u0", with_session=False).candidates is None
    assert not Path(open_registry(settings.artifacts_dir).bundle_location(failed[0])).exists()
