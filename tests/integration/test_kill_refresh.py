"""SIGKILL the real `recsys refresh` process mid-write, right after the pointer flip, and at a random moment.

After each kill the published version must be complete and readable; the next refresh must succeed and
leave no version's keys behind unlisted. The long run (30 kills on 20k users) is benchmarks/kill_refresh.py.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from recsys.artifacts import ArtifactRegistry
from recsys.engines.verify import verify_published
from recsys.store import Store, open_backend
from recsys.store.integrity import orphaned_versions
from tests.conftest import REDIS_URL, REPO, redis_available
from tests.helpers import clustered_interactions

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Store, dict[str, str], Path, list[str]]]:
    if not redis_available():
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI but does not answer at {REDIS_URL}")
        pytest.skip(f"no Redis at {REDIS_URL}")
    ns = f"kill-{uuid.uuid4().hex[:8]}"
    inter, items = clustered_interactions(n_users=1500, n_items=160, per_user=20, seed=5)
    data = tmp_path / "data"
    data.mkdir()
    inter.write_parquet(data / "interactions.parquet")
    items.write_parquet(data / "items.parquet")
    env = {**os.environ, "RECSYS_STORE_URL": REDIS_URL, "RECSYS_STORE_NAMESPACE": ns,
           "RECSYS_ARTIFACTS_DIR": str(tmp_path / "artifacts"), "RECSYS_LOG_LEVEL": "WARNING",
           "RECSYS_ALS__FACTORS": "8", "RECSYS_ALS__ITERATIONS": "3",
           "RECSYS_PUBLISH_BATCH_SIZE": "1",  # one round trip per user: a write phase long enough to hit
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    store = Store(open_backend(REDIS_URL), namespace=ns)
    yield store, env, data, sorted(inter["user_id"].unique().to_list())
    store.wipe()
    store.close()


def _refresh(env: dict[str, str], data: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "cli", "refresh", "--data", str(data)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _kill_when(proc: subprocess.Popen[bytes], condition: Callable[[], bool], timeout: float = 60) -> bool:
    """SIGKILL the refresh's process group as soon as `condition` holds; False if it finished first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not condition():
        assert time.monotonic() < deadline, "kill condition never reached"
        time.sleep(0.001)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    return killed


def test_refresh_killed_anywhere_leaves_a_complete_version(
        setup: tuple[Store, dict[str, str], Path, list[str]]) -> None:
    store, env, data, users = setup
    registry = ArtifactRegistry(store.artifacts)  # redis:// keeps the bundles in the store too
    assert _refresh(env, data).wait(120) == 0
    first = verify_published(store, registry, users)
    assert first.ok and first.users_ok == len(users), first.problems

    # 1. Mid-write: the new staging version is registered and its keys are being written.
    known = {v["version"] for v in store.candidates.versions()}

    def writing() -> bool:
        for v in store.candidates.versions():
            name = str(v["version"])
            if name not in known and store.candidates.meta(name) is None:
                return any(blob is not None for blob in store.read_user_blobs(name, users[::30]))
        return False

    proc = _refresh(env, data)
    assert _kill_when(proc, writing)
    mid = verify_published(store, registry, users)
    assert mid.ok and mid.version == first.version, mid.problems

    # 2. Just after the pointer flip, before garbage collection and bundle pruning.
    proc = _refresh(env, data)
    assert _kill_when(proc, lambda: store.candidates.current_version() != first.version)
    flipped = verify_published(store, registry, users)
    assert flipped.ok and flipped.version != first.version, flipped.problems

    # 3. At a random moment (seeded) of a whole run.
    proc = _refresh(env, data)
    t0, delay = time.monotonic(), random.Random(3).uniform(0.5, 4.0)
    _kill_when(proc, lambda: time.monotonic() - t0 > delay)
    assert verify_published(store, registry, users).ok

    # The next refresh succeeds and leaves nothing behind that no one would collect.
    assert _refresh(env, data).wait(120) == 0
    final = verify_published(store, registry, users)
    assert final.ok and final.version not in (first.version, flipped.version), final.problems
    client = redis.Redis.from_url(REDIS_URL)
    keys = [k.decode() for k in client.scan_iter(match=f"{store.namespace}:v:*", count=10000)]
    assert orphaned_versions(store, keys) == set()
