"""The drift-triggered retrain learns from live traffic (issue #12, "done when" 5).

Events arrive through the real API, the ingest moves them to the lake, the drift job (real evidently
check against the training reference, which any served traffic departs from) triggers the real
train-ranker job, and that training counts the API's rows among its data.
"""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from jobs.definitions import DEFAULT_JOBS
from jobs.runner import JobRunner
from recsys.artifacts import open_registry
from recsys.config import DriftConfig, Settings
from recsys.engines.local import run_refresh
from recsys.ranking.train import train_ranker
from recsys.store import Store
from tests.helpers import clustered_interactions


def test_drift_triggered_retrain_trains_on_events_posted_through_the_api(tmp_path: Path,
                                                                       embedded_store: Store) -> None:
    inter, items = clustered_interactions(n_users=240, n_items=160, per_user=24, seed=8)
    base = tmp_path / "base"
    base.mkdir()
    inter.write_parquet(base / "interactions.parquet")
    items.write_parquet(base / "items.parquet")
    settings = Settings(artifacts_dir=tmp_path / "artifacts", lake_dir=tmp_path / "lake", data_path=base,
                        drift=DriftConfig(reference="training", min_rows=100, feature_log_rate=1.0))
    settings.als.factors = 8
    first = train_ranker(settings)
    assert (first.rows_base, first.rows_lake) == (inter.height, 0)
    run_refresh(settings, embedded_store)

    users = [f"live-{k}" for k in range(30)]
    app = create_app(settings, embedded_store, background_reload=False)
    with TestClient(app) as client:
        now = time.time()
        for k, user in enumerate(users):
            items_k = [f"i{(4 * j + k) % 160}" for j in range(8)]
            body = [{"user_id": user, "item_id": it, "event": "click", "timestamp": now - 100 + j}
                    for j, it in enumerate(items_k)]
            assert client.post("/v1/events", json=body).status_code == 202
            assert client.get(f"/v1/users/{user}/recommendations").status_code == 200
        assert app.state.loop.flush(10)
        assert app.state.service.feature_sink.flush(10)

    runner = JobRunner(settings, embedded_store, DEFAULT_JOBS)
    ingest = runner.run("ingest")
    assert ingest is not None and ingest.details["events_written"] == 8 * len(users)
    drift = runner.run("drift", options={"json_path": tmp_path / "drift.json"})
    assert drift is not None and drift.status == "ok", drift
    assert drift.details["drift_status"] == "drift" and drift.details["triggered"] == "train-ranker", drift.details
    retrain = [r for r in embedded_store.jobs.runs() if r["job"] == "train-ranker"]
    assert len(retrain) == 1 and retrain[0]["trigger"] == "drift" and retrain[0]["status"] == "ok", retrain
    assert retrain[0]["details"]["rows_lake"] == 8 * len(users)
    assert retrain[0]["details"]["rows_base"] == inter.height
    manifest = open_registry(settings.artifacts_dir).model_manifest(retrain[0]["version"]).model_dump()
    assert manifest["rows_lake"] == 8 * len(users)
