"""The offline builder and the API path produce identical feature matrices for the same inputs.

Every registered feature is compared, not only those the trained model kept: pruning may drop a
feature today and a re-test may bring it back, so all of them must agree between the two paths.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

import recsys.serving.service as service_module
from api.app import create_app
from recsys.artifacts import open_registry
from recsys.candidates.item_side import ItemSide
from recsys.candidates.pipeline import build_candidates
from recsys.candidates.sources import CachedList
from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.engines.publish import publish_artifacts
from recsys.features import REGISTRY, FeatureContext, make_context
from recsys.ranking.dataset import offline_features
from recsys.ranking.train import TrainResult
from recsys.store import Store


def test_offline_and_served_features_are_identical(
        any_store: Store, trained_artifacts: tuple[Settings, Dataset, TrainResult],
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings, ds, ranker = trained_artifacts
    assert set(ranker.feature_names) <= set(REGISTRY.names)
    arts = build_candidates(ds.interactions, ds.items, version="consistency", als_config=settings.als,
                            candidate_config=settings.candidates)
    arts.bundle.save(open_registry(settings.artifacts_dir))
    publish_artifacts(any_store, arts, version="consistency")

    captured: list[np.ndarray] = []
    contexts: list[FeatureContext] = []
    frozen_now = 1_700_000_000.0
    monkeypatch.setattr(time, "time", lambda: frozen_now)

    def capture_context(*args: object, **kwargs: object) -> FeatureContext:
        ctx = make_context(*args, **kwargs)  # type: ignore[arg-type]
        contexts.append(ctx)
        return ctx

    monkeypatch.setattr(service_module, "make_context", capture_context)
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
    item_side = ItemSide(arts.bundle, settings.als.regularization, settings.als.alpha)
    model_features = app.state.service.state.model.feature_names
    cached = CachedList(*arts.lists.row(row))
    _, offline = offline_features(item_side, cached, arts.histories[row], offline_session, frozen_now,
                                  model_features, settings.candidates)
    assert len(captured) == 1
    np.testing.assert_array_equal(captured[0], offline)  # what the served model saw
    assert offline.shape[1] == len(model_features)

    # Every registered feature (the consistency contract covers the whole registry).
    assert len(contexts) == 1
    _, offline_all = offline_features(item_side, cached, arts.histories[row], offline_session,
                                      frozen_now, REGISTRY.names, settings.candidates)
    online_all = REGISTRY.build_matrix(REGISTRY.names, contexts[0])
    np.testing.assert_array_equal(online_all, offline_all)
    assert offline_all.shape[1] == len(REGISTRY.names)
    # Only session-neighbour candidates lack an ALS score/rank (NaN = LightGBM's missing value).
    from_session = offline_all[:, REGISTRY.names.index("from_session")] == 1.0
    assert from_session.any()
    nan_cols = {REGISTRY.names[j] for j in np.flatnonzero(np.isnan(offline_all).any(axis=0))}
    assert nan_cols == {"als_score", "als_rank"}
    assert np.isfinite(offline_all[~from_session]).all()
