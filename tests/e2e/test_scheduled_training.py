"""The scheduled train-ranker job runs the real LightGBM training and promotes the model it produced."""

from __future__ import annotations

from pathlib import Path

from jobs.definitions import DEFAULT_JOBS
from jobs.runner import JobRunner
from recsys.artifacts import open_registry
from recsys.config import Settings
from recsys.store import open_store
from tests.helpers import clustered_interactions


def test_scheduled_train_ranker_promotes_a_real_model(tmp_path: Path) -> None:
    inter, items = clustered_interactions(n_users=200, n_items=160, per_user=24, seed=5)
    data = tmp_path / "data"
    data.mkdir()
    inter.write_parquet(data / "interactions.parquet")
    items.write_parquet(data / "items.parquet")
    settings = Settings(artifacts_dir=tmp_path / "artifacts", data_path=data)
    settings.als.factors = 8
    store = open_store(f"embedded://{tmp_path / 'store.sqlite'}")
    run = JobRunner(settings, store, DEFAULT_JOBS).run("train-ranker")
    assert run is not None and run.status == "ok", run
    registry = open_registry(settings.artifacts_dir)
    assert run.version is not None and registry.current_model() == run.version
    assert registry.model_file(run.version, "model.txt")
    assert [r["status"] for r in store.jobs.runs() if r["job"] == "train-ranker"] == ["ok"]


def test_scheduled_train_ranker_without_data_path_fails_clearly(tmp_path: Path) -> None:
    settings = Settings(artifacts_dir=tmp_path / "artifacts")
    run = JobRunner(settings, open_store("embedded://:memory:"), DEFAULT_JOBS).run("train-ranker")
    assert run is not None and run.status == "failed"
    assert "RECSYS_DATA_PATH" in str(run.error)
