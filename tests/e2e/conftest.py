"""A trained service on generated data: refresh + train-ranker into a temp artifacts dir."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.engines.local import RefreshResult, run_refresh
from recsys.ranking.train import TrainResult, train_ranker
from recsys.store import Store
from tests.helpers import clustered_interactions


@dataclass
class Trained:
    settings: Settings
    dataset: Dataset
    refresh: RefreshResult
    ranker: TrainResult


def make_settings(tmp: Path) -> Settings:
    s = Settings(artifacts_dir=tmp / "artifacts", admin_token="s3cret-token", reload_interval_seconds=0.2)
    s.als.factors = 8
    return s


@pytest.fixture(scope="module")
def trained_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Dataset, TrainResult]]:
    tmp = tmp_path_factory.mktemp("trained")
    settings = make_settings(tmp)
    inter, items = clustered_interactions(n_users=300, n_items=200, per_user=24, seed=3)
    ds = Dataset(inter, items, "generated", "test")
    ranker = train_ranker(settings, ds)
    yield settings, ds, ranker


@pytest.fixture
def trained(any_store: Store, trained_artifacts: tuple[Settings, Dataset, TrainResult]) -> Trained:
    settings, ds, ranker = trained_artifacts
    refresh = run_refresh(settings, any_store, ds)
    return Trained(settings, ds, refresh, ranker)


@pytest.fixture
def client(trained: Trained, any_store: Store) -> Iterator[TestClient]:
    app = create_app(trained.settings, any_store)
    with TestClient(app) as c:
        yield c
