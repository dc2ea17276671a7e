"""Shared fixtures: a seeded rng, store backends (real Redis included), MovieLens location."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from recsys.data.loaders import Dataset
from recsys.store import Store, open_backend
from recsys.store.backend import KVBackend
from tests.redis_cluster import LocalRedisCluster
from tests.redis_server import PrivateRedis, redis_server_available

REPO = Path(__file__).resolve().parents[1]
ML100K = Path(os.environ.get("RECSYS_ML100K", REPO.parent / "shared" / "data" / "ml-100k"))
REDIS_URL = os.environ.get("RECSYS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# A Redis Cluster (3 masters + 3 replicas): .ci/run starts one and sets this; without it the tests start
# a private one once per session (tests/redis_cluster.py), or skip when redis-server is not installed.
CLUSTER_URL = os.environ.get("RECSYS_TEST_REDIS_CLUSTER_URL")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def ml100k() -> Path:
    if not (ML100K / "u.data").exists():
        pytest.skip(f"MovieLens 100k not found at {ML100K}")
    return ML100K


def redis_available() -> bool:
    try:
        return open_backend(REDIS_URL).ping()
    except Exception:
        return False


@pytest.fixture
def redis_store() -> Iterator[Store]:
    """A Store on the real Redis, isolated by a unique namespace, wiped afterwards."""
    if not redis_available():
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI but does not answer at {REDIS_URL}")
        pytest.skip(f"no Redis at {REDIS_URL}")
    ns = f"test-{uuid.uuid4().hex[:10]}"
    store = Store(open_backend(REDIS_URL), namespace=ns, grace_seconds=60)
    yield store
    store.wipe()
    store.close()


@pytest.fixture
def embedded_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(open_backend(f"embedded://{tmp_path / 'store.sqlite'}"), grace_seconds=60)
    yield store
    store.close()


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if CLUSTER_URL:
        yield CLUSTER_URL
        return
    if not redis_server_available():
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI (for the Redis Cluster)")
        pytest.skip("redis-server not installed: no local Redis Cluster")
    cluster = LocalRedisCluster(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    yield cluster.url
    cluster.stop()


@pytest.fixture
def cluster_store(redis_cluster_url: str) -> Iterator[Store]:
    """A Store on a real 3+3 Redis Cluster, isolated by a unique namespace, wiped afterwards."""
    store = Store(open_backend(redis_cluster_url), namespace=f"test-{uuid.uuid4().hex[:10]}", grace_seconds=60)
    yield store
    store.wipe()
    store.close()


@pytest.fixture(params=["embedded", "redis", "cluster"])
def any_store(request: pytest.FixtureRequest) -> Store:
    """Contract tests run against every backend, the real Redis included."""
    return request.getfixturevalue(f"{request.param}_store")


@dataclass(frozen=True)
class BackendCase:
    """A raw byte-level backend and a key prefix of the test's own (backend contract tests)."""

    backend: KVBackend
    ns: str


@pytest.fixture(params=["embedded", "redis", "cluster"])
def any_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendCase]:
    if request.param == "cluster":
        backend = open_backend(request.getfixturevalue("redis_cluster_url"))
    elif request.param == "redis":
        if not redis_available():
            if os.environ.get("CI"):
                pytest.fail(f"Redis is required in CI but does not answer at {REDIS_URL}")
            pytest.skip(f"no Redis at {REDIS_URL}")
        backend = open_backend(REDIS_URL)
    else:
        backend = open_backend(f"embedded://{tmp_path / 'backend.sqlite'}")
    case = BackendCase(backend, f"test-{uuid.uuid4().hex[:10]}")
    yield case
    backend.expire_prefix(f"{case.ns}:", 0)
    backend.close()


@dataclass(frozen=True)
class TrainedRanker:
    """A LightGBM ranker trained once per session on clustered generated data (known structure)."""

    dataset: Dataset
    models_dir: Path
    model_version: str

    def install(self, artifacts_dir: Path) -> None:
        """Copy the trained models/ (CURRENT included) into a test's own artifacts dir."""
        shutil.copytree(self.models_dir, artifacts_dir / "models")


@pytest.fixture(scope="session")
def trained_ranker(tmp_path_factory: pytest.TempPathFactory) -> TrainedRanker:
    from recsys.config import Settings
    from recsys.ranking.train import train_ranker
    from tests.helpers import clustered_interactions

    tmp = tmp_path_factory.mktemp("ranker")
    settings = Settings(artifacts_dir=tmp)
    settings.als.factors = 8
    inter, items = clustered_interactions(n_users=300, n_items=200, per_user=24, seed=3)
    dataset = Dataset(inter, items, "generated", "test")
    result = train_ranker(settings, dataset)
    return TrainedRanker(dataset, tmp / "models", result.model_version)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of the test's own (free port) that it may stop, freeze or kill."""
    if not redis_server_available():
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI")
        pytest.skip("redis-server binary not installed")
    r = PrivateRedis(tmp_path / "redis")
    r.start()
    yield r
    r.stop()
