"""Who may write, and how much one writer counts: the client token and the drift check's per-user caps.

Before: `POST /v1/events` and the inline `POST /v1/recommendations` needed no credential, and what they
wrote flowed into the feature log that can trigger a retrain: one client flooding requests as one user
steered the drift check into retraining the ranker.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from jobs.context import JobContext, JobOutcome
from jobs.definitions import drift
from jobs.runner import JobRunner
from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.engines.local import run_refresh
from recsys.ranking.train import TrainResult
from recsys.store import Store, open_store

CLIENT_TOKEN = "client-s3cret"


@pytest.fixture
def served(tmp_path: Path, trained_artifacts: tuple[Settings, Dataset, TrainResult]
           ) -> Iterator[tuple[Settings, Store, Dataset]]:
    base, ds, _ = trained_artifacts
    store = open_store(f"embedded://{tmp_path / 'store.sqlite'}")
    run_refresh(base, store, ds)
    yield base, store, ds
    store.close()


def test_write_endpoints_need_the_client_token_when_set(served: tuple[Settings, Store, Dataset]) -> None:
    base, store, _ = served
    settings = base.model_copy(update={"client_token": CLIENT_TOKEN})
    event = {"user_id": "u5", "item_id": "i1", "event": "click"}
    inline = {"user_id": "u5", "k": 3, "session": [{"item_id": "i1"}]}
    with TestClient(create_app(settings, store, background_reload=False)) as client:
        for header in (None, "Bearer wrong", f"Bearer {settings.admin_token}", CLIENT_TOKEN):
            headers = {"Authorization": header} if header else {}
            for path, body in (("/v1/events", event), ("/v1/recommendations", inline)):
                r = client.post(path, json=body, headers=headers)
                assert r.status_code == 401, (path, header)
                assert r.json()["error"] == "Unauthorized" and r.headers["www-authenticate"] == "Bearer"
        ok = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
        assert client.post("/v1/events", json=event, headers=ok).status_code == 202
        assert client.post("/v1/recommendations", json=inline, headers=ok).status_code == 200
        assert [e.item_id for e in store.sessions.get("u5")] == ["i1"]  # only the authorised write landed
        assert client.get("/v1/users/u5/recommendations").status_code == 200  # reads stay open
        # The client token is not an admin token either.
        assert client.post("/v1/admin/reload", headers=ok).status_code == 401
        spec = client.get("/openapi.json").json()
        for path in ("/v1/events", "/v1/recommendations"):
            post = spec["paths"][path]["post"]
            assert "401" in post["responses"] and post["security"] == [{"ClientToken": []}]
        assert spec["components"]["securitySchemes"]["ClientToken"]["scheme"] == "bearer"
    with TestClient(create_app(base, store, background_reload=False)) as client:  # not set: open, as before
        assert client.post("/v1/events", json=event).status_code == 202
        spec = client.get("/openapi.json").json()  # and the document does not claim a credential
        assert "security" not in spec["paths"]["/v1/events"]["post"]
        assert "ClientToken" not in spec.get("components", {}).get("securitySchemes", {})


def test_one_user_flooding_the_write_endpoints_does_not_trigger_a_retrain(
        served: tuple[Settings, Store, Dataset]) -> None:
    base, store, ds = served
    settings = base.model_copy(deep=True)
    settings.drift.feature_log_rate = 1.0  # log every scored row: the flood fills the log fast
    settings.drift.reference_rows = 400
    retrains: list[str | None] = []

    def train_ranker(ctx: JobContext) -> JobOutcome:  # what would run: recorded, not trained
        retrains.append(ctx.run.reason)
        return JobOutcome(version="m-retrained")

    runner = JobRunner(settings, store, {"drift": drift, "train-ranker": train_ranker})
    users = sorted(set(ds.interactions["user_id"].to_list()))[:20]  # 20 users x 20 rows: the reference
    with TestClient(create_app(settings, store, background_reload=False)) as client:
        sink = client.app.state.service.feature_sink  # type: ignore[attr-defined]
        for user in users:  # ordinary traffic: one request each from 20 users
            assert client.get(f"/v1/users/{user}/recommendations").status_code == 200
        assert sink.flush()
        first = runner.run("drift")
        assert first is not None and first.details["drift_status"] == "reference_collected", first.details
        time.sleep(0.01)
        # One client, one user id: hundreds of events and inline requests with a session nobody else has.
        now = time.time()
        odd = [{"item_id": f"i{j}", "event": "purchase", "timestamp": now - j} for j in range(100)]
        for _ in range(5):
            assert client.post("/v1/events", json=[{"user_id": "flooder", **e} for e in odd]).status_code == 202
        for _ in range(120):
            r = client.post("/v1/recommendations", json={"user_id": "flooder", "k": 10, "session": odd})
            assert r.status_code == 200
            assert client.get("/v1/users/flooder/recommendations").status_code == 200
        assert sink.flush()
    run = runner.run("drift")
    assert run is not None and run.status == "ok"
    assert run.details["drift_status"] == "insufficient_data", run.details["message"]
    assert "from 1 distinct users" in run.details["message"]
    assert retrains == []
    assert [r for r in store.jobs.runs() if r["job"] == "train-ranker"] == []
