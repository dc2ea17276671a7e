"""No secret in any output: `recsys serve` and `recsys demo` against a password-protected Redis.

Before: the start-up banners of both commands printed the store URL with its password in full.
Every URL the service prints or logs now goes through one redaction function (recsys/redact.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recsys.redact import redact_url
from tests.redis_server import PrivateRedis, free_port, redis_server_available

REPO = Path(__file__).resolve().parents[2]


def test_redact_url_masks_passwords_and_keeps_the_rest() -> None:
    assert redact_url("redis://:s3cret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert redact_url("rediss://user:s3cret@host/2") == "rediss://user:***@host/2"
    assert redact_url("redis://host:6379/0?password=s3cret&db=1") == "redis://host:6379/0?password=***&db=1"
    assert redact_url("redis://:s3cret@host:notaport/0") == "redis://:***@host:notaport/0"
    assert redact_url("embedded://data/artifacts/store.sqlite") == "embedded://data/artifacts/store.sqlite"


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if not redis_server_available():
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI")
        pytest.skip("redis-server binary not installed")
    r = PrivateRedis(tmp_path / "redis", password=f"pw-{uuid.uuid4().hex}")
    r.start()
    yield r
    r.stop()


def _run_until_ready(args: list[str], env: dict[str, str], port: int, timeout_s: float) -> str:
    """Start the command, wait until its API answers /readyz, stop it; every byte it wrote (stdout + stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code in (200, 503):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not come up"
            time.sleep(0.2)
        httpx.get(f"http://127.0.0.1:{port}/v1/users/u1/recommendations", timeout=5)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    return out.decode(errors="replace")


@pytest.mark.slow
def test_serve_and_demo_never_print_the_store_password(locked_redis: PrivateRedis, tmp_path: Path) -> None:
    password = locked_redis.password
    assert password and password in locked_redis.url
    env = {**os.environ, "RECSYS_STORE_URL": locked_redis.url, "RECSYS_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
           "RECSYS_LOG_LEVEL": "INFO", "COLUMNS": "200"}
    port = free_port()
    demo = _run_until_ready(["demo", "--users", "300", "--items", "120", "--port", str(port)], env, port, 240)
    assert "top-10" in demo and redact_url(locked_redis.url) in demo  # the banner names the store, masked
    port = free_port()
    serve = _run_until_ready(["serve", "--port", str(port)], env, port, 60)
    assert f"127.0.0.1:{port}" in serve and redact_url(locked_redis.url) in serve
    for name, output in (("demo", demo), ("serve", serve)):
        assert password not in output, f"{name} printed the password"
