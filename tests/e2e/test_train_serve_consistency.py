"""The offline builder and the API path produce identical feature matrices for the same inputs."""

from __future__ import annotations

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recsys.candidates.pipeline import build_candidates
from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.features import REGISTRY, ItemSide
from recsys.ranking.dataset import offline_features
from recsys.ranking.train import TrainResult
from recsys.refresh import publish_artifacts
from recsys.store import CandidateStore


def test_offline_and_served_features_are_identical(
        any_store: CandidateStore, trained_artifacts: tuple[Settings, Dataset, TrainResult],
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings, ds, ranker = trained_artifacts
    assert set(ranker.feature_names) == set(REGISTRY.names)  # every registered feature is covered
    arts = build_candidates(ds.interactions, ds.items, version="consistency", als_config=settings.als,
                            candidate_config=settings.candidates)
    arts.bundle.save(settings.artifacts_dir / "bundles")
    publish_artifacts(any_store, arts, version="consistency")

    captured: list[np.ndarray] = []
    frozen_now = 1_700_000_000.0
    monkeypatch.setattr(time, "time", lambda: frozen_now)
    app = create_app(settings, any_store, background_reload=False)
    with TestClient(app) as client:
        app.state.service.feature_sink = lambda user, version, names, matrix: captured.append(matrix.copy())
        session = [{"item_id": "i5", "event": "purchase", "timestamp": frozen_now - 50},
                   {"item_id": "i9", "event": "view", "timestamp": frozen_now - 20},
                   {"item_id": "unknown-item", "event": "click", "timestamp": frozen_now - 10}]
        r = client.post("/v1/recommendations", json={"user_id": "u11", "k": 10, "session": session})
        assert r.status_code == 200 and r.json()["fallback"] is None

    row = arts.matrix.user_index()["u11"]
    offline_session = [(s["item_id"], s["event"], s["timestamp"]) for s in session]
    _, offline = offline_features(ItemSide(arts.bundle, settings.als.regularization, settings.als.alpha),
                                  arts.lists.row(row), arts.histories[row], offline_session, frozen_now,
                                  app.state.service.state.model.feature_names, settings.candidates.session_candidates)
    assert len(captured) == 1
    np.testing.assert_array_equal(captured[0], offline)
    assert offline.shape[1] == len(REGISTRY.names)
    # Only session-neighbour candidates lack an ALS score/rank (NaN = LightGBM's missing value).
    names = app.state.service.state.model.feature_names
    from_session = offline[:, names.index("from_session")] == 1.0
    assert from_session.any()
    nan_cols = {names[j] for j in np.flatnonzero(np.isnan(offline).any(axis=0))}
    assert nan_cols == {"als_score", "als_rank"}
    assert np.isfinite(offline[~from_session]).all()
