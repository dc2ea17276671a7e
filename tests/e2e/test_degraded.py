"""Degraded modes: Redis down, corrupt or missing model. Always a 200 with the reason, never a 5xx."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from recsys.artifacts import open_registry
from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.engines.local import run_refresh
from recsys.ranking.train import TrainResult
from recsys.store import open_store
from tests.redis_server import PrivateRedis


def test_redis_down_degrades_to_popular_and_recovers(
        private_redis: PrivateRedis, trained_artifacts: tuple[Settings, Dataset, TrainResult]) -> None:
    settings, ds, _ = trained_artifacts
    store = open_store(private_redis.url)
    run_refresh(settings, store, ds)
    with TestClient(create_app(settings, store)) as client:
        assert client.get("/v1/users/u5/recommendations").json()["fallback"] is None
        private_redis.stop()
        r = client.get("/v1/users/u5/recommendations")
        assert r.status_code == 200
        assert r.json()["fallback"] == "store_unavailable" and len(r.json()["items"]) == 10
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert ready.json()["store"] == "unreachable"
        assert client.get("/healthz").status_code == 200
        # Events cannot be stored while Redis is down: kept in memory (202, buffered), written on return.
        ev = client.post("/v1/events", json={"user_id": "u5", "item_id": "i1", "event": "purchase"})
        assert ev.status_code == 202 and ev.json()["buffered"] == 1
        private_redis.start()  # comes back empty (no persistence): republish, serving recovers
        # The circuit breaker lets one probe through per cool-down (1 s): the store is usable again
        # within about a second of Redis answering.
        deadline = time.monotonic() + 5
        while not store.ping() and time.monotonic() < deadline:
            time.sleep(0.05)
        # Redis answers but lost the version being served: reported as a store problem, not as
        # every user suddenly unknown.
        while client.get("/readyz").json()["status"] != "degraded" or \
                "no longer holds" not in str(client.get("/readyz").json()["reasons"]):
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.05)
        lost = client.get("/v1/users/u5/recommendations").json()
        assert lost["fallback"] == "store_unavailable" and len(lost["items"]) == 10
        assert client.get("/v1/users/u5/candidates").json()["fallback"] == "store_unavailable"
        run_refresh(settings, store, ds)
        client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {settings.admin_token}"})
        deadline = time.monotonic() + 5  # the poller replays the buffered event
        while not store.sessions.get("u5") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(e.item_id, e.event) for e in store.sessions.get("u5")] == [("i1", "purchase")]
        back = client.get("/v1/users/u5/recommendations").json()
        assert back["fallback"] is None
        assert client.get("/readyz").json()["status"] == "ready"


def _corrupt_model(settings: Settings, name: str) -> None:
    """A model whose manifest is fine and whose LightGBM file is not (checksums match: it was written so)."""
    open_registry(settings.artifacts_dir).save_model(name, {"model.txt": b"this is not a lightgbm model\n"},
                                                     {"created_at": 0.0, "features": ["als_score"]})


def test_corrupt_model_keeps_previous_model_serving(
        tmp_path: Path, trained_artifacts: tuple[Settings, Dataset, TrainResult]) -> None:
    base, ds, ranker = trained_artifacts
    settings = base.model_copy(update={"artifacts_dir": tmp_path / "art"})
    shutil.copytree(base.artifacts_dir / "models", settings.artifacts_dir / "models")
    store = open_store(f"embedded://{tmp_path / 'store.sqlite'}")
    run_refresh(settings, store, ds)
    with TestClient(create_app(settings, store)) as client:
        assert client.get("/v1/users/u5/recommendations").json()["model_version"] == ranker.model_version
        _corrupt_model(settings, "99990101T000000000")
        open_registry(settings.artifacts_dir).promote("99990101T000000000", reason="test: corrupt")
        reload = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {settings.admin_token}"}).json()
        assert "failed to load" in reload["model_error"]
        r = client.get("/v1/users/u5/recommendations").json()
        assert r["model_version"] == ranker.model_version and r["fallback"] is None
        ready = client.get("/readyz").json()
        assert ready["status"] == "degraded" and any("failed to load" in x for x in ready["reasons"])


def test_missing_model_serves_als_order_with_reason(
        tmp_path: Path, trained_artifacts: tuple[Settings, Dataset, TrainResult]) -> None:
    base, ds, _ = trained_artifacts
    settings = base.model_copy(update={"artifacts_dir": tmp_path / "art"})
    store = open_store(f"embedded://{tmp_path / 'store.sqlite'}")
    run_refresh(settings, store, ds)
    with TestClient(create_app(settings, store)) as client:
        r = client.get("/v1/users/u5/recommendations?k=5").json()
        assert r["fallback"] == "no_model" and r["model_version"] is None
        als = [i["item_id"] for i in client.get("/v1/users/u5/candidates?k=5").json()["items"]]
        assert [i["item_id"] for i in r["items"]] == als


def test_frozen_redis_falls_back_at_once_and_events_fail_fast(
        private_redis: PrivateRedis, trained_artifacts: tuple[Settings, Dataset, TrainResult]) -> None:
    """Redis stops answering (SIGSTOP): after the first timeout the circuit opens and requests no longer wait."""
    settings, ds, _ = trained_artifacts
    store = open_store(private_redis.url)  # 0.5 s socket timeout, 1 s breaker cool-down
    run_refresh(settings, store, ds)
    with TestClient(create_app(settings, store, background_reload=False)) as client:
        assert client.get("/v1/users/u5/recommendations").json()["fallback"] is None
        private_redis.freeze()
        try:
            took, fallbacks = [], set()
            for i in range(40):
                t = time.perf_counter()
                r = client.get(f"/v1/users/u{i}/recommendations")
                took.append(time.perf_counter() - t)
                assert r.status_code == 200 and len(r.json()["items"]) == 10
                fallbacks.add(r.json()["fallback"])
            assert fallbacks == {"store_unavailable"}
            # One request pays the socket timeout (plus one probe per elapsed cool-down); the rest do not.
            assert sum(t > 0.3 for t in took) <= 2, took
            assert sorted(took)[len(took) // 2] < 0.05
            t = time.perf_counter()
            ev = client.post("/v1/events", json={"user_id": "u5", "item_id": "i1"})
            assert ev.status_code == 202 and ev.json()["buffered"] == 1 and time.perf_counter() - t < 0.3
            assert client.get("/readyz").json()["store"] == "unreachable"
            metrics = client.get("/metrics").text
            assert "recsys_store_circuit_open 1.0" in metrics and "recsys_store_circuit_outages 1.0" in metrics
        finally:
            private_redis.thaw()
        deadline = time.monotonic() + 5  # the next probe after the cool-down closes the circuit
        while client.get("/v1/users/u5/recommendations").json()["fallback"] is not None:
            assert time.monotonic() < deadline, "serving did not recover after Redis answered again"
            time.sleep(0.1)
        assert client.post("/v1/events", json={"user_id": "u5", "item_id": "i1"}).status_code == 202


def test_lost_pointer_is_a_store_problem_on_the_very_next_request(
        tmp_path: Path, trained_artifacts: tuple[Settings, Dataset, TrainResult]) -> None:
    """Redis restarted empty: the request that misses sees the missing pointer itself, before any reload."""
    settings, ds, _ = trained_artifacts
    store = open_store(f"embedded://{tmp_path / 'store.sqlite'}")
    run_refresh(settings, store, ds)
    with TestClient(create_app(settings, store, background_reload=False)) as client:
        assert client.get("/v1/users/stranger/recommendations").json()["fallback"] == "unknown_user"
        store.wipe()  # everything gone
        r = client.get("/v1/users/u5/recommendations").json()
        assert r["fallback"] == "store_unavailable" and len(r["items"]) == 10
        assert client.get("/v1/users/stranger/candidates").json()["fallback"] == "store_unavailable"


def test_a_version_of_another_store_layout_is_refused_by_name(
        tmp_path: Path, trained_artifacts: tuple[Settings, Dataset, TrainResult]) -> None:
    """A version written by an older release (layout 2: other keys) is not served as if every user were
    unknown: the reload refuses it, /readyz says why and what to run, the current version keeps serving."""
    settings, ds, _ = trained_artifacts
    store = open_store(f"embedded://{tmp_path / 'store.sqlite'}")
    current = run_refresh(settings, store, ds).version
    app = create_app(settings, store, background_reload=False)
    with TestClient(app) as client:
        old = store.candidates.begin("20200101T000000000")
        old.write_items(store.candidates.item_ids(current))
        old.write_meta({"items": len(store.candidates.item_ids(current)), "layout": 2})
        store.candidates.publish(old.version)
        app.state.service.reload(force=True)  # what the poller does every RECSYS_RELOAD_INTERVAL_SECONDS
        ready = client.get("/readyz").json()
        reasons = " ".join(ready["reasons"])
        assert ready["status"] == "degraded", ready
        assert "store layout 2" in reasons and "reads layout 3" in reasons and "recsys refresh" in reasons
        assert f"still serving version {current}" in reasons
        r = client.get("/v1/users/u5/recommendations").json()
        assert r["fallback"] is None and r["candidates_version"] == current
