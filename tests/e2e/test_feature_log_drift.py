"""The API's own sampled feature log drives the drift check and its retrain trigger (real Redis).

Traffic goes through the real app (FastAPI, service, LightGBM); the sink samples the rows the ranker
scored into the store; the drift job reads them back. The reference of the serving model is the feature
log of a first phase of ordinary traffic (known users with an in-cluster session): the model's training
reference differs from any served traffic by construction (training rows come from held-out tails), so
it cannot tell "same traffic" from "shifted traffic" in a test. Then:
- more ordinary traffic (other users, other draws) → no drift, no retrain;
- cold-start traffic (unknown users, a campaign)  → drift, the drift job starts train-ranker (a stand-in
  that promotes a new model version), the API serves it after a reload, and the rows logged from then
  on carry its version.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from jobs import definitions
from jobs.context import JobContext, JobOutcome
from jobs.runner import JobRunner
from recsys.artifacts import open_registry
from recsys.config import DriftConfig, Settings
from recsys.engines.local import run_refresh
from recsys.monitoring.feature_log import read_feature_log
from recsys.ranking.model import RankerModel
from recsys.serving.feature_sink import FeatureLogSink
from recsys.store import Store
from tests.conftest import TrainedRanker

TOKEN = "drift-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Served:
    settings: Settings
    store: Store
    app: FastAPI
    client: TestClient
    trained: TrainedRanker

    @property
    def sink(self) -> FeatureLogSink:
        sink = self.app.state.service.feature_sink
        assert isinstance(sink, FeatureLogSink)
        return sink


def serve(redis_store: Store, tmp_path: Path, trained: TrainedRanker, rate: float) -> Iterator[Served]:
    settings = Settings(artifacts_dir=tmp_path / "artifacts", admin_token=TOKEN, seed=11,
                        drift=DriftConfig(feature_log_rate=rate, min_rows=200))
    settings.als.factors = 8
    trained.install(settings.artifacts_dir)
    run_refresh(settings, redis_store, trained.dataset)
    app = create_app(settings, redis_store, background_reload=False)
    with TestClient(app) as client:
        yield Served(settings, redis_store, app, client, trained)


@pytest.fixture
def served(redis_store: Store, tmp_path: Path, trained_ranker: TrainedRanker) -> Iterator[Served]:
    yield from serve(redis_store, tmp_path, trained_ranker, rate=0.1)


@pytest.fixture
def served_all(redis_store: Store, tmp_path: Path, trained_ranker: TrainedRanker) -> Iterator[Served]:
    yield from serve(redis_store, tmp_path, trained_ranker, rate=1.0)


def traffic(s: Served, *, seed: int, users: range, cold: bool = False) -> None:
    """One inline-session request per user: 3 clicks on unseen items of the user's own cluster.

    `cold`: the same sessions from users the store has never seen (popular-items candidates).
    """
    rng = np.random.default_rng(seed)
    inter = s.trained.dataset.interactions
    seen = {u: set(items) for u, items in inter.group_by("user_id").agg("item_id").iter_rows()}
    for j, u in enumerate(users):
        pool = [f"i{i}" for i in range(200) if i % 4 == u % 4 and f"i{i}" not in seen[f"u{u}"]]
        now = time.time()
        session = [{"item_id": str(item), "event": "click", "timestamp": now - 30 + 10 * k}
                   for k, item in enumerate(rng.choice(pool, 3, replace=False))]
        user = f"cold{seed}-{j}" if cold else f"u{u}"
        r = s.client.post("/v1/recommendations", json={"user_id": user, "k": 10, "session": session})
        assert r.status_code == 200
        assert r.json()["fallback"] == ("unknown_user" if cold else None)
    assert s.sink.flush(10)


def scrape(client: TestClient) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def test_drift_from_the_api_feature_log_triggers_a_retrain_only_when_shifted(served: Served) -> None:
    s, store = served, served.store
    model = s.trained.model_version
    registry = open_registry(s.settings.artifacts_dir)
    names = registry.model_manifest(model).features

    # Phase A: ordinary traffic; the drift job freezes its first logged rows as the model's reference.
    traffic(s, seed=1, users=range(0, 300, 2))
    stats = s.sink.stats()
    assert stats.rows_seen > 10_000 and stats.rows_written == stats.rows_sampled
    assert abs(stats.rows_sampled / stats.rows_seen - 0.1) < 0.01  # the configured rate
    assert len(read_feature_log(store, model_version=model)) == stats.rows_written

    retrains: list[tuple[str, str | None]] = []

    def retrain(ctx: JobContext) -> JobOutcome:
        """Stands in for train-ranker (LightGBM training has its own tests and costs seconds here): promotes
        a copy of the serving model under a new version, so the reload and the logged versions are real."""
        retrains.append((ctx.run.trigger, ctx.run.reason))
        version = f"{model}-retrained"
        manifest = registry.model_manifest(model).model_dump()
        manifest.update(created_at=time.time())
        registry.save_model(version, {name: registry.model_file(model, name) for name in ("model.txt",
                                                                                           "reference.parquet")},
                            manifest)
        registry.promote(version, reason=f"drift: {ctx.run.reason}")
        return JobOutcome(version=version)

    runner = JobRunner(s.settings, store, {"drift": definitions.drift, "train-ranker": retrain})
    out = s.settings.artifacts_dir / "reports"
    run = runner.run("drift", options={"json_path": out / "a.json"})
    assert run is not None and run.details["drift_status"] == "reference_collected", run.details
    frozen = pd.read_parquet(io.BytesIO(registry.model_file(model, "served_reference.parquet")))
    assert len(frozen) == s.settings.drift.reference_rows and set(names) <= set(frozen.columns)
    assert retrains == []

    # Phase B: the same kind of traffic, other session draws → no drift, nothing retrained.
    traffic(s, seed=2, users=range(1, 300, 2))
    run = runner.run("drift", options={"json_path": out / "b.json"})
    assert run is not None and run.status == "ok", run
    assert run.details["drift_status"] == "no_drift", run.details["message"]
    assert run.details["current_rows"] >= 1000
    assert run.details["drifted_share"] <= 0.3
    assert retrains == []
    store.feature_log.clear()

    # Phase C: cold-start users → drift, and the retrain runs, triggered by the drift job.
    traffic(s, seed=3, users=range(120), cold=True)
    run = runner.run("drift", options={"json_path": out / "c.json"})
    assert run is not None and run.status == "ok"
    assert run.details["drift_status"] == "drift", run.details["message"]
    share = run.details["drifted_share"]
    assert share > 0.5
    # Cold users get popularity candidates (their "ALS score" is the popularity fill's) and have no history.
    assert {"als_score", "item_pop", "user_pop_gap"} & set(run.details["drifted_features"]), run.details
    assert len(retrains) == 1 and retrains[0][0] == "drift" and "> threshold 0.50" in str(retrains[0][1])
    history = store.jobs.runs()
    train = [r for r in history if r["job"] == "train-ranker"]
    assert len(train) == 1 and train[0]["status"] == "ok" and train[0]["trigger"] == "drift"
    new_model = train[0]["version"]
    assert new_model != model

    # The API serves the retrained model after a reload; rows logged from then on carry its version.
    reload = s.client.post("/v1/admin/reload", headers=ADMIN).json()
    assert reload["changed"] and reload["model_version"] == new_model
    traffic(s, seed=4, users=range(20))
    assert set(read_feature_log(store, model_version=new_model)["user_id"]) <= {f"u{u}" for u in range(20)}
    assert len(read_feature_log(store, model_version=new_model)) > 0

    # /metrics: parses, and carries every figure the issue names.
    m = scrape(s.client)
    assert [(x.labels["model_version"], x.value) for x in m["recsys_drift_share"]] == [(model, share)]
    assert [x.value for x in m["recsys_drift_detected"]] == [1.0]
    assert [x.labels["status"] for x in m["recsys_drift_last_status"]] == ["drift"]
    assert [x.labels["model_version"] for x in m["recsys_serving_info"]] == [new_model]
    assert {x.labels["job"] for x in m["recsys_job_last_success_timestamp_seconds"]} == {"drift", "train-ranker"}
    for name in ("recsys_request_seconds_bucket", "recsys_request_seconds_count", "recsys_requests_total",
                 "recsys_fallbacks_total", "recsys_candidates_version_age_seconds", "recsys_model_age_seconds",
                 "recsys_job_last_duration_seconds", "recsys_job_consecutive_failures", "recsys_job_runs",
                 "recsys_drift_last_check_timestamp_seconds", "recsys_feature_log_rows_total",
                 "recsys_feature_log_served_rows_total", "recsys_feature_log_errors_total",
                 "recsys_feature_log_pending_rows", "recsys_feature_log_sample_rate"):
        assert name in m, name
    cold = [x.value for x in m["recsys_fallbacks_total"] if x.labels["reason"] == "unknown_user"]
    assert cold == [120.0]


def test_logged_rows_are_exactly_what_the_ranker_scored(served_all: Served) -> None:
    """Point in time: re-scoring the logged rows with the served model gives the response's scores."""
    s = served_all
    r = s.client.get("/v1/users/u5/recommendations", params={"k": 10}).json()
    assert s.sink.flush(5)
    rows = read_feature_log(s.store, model_version=r["model_version"])
    assert set(rows["user_id"]) == {"u5"}
    model = RankerModel.load(open_registry(s.settings.artifacts_dir), r["model_version"])
    scores = np.sort(model.predict(rows[model.feature_names].to_numpy()))[::-1]
    assert len(rows) >= 50  # every candidate row, at rate 1.0
    np.testing.assert_allclose(scores[:10], [i["score"] for i in r["items"]], rtol=1e-6)


def test_a_failing_feature_log_never_fails_a_request(served_all: Served) -> None:
    s = served_all

    def broken(*args: object) -> None:
        raise RuntimeError("sink exploded")

    s.app.state.service.feature_sink = broken
    r = s.client.get("/v1/users/u6/recommendations")
    assert r.status_code == 200 and r.json()["fallback"] is None and len(r.json()["items"]) == 10
