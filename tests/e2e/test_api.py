"""The HTTP API through the real app, on the real store backends, ALS/FAISS and LightGBM."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from recsys.store import Store
from tests.e2e.conftest import Trained


def test_recommendations_top_k_fields(client: TestClient, trained: Trained) -> None:
    r = client.get("/v1/users/u7/recommendations", params={"k": 10})
    assert r.status_code == 200
    body = r.json()
    assert body["fallback"] is None
    assert body["candidates_version"] == trained.refresh.version
    assert body["model_version"] == trained.ranker.model_version
    assert [i["rank"] for i in body["items"]] == list(range(1, 11))
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    seen = set(trained.dataset.interactions.filter(trained.dataset.interactions["user_id"] == "u7")["item_id"])
    assert not seen & {i["item_id"] for i in body["items"]}
    # u7 is in cluster 3 (of 4): most of its top-10 come from its own cluster.
    assert sum(int(i["item_id"][1:]) % 4 == 3 for i in body["items"]) >= 6


def test_session_events_change_ranking_and_are_filtered(client: TestClient) -> None:
    before = [i["item_id"] for i in client.get("/v1/users/u8/recommendations").json()["items"]]
    now = time.time()
    events = [{"user_id": "u8", "item_id": before[j], "event": "click", "timestamp": now - 10 + j} for j in range(3)]
    r = client.post("/v1/events", json=events)
    assert r.status_code == 202 and r.json() == {"accepted": 3, "users": 1, "buffered": 0}
    after = [i["item_id"] for i in client.get("/v1/users/u8/recommendations").json()["items"]]
    assert not set(before[:3]) & set(after)  # session items are never recommended back
    assert after != before


def test_exclude_and_k(client: TestClient) -> None:
    top = [i["item_id"] for i in client.get("/v1/users/u9/recommendations?k=5").json()["items"]]
    assert len(top) == 5
    r = client.get("/v1/users/u9/recommendations", params={"k": 5, "exclude": f"{top[0]},{top[1]}"})
    got = [i["item_id"] for i in r.json()["items"]]
    assert top[0] not in got and top[1] not in got and len(got) == 5
    big = client.get("/v1/users/u9/recommendations?k=100").json()["items"]
    assert 1 <= len(big) <= 100


def test_inline_session_endpoint(client: TestClient) -> None:
    body = {"user_id": "u10", "k": 4, "session": [{"item_id": "i2", "event": "purchase"}], "exclude": ["i6"]}
    r = client.post("/v1/recommendations", json=body)
    assert r.status_code == 200
    ids = [i["item_id"] for i in r.json()["items"]]
    assert len(ids) == 4 and "i2" not in ids and "i6" not in ids


def test_unknown_user_gets_popular_items_adjusted_by_session(client: TestClient) -> None:
    plain = client.get("/v1/users/stranger/recommendations?k=10").json()
    assert plain["fallback"] == "unknown_user" and len(plain["items"]) == 10
    # A session inside cluster 2 pulls cluster-2 items up for an unknown user.
    session = [{"item_id": f"i{j}", "event": "click"} for j in (2, 6, 10)]
    adjusted = client.post("/v1/recommendations", json={"user_id": "stranger", "k": 10, "session": session}).json()
    assert adjusted["fallback"] == "unknown_user"
    in_cluster = sum(int(i["item_id"][1:]) % 4 == 2 for i in adjusted["items"])
    assert in_cluster >= 7
    assert in_cluster > sum(int(i["item_id"][1:]) % 4 == 2 for i in plain["items"])


def test_bad_input_is_422_with_message(client: TestClient) -> None:
    for k in (0, 101, "x"):
        r = client.get(f"/v1/users/u1/recommendations?k={k}")
        assert r.status_code == 422 and r.json()["error"] == "ValidationError"
    bad_events = [
        {"user_id": "u1", "item_id": "i1", "event": "teleport"},
        {"user_id": "u1"},
        {"user_id": "u1", "item_id": "i1", "timestamp": time.time() * 1000},
        {"user_id": "u1", "item_id": "i1", "timestamp": 100.0},
        {"user_id": "u\t1", "item_id": "i1"},
        [{"user_id": "u1", "item_id": "i1"}] * 101,
        [],
    ]
    for body in bad_events:
        r = client.post("/v1/events", json=body)
        assert r.status_code == 422, body
        assert r.json()["detail"]
    assert "unknown event type" in str(client.post("/v1/events", json=bad_events[0]).json())


def test_candidates_and_similar(client: TestClient, trained: Trained) -> None:
    r = client.get("/v1/users/u3/candidates?k=100").json()
    scores = [i["score"] for i in r["items"]]
    assert scores[:10] == sorted(scores[:10], reverse=True) and r["model_version"] is None
    sim = client.get("/v1/items/i4/similar?k=5").json()
    assert len(sim["items"]) == 5 and all(i["item_id"] != "i4" for i in sim["items"])
    assert sum(int(i["item_id"][1:]) % 4 == 0 for i in sim["items"]) >= 4
    assert client.get("/v1/items/nope/similar").status_code == 404


def test_admin_requires_token(client: TestClient) -> None:
    assert client.post("/v1/admin/reload").status_code == 401
    assert client.post("/v1/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.post("/v1/admin/reload", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200 and ok.json()["candidates_version"]


def test_health_ready_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["store"] == "ok"
    client.get("/v1/users/nobody/recommendations")
    text = client.get("/metrics").text
    assert 'recsys_fallbacks_total{reason="unknown_user"}' in text
    assert "recsys_request_seconds_bucket" in text


def test_new_version_is_picked_up_without_failed_requests(client: TestClient, trained: Trained,
                                                          any_store: Store) -> None:
    from recsys.engines.local import run_refresh

    first = client.get("/v1/users/u1/recommendations").json()["candidates_version"]
    statuses: list[int] = []
    new = run_refresh(trained.settings, any_store, trained.dataset)
    deadline = time.time() + 10
    version = first
    while time.time() < deadline and version != new.version:
        r = client.get("/v1/users/u1/recommendations")
        statuses.append(r.status_code)
        version = r.json()["candidates_version"]
    assert version == new.version
    assert set(statuses) == {200}
