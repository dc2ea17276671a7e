"""A trained service in a real uvicorn process, for the console's browser tests and screenshots.

Synthetic data → refresh → two ranker models (the second promoted, so there is one to roll back to),
all in one embedded store file that the server, the tests and the console's job processes share.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from api.console.runs import settings_env
from recsys.config import Settings
from recsys.data.synthetic import write_synthetic
from recsys.engines.local import run_refresh
from recsys.ranking.train import train_ranker
from recsys.store import store_from_settings
from tests.redis_server import free_port

ADMIN_TOKEN = "console-test-token"


@dataclass
class LiveConsole:
    url: str
    settings: Settings
    process: subprocess.Popen[bytes]
    log_path: Path

    def get(self, path: str, **kw: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kw)  # type: ignore[arg-type]

    def admin_get(self, path: str) -> httpx.Response:
        return self.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def trained_settings(tmp: Path, *, users: int = 400, items: int = 200) -> Settings:
    """Data, one refresh and two trained models under `tmp`; returns the settings that name them."""
    data = tmp / "data"
    write_synthetic(data, users, items, seed=11)
    s = Settings(store_url=f"embedded://{tmp / 'store.sqlite'}", artifacts_dir=tmp / "artifacts", data_path=data,
                 admin_token=ADMIN_TOKEN, reload_interval_seconds=0.5)
    s.als.factors = 8
    s.als.iterations = 5
    store = store_from_settings(s)
    try:
        run_refresh(s, store, data)
        train_ranker(s, data)
        train_ranker(s, data, force_promote=True)
    finally:
        store.close()
    return s


def start_server(settings: Settings, log_path: Path, *, timeout_s: float = 90.0) -> LiveConsole:
    """`recsys serve` on a free loopback port with exactly these settings; waits for /healthz."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    env.update(settings_env(settings))
    env.update(RECSYS_HOST="127.0.0.1", RECSYS_PORT=str(port))
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cli", "serve"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    live = LiveConsole(f"http://127.0.0.1:{port}", settings, proc, log_path)
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"recsys serve exited {proc.returncode}: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(live.url + "/healthz", timeout=2).status_code == 200:
                return live
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            live.stop()
            raise RuntimeError(f"recsys serve did not answer in {timeout_s:.0f} s: {log_path.read_text()[-3000:]}")
        time.sleep(0.2)
