"""Readiness reflects the present: recomputed on every reload from what serves, with the real cause.

Before: after a bad model was reported and CURRENT pointed back at a good one, /readyz kept its old
reason; a manifest without `features` logged a KeyError traceback; a bundle whose checksum failed was
reported as "no candidate version loaded" (or not at all while an older version served).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recsys.artifacts import open_registry
from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.engines.local import run_refresh
from recsys.ranking.train import TrainResult
from recsys.store import Store, open_store

BAD_MODEL = "99990101T000000000"


@pytest.fixture
def setup(tmp_path: Path, trained_artifacts: tuple[Settings, Dataset, TrainResult]
          ) -> Iterator[tuple[Settings, Dataset, TrainResult, Store]]:
    base, ds, ranker = trained_artifacts
    settings = base.model_copy(update={"artifacts_dir": tmp_path / "art"})
    shutil.copytree(base.artifacts_dir / "models", settings.artifacts_dir / "models")
    store = open_store(f"embedded://{tmp_path / 'store.sqlite'}")
    yield settings, ds, ranker, store
    store.close()


def _reload(client: TestClient, settings: Settings) -> dict[str, object]:
    r = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {settings.admin_token}"})
    assert r.status_code == 200
    return dict(r.json())


def _ready(client: TestClient) -> tuple[int, dict[str, object]]:
    r = client.get("/readyz")
    return r.status_code, dict(r.json())


def _break_bundle(settings: Settings, version: str) -> tuple[Path, bytes]:
    path = settings.artifacts_dir / "bundles" / version / "popularity.npy"
    if not path.exists():  # whichever array the bundle holds first
        path = next(p for p in sorted((settings.artifacts_dir / "bundles" / version).iterdir())
                    if p.suffix == ".npy")
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    return path, original


def test_a_bundle_with_a_bad_checksum_is_named_and_recovers(setup: tuple[Settings, Dataset, TrainResult, Store]
                                                            ) -> None:
    settings, ds, _, store = setup
    version = run_refresh(settings, store, ds).version
    path, original = _break_bundle(settings, version)
    with TestClient(create_app(settings, store, background_reload=False)) as client:
        status, body = _ready(client)
        reasons = " ".join(map(str, body["reasons"]))  # type: ignore[call-overload]
        assert status == 503 and body["status"] == "unavailable"
        assert "checksum mismatch" in reasons and version in reasons
        assert "no candidate version loaded" not in reasons
        path.write_bytes(original)  # the operator restores the file
        _reload(client, settings)
        status, body = _ready(client)
        assert (status, body["status"], body["reasons"]) == (200, "ready", [])


def test_a_new_version_that_cannot_load_is_reported_while_the_old_one_serves(
        setup: tuple[Settings, Dataset, TrainResult, Store]) -> None:
    settings, ds, _, store = setup
    first = run_refresh(settings, store, ds).version
    with TestClient(create_app(settings, store, background_reload=False)) as client:
        assert _ready(client)[1]["status"] == "ready"
        second = run_refresh(settings, store, ds).version
        path, original = _break_bundle(settings, second)
        _reload(client, settings)
        status, body = _ready(client)
        reasons = " ".join(map(str, body["reasons"]))  # type: ignore[call-overload]
        assert status == 200 and body["status"] == "degraded" and body["candidates_version"] == first
        assert "checksum mismatch" in reasons and second in reasons and first in reasons
        assert client.get("/v1/users/u5/recommendations").json()["candidates_version"] == first
        path.write_bytes(original)
        _reload(client, settings)
        status, body = _ready(client)
        assert (body["status"], body["candidates_version"], body["reasons"]) == ("ready", second, [])


def test_a_manifest_without_features_is_named_and_fixing_current_clears_it(
        setup: tuple[Settings, Dataset, TrainResult, Store], caplog: pytest.LogCaptureFixture) -> None:
    settings, ds, ranker, store = setup
    run_refresh(settings, store, ds)
    registry = open_registry(settings.artifacts_dir)
    with TestClient(create_app(settings, store, background_reload=False)) as client:
        assert _ready(client)[1]["status"] == "ready"
        # A model whose manifest lost its feature list (written by hand, or by an older tool).
        good = settings.artifacts_dir / "models" / ranker.model_version
        shutil.copytree(good, settings.artifacts_dir / "models" / BAD_MODEL)
        manifest = json.loads((good / "manifest.json").read_text())
        del manifest["features"]
        (settings.artifacts_dir / "models" / BAD_MODEL / "manifest.json").write_text(json.dumps(manifest))
        (settings.artifacts_dir / "models" / "CURRENT").write_text(BAD_MODEL + "\n")
        with caplog.at_level(logging.INFO):
            _reload(client, settings)
        assert not [r for r in caplog.records if r.exc_info], "a bad manifest is reported, not a traceback"
        status, body = _ready(client)
        reasons = " ".join(map(str, body["reasons"]))  # type: ignore[call-overload]
        assert body["status"] == "degraded" and BAD_MODEL in reasons and "missing field 'features'" in reasons
        assert body["model_version"] == ranker.model_version  # the previous model keeps serving
        # CURRENT points back at the model that serves: readiness is recomputed, the old reason goes.
        registry.promote(ranker.model_version, "rollback by hand")
        _reload(client, settings)
        assert _ready(client) == (200, {"status": "ready", "candidates_version": body["candidates_version"],
                                        "model_version": ranker.model_version, "store": "ok", "reasons": []})


def test_a_corrupt_model_then_a_rollback_leaves_ready(setup: tuple[Settings, Dataset, TrainResult, Store]) -> None:
    settings, ds, ranker, store = setup
    run_refresh(settings, store, ds)
    registry = open_registry(settings.artifacts_dir)
    with TestClient(create_app(settings, store, background_reload=False)) as client:
        registry.save_model(BAD_MODEL, {"model.txt": b"not a lightgbm model\n"},
                            {"created_at": 0.0, "features": ["als_score"]})
        registry.promote(BAD_MODEL, "test: corrupt")
        _reload(client, settings)
        assert _ready(client)[1]["status"] == "degraded"
        assert registry.rollback() == ranker.model_version
        _reload(client, settings)
        status, body = _ready(client)
        assert (status, body["status"], body["reasons"]) == (200, "ready", [])


def test_a_model_that_fails_at_start_then_is_replaced_leaves_ready(
        setup: tuple[Settings, Dataset, TrainResult, Store]) -> None:
    settings, ds, ranker, store = setup
    run_refresh(settings, store, ds)
    registry = open_registry(settings.artifacts_dir)
    registry.save_model(BAD_MODEL, {"model.txt": b"not a lightgbm model\n"},
                        {"created_at": 0.0, "features": ["als_score"]})
    registry.promote(BAD_MODEL, "test: corrupt")
    with TestClient(create_app(settings, store, background_reload=False)) as client:
        status, body = _ready(client)
        assert body["status"] == "degraded" and body["model_version"] is None
        assert any("corrupt" in str(r) for r in body["reasons"])  # type: ignore[union-attr]
        assert client.get("/v1/users/u5/recommendations").json()["fallback"] == "no_model"
        registry.promote(ranker.model_version, "fixed")
        _reload(client, settings)
        assert _ready(client)[1]["status"] == "ready"
