"""/docs and /redoc render with no network: their assets come from an installed package, not a CDN.

Before: the Swagger UI page loaded its script and style from cdn.jsdelivr.net, so on a private
network /docs was a blank page. Here a real headless Chromium loads the pages from a live server
(uvicorn on loopback) while every host name other than 127.0.0.1 fails to resolve, and the operations
must be on the page. Skips without Chromium locally; `.ci/run` installs it, and in CI it must run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.app import create_app
from recsys.config import Settings
from tests.redis_server import free_port

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from screenshot_report import find_browser  # noqa: E402

# Headless, no sandbox (root in CI), and no network but the loopback API: the page gets nothing else.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--virtual-time-budget=20000"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("docs")
    settings = Settings(store_url="embedded://:memory:", artifacts_dir=tmp / "artifacts")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _browser() -> str:
    browser = find_browser()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is required in CI (.ci/run installs it with apt-get)")
        pytest.skip("no Chromium installed (apt-get install -y chromium)")
    return browser


def _dom(url: str) -> str:
    proc = subprocess.run([_browser(), *CHROMIUM_ARGS, "--dump-dom", url], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_docs_pages_reference_no_other_host(live: str) -> None:
    for page in ("/docs", "/redoc"):
        html = httpx.get(live + page).text
        urls = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', html)
        assert urls, page
        assert all(u.startswith("/") and not u.startswith("//") for u in urls), (page, urls)
        for u in urls:
            assert httpx.get(live + u).status_code == 200, u


def test_swagger_ui_renders_every_operation_offline_in_chromium(live: str) -> None:
    paths = set(httpx.get(live + "/openapi.json").json()["paths"])
    dom = _dom(live + "/docs")
    rendered = set(re.findall(r'data-path="([^"]+)"', dom))
    assert paths and rendered == paths, sorted(paths ^ rendered)
    assert "Top-k for a user" in dom or "opblock" in dom


def test_redoc_renders_offline_in_chromium(live: str) -> None:
    spec = httpx.get(live + "/openapi.json").json()
    operations = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    dom = _dom(live + "/redoc")
    assert all(f"operation/{op}" in dom for op in operations), sorted(op for op in operations
                                                                      if f"operation/{op}" not in dom)
