"""Artifacts through the store: API replicas with empty artifact directories serve from the store URL alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recsys.artifacts import ArtifactRegistry, registry_for
from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.engines.local import run_refresh
from recsys.errors import ArtifactError
from recsys.ranking.train import train_ranker
from recsys.store import Store
from tests.conftest import REPO
from tests.helpers import clustered_interactions
from tests.redis_server import free_port


@pytest.fixture(params=["redis", "cluster"])
def server_store(request: pytest.FixtureRequest) -> Store:
    return request.getfixturevalue(f"{request.param}_store")


def _serve(url: str, namespace: str, artifacts: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RECSYS_STORE_URL": url, "RECSYS_STORE_NAMESPACE": namespace,
           "RECSYS_ARTIFACTS_DIR": str(artifacts), "RECSYS_LOG_LEVEL": "WARNING",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ready(port: int, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body: dict[str, object] = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).json()
            if body.get("status") == "ready":
                return body
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"API on port {port} never became ready")


@pytest.fixture
def published(server_store: Store, tmp_path: Path) -> Iterator[tuple[Store, Settings]]:
    """A version and a promoted model, written into the store by a refresh and a train-ranker."""
    settings = Settings(store_url=server_store.url, store_namespace=server_store.namespace,
                        artifacts_dir=tmp_path / "writer")
    settings.als.factors = 8
    inter, items = clustered_interactions(n_users=200, n_items=120, per_user=24, seed=5)
    dataset = Dataset(inter, items, "generated", "test")
    run_refresh(settings, server_store, dataset)
    train_ranker(settings, dataset)
    yield server_store, settings


def test_two_replicas_with_empty_artifact_dirs_serve_the_same_version_and_model(
        published: tuple[Store, Settings], tmp_path: Path) -> None:
    store, settings = published
    registry = registry_for(settings, store)
    assert isinstance(registry, ArtifactRegistry) and registry.current_model() is not None
    assert not (settings.artifacts_dir / "bundles").exists() and not (settings.artifacts_dir / "models").exists()
    dirs = [tmp_path / "replica-a", tmp_path / "replica-b"]
    ports = [free_port(), free_port()]
    procs = [_serve(store.url, store.namespace, d, p) for d, p in zip(dirs, ports, strict=True)]
    try:
        ready = [_ready(p) for p in ports]
        assert ready[0]["candidates_version"] == ready[1]["candidates_version"] == store.candidates.current_version()
        assert ready[0]["model_version"] == ready[1]["model_version"] == registry.current_model()
        answers = [httpx.get(f"http://127.0.0.1:{p}/v1/users/u7/recommendations", params={"k": 10}).json()
                   for p in ports]
        assert answers[0]["fallback"] is None and answers[0]["items"] == answers[1]["items"]
        # Nothing was written next to the replicas: the store alone carried the artifacts.
        assert all(not d.exists() or not any(d.rglob("*")) for d in dirs)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def test_a_write_that_dies_before_its_index_leaves_no_version_and_checksums_hold(
        published: tuple[Store, Settings], monkeypatch: pytest.MonkeyPatch) -> None:
    store, settings = published
    registry = registry_for(settings, store)
    version = registry.current_model()
    assert version is not None
    manifest = registry.model_manifest(version)
    files = {name: registry.model_file(version, name) for name in manifest.files}
    backend = store.artifacts._backend  # the test plays a writer killed between its chunks and its index
    real_set = backend.set

    def killed_before_index(key: str, value: bytes, ttl_ms: int | None = None) -> None:
        if key.endswith(":index"):
            raise RuntimeError("writer killed")
        real_set(key, value, ttl_ms)

    monkeypatch.setattr(backend, "set", killed_before_index)
    with pytest.raises(RuntimeError):
        registry.save_model("half-written", files, manifest.model_dump(exclude={"files", "model_version"}))
    monkeypatch.undo()
    assert "half-written" not in registry.model_versions()
    with pytest.raises(ArtifactError):
        registry.model_manifest("half-written")
    # A chunk that changed after it was written is caught by the manifest's checksum, never served.
    store.artifacts.add_file("models", version, "model.txt", files["model.txt"][:-10] + b"0123456789")
    with pytest.raises(ArtifactError, match="checksum"):
        registry.model_file(version, "model.txt")
