"""API hardening: bounded bodies and batches, admin token checks, one documented error body for every error."""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.engines.local import run_refresh
from recsys.ranking.train import TrainResult
from recsys.store import open_store

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def app_settings(trained_artifacts: tuple[Settings, Dataset, TrainResult],
                 tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, str]:
    settings, ds, _ = trained_artifacts
    url = f"embedded://{tmp_path_factory.mktemp('hardening') / 'store.sqlite'}"
    run_refresh(settings, open_store(url), ds)
    return settings, url


@pytest.fixture
def client(app_settings: tuple[Settings, str]) -> Iterator[TestClient]:
    settings, url = app_settings
    with TestClient(create_app(settings, open_store(url), background_reload=False)) as c:
        yield c


def _event(i: int = 0) -> dict[str, object]:
    return {"user_id": "u1", "item_id": f"i{i % 50}", "event": "click"}


# ---- body and batch bounds ---------------------------------------------------------------------
def test_body_over_limit_is_413_by_content_length(client: TestClient) -> None:
    body = json.dumps([_event(i) for i in range(100)]).encode() + b" " * (1 << 20)  # valid JSON, > 1 MiB
    r = client.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"] == "PayloadTooLarge" and r.headers["connection"] == "close"


def test_chunked_body_over_limit_is_413_and_under_limit_passes(client: TestClient) -> None:
    def chunks(total: int) -> Iterator[bytes]:
        head = json.dumps(_event()).encode()
        yield head
        sent = len(head)
        while sent < total:  # JSON allows trailing whitespace: the body stays valid at any size
            n = min(64 * 1024, total - sent)
            yield b" " * n
            sent += n

    big = client.post("/v1/events", content=chunks(2 << 20), headers={"Content-Type": "application/json"})
    assert big.status_code == 413  # no Content-Length: counted as it streams
    small = client.post("/v1/events", content=chunks(200 * 1024), headers={"Content-Type": "application/json"})
    assert small.status_code == 202 and small.json() == {"accepted": 1, "users": 1, "buffered": 0}


def test_body_at_limit_is_accepted(app_settings: tuple[Settings, str]) -> None:
    settings, url = app_settings
    small = settings.model_copy(update={"max_request_body_bytes": 4096})
    with TestClient(create_app(small, open_store(url), background_reload=False)) as c:
        head = json.dumps(_event()).encode()
        ok = c.post("/v1/events", content=head + b" " * (4096 - len(head)),
                    headers={"Content-Type": "application/json"})
        assert ok.status_code == 202
        over = c.post("/v1/events", content=head + b" " * (4097 - len(head)),
                      headers={"Content-Type": "application/json"})
        assert over.status_code == 413


def test_batches_and_lists_are_bounded(client: TestClient) -> None:
    assert client.post("/v1/events", json=[_event(i) for i in range(100)]).status_code == 202
    assert client.post("/v1/events", json=[_event(i) for i in range(101)]).status_code == 422
    session = [{"item_id": "i1"}] * 101
    assert client.post("/v1/recommendations", json={"user_id": "u1", "session": session}).status_code == 422
    exclude = ",".join(f"i{i}" for i in range(1001))  # one query value, 1001 ids after the split
    r = client.get(f"/v1/users/u1/recommendations?exclude={exclude}")
    assert r.status_code == 422 and "at most 1000" in r.json()["detail"]
    ok = client.get("/v1/users/u1/recommendations?exclude=" + ",".join(f"i{i}" for i in range(150)))
    assert ok.status_code == 200 and all(int(i["item_id"][1:]) >= 150 for i in ok.json()["items"])
    assert client.get("/v1/users/" + "u" * 257 + "/recommendations").status_code == 422


def test_nan_and_infinite_timestamps_are_rejected(client: TestClient) -> None:
    for literal in ("NaN", "Infinity", "-Infinity"):  # Python's JSON parser accepts these literals
        body = f'{{"user_id": "u1", "item_id": "i1", "timestamp": {literal}}}'
        r = client.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, literal


def test_undecodable_body_is_a_documented_400(client: TestClient) -> None:
    r = client.post("/v1/events", content=b"\x02\xd7\x90!\x18T\xff\xfe", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "BadRequest"


# ---- admin -------------------------------------------------------------------------------------
@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ",
                                    f"Basic {TOKEN}", TOKEN])
def test_admin_rejects_missing_or_wrong_token(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    r = client.post("/v1/admin/reload", headers=headers)
    assert r.status_code == 401, header
    assert r.headers["www-authenticate"] == "Bearer" and r.json()["error"] == "Unauthorized"


def test_admin_accepts_the_token_case_insensitive_scheme(client: TestClient) -> None:
    for scheme in ("Bearer", "bearer"):
        r = client.post("/v1/admin/reload", headers={"Authorization": f"{scheme} {TOKEN}"})
        assert r.status_code == 200 and r.json()["candidates_version"]


def test_admin_disabled_without_configured_token(app_settings: tuple[Settings, str]) -> None:
    settings, url = app_settings
    off = settings.model_copy(update={"admin_token": ""})
    with TestClient(create_app(off, open_store(url), background_reload=False)) as c:
        for header in ({}, {"Authorization": "Bearer "}, {"Authorization": f"Bearer {TOKEN}"}):
            assert c.post("/v1/admin/reload", headers=header).status_code == 403


def test_token_comparison_is_constant_time_over_equal_length_digests(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The configured token's length must not leak either: both sides are hashed to 32 bytes first."""
    seen: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr("api.deps.hmac.compare_digest", spy)
    for token in ("x", "wrong-but-much-longer-than-the-real-one" * 4, TOKEN):
        client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {token}"})
    assert seen == [(32, 32)] * 3


# ---- error bodies and the OpenAPI document ------------------------------------------------------
def test_every_error_has_the_documented_body(client: TestClient) -> None:
    cases = [client.get("/v1/items/nope/similar"), client.get("/v1/nowhere"), client.delete("/v1/events"),
             client.post("/v1/admin/reload"), client.get("/v1/users/u1/recommendations?k=0")]
    assert [r.status_code for r in cases] == [404, 404, 405, 401, 422]
    for r in cases:
        body = r.json()
        assert set(body) == {"error", "detail"} and isinstance(body["error"], str) and body["detail"]
    assert cases[2].headers["allow"] == "POST"


def test_openapi_documents_each_error_status(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    documented = {(m.upper(), p): set(op["responses"]) for p, ops in spec["paths"].items() for m, op in ops.items()}
    assert all("400" in codes for codes in documented.values())  # the HTTP server may refuse any request
    assert documented[("POST", "/v1/events")] >= {"202", "400", "413", "422", "503"}
    assert documented[("POST", "/v1/recommendations")] >= {"200", "400", "413", "422"}
    assert documented[("GET", "/v1/users/{user_id}/candidates")] >= {"200", "422", "503"}
    assert documented[("GET", "/v1/items/{item_id}/similar")] >= {"200", "404", "422"}
    assert documented[("POST", "/v1/admin/reload")] >= {"200", "401", "403"}
    assert documented[("GET", "/readyz")] >= {"200", "503"}
    error_ref = spec["paths"]["/v1/events"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    assert error_ref["$ref"].endswith("/ErrorBody")
    assert spec["paths"]["/v1/admin/reload"]["post"]["security"] == [{"HTTPBearer": []}]
    event = spec["components"]["schemas"]["Event"]["properties"]["event"]
    assert "click" in event["enum"]
