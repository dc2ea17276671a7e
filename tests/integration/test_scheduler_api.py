"""Scheduled refreshes while the API serves traffic, on the real Redis (db 15, one namespace per test).

Two schedulers (each with its own Redis connection, runner and APScheduler) fire the real refresh job every
3 seconds and the real drift job every 2; the API runs under uvicorn in this process, with its own store
connection, and polls for new versions as in production. Client threads hammer it over HTTP throughout.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from jobs import definitions
from jobs.context import JobContext, JobOutcome
from jobs.runner import JobRunner
from jobs.scheduler import build_scheduler
from recsys.config import DriftConfig, SchedulerConfig, Settings
from recsys.engines.local import run_refresh
from recsys.store import JobRun, Store, open_store, store_from_settings
from tests.conftest import REDIS_URL, TrainedRanker, redis_available

pytestmark = pytest.mark.redis

TOKEN = "ops-token"
CRONS = {"refresh": "*/3 * * * * *", "drift": "*/2 * * * * *"}


@pytest.fixture
def namespace() -> Iterator[str]:
    if not redis_available():
        pytest.skip(f"no Redis at {REDIS_URL}")
    ns = f"test-ops-{uuid.uuid4().hex[:10]}"
    yield ns
    probe = open_store(REDIS_URL, namespace=ns)
    probe.wipe()
    probe.close()


class LiveServer:
    """uvicorn serving the app in a thread on a free port (signal handlers stay with the main thread)."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


class Traffic:
    """Client threads requesting recommendations until stopped; every response is recorded."""

    def __init__(self, url: str, threads: int = 3) -> None:
        self.url = url
        self.stop = threading.Event()
        self.results: list[list[tuple[int, str | None, str | None]]] = [[] for _ in range(threads)]
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(threads)]

    def _loop(self, i: int) -> None:
        out = self.results[i]
        with httpx.Client(base_url=self.url, timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                user = f"u{(i * 97 + n) % 300}"
                n += 1
                try:
                    r = client.get(f"/v1/users/{user}/recommendations", params={"k": 10})
                    body = r.json()
                    out.append((r.status_code, body.get("candidates_version"), body.get("fallback")))
                except Exception as exc:  # a refused or broken connection is a failed request too
                    self.errors.append(repr(exc))

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)

    def latest_version(self) -> str | None:
        last = [r[-1][1] for r in self.results if r]
        return max(last) if last else None


class RecordingRunner(JobRunner):
    """A scheduler that records every tick it fires (whether or not it wins the tick's claim)."""

    fired: list[tuple[str, str | None]]

    def run(self, name: str, **kwargs: Any) -> JobRun | None:
        self.fired.append((name, kwargs.get("tick")))
        return super().run(name, **kwargs)


def write_data(trained: TrainedRanker, root: Path) -> Path:
    root.mkdir(parents=True)
    trained.dataset.interactions.write_parquet(root / "interactions.parquet")
    assert trained.dataset.items is not None
    trained.dataset.items.write_parquet(root / "items.parquet")
    return root


def test_scheduled_refresh_switches_the_live_api_with_no_failed_request(
        namespace: str, tmp_path: Path, trained_ranker: TrainedRanker) -> None:
    settings = Settings(store_url=REDIS_URL, store_namespace=namespace, artifacts_dir=tmp_path / "artifacts",
                        artifacts_storage="files",  # the trained ranker is installed as files below
                        data_path=write_data(trained_ranker, tmp_path / "data"), admin_token=TOKEN,
                        reload_interval_seconds=0.2, seed=7,
                        scheduler=SchedulerConfig(lock_ttl_seconds=10, misfire_grace_seconds=2),
                        # The drift job runs for real but never reaches a verdict here (tests/e2e covers that):
                        # a verdict takes seconds (evidently) and could trigger a retrain mid-test.
                        drift=DriftConfig(feature_log_rate=0.05, min_rows=1_000_000))
    settings.als.factors = 8
    trained_ranker.install(settings.artifacts_dir)
    setup_store = store_from_settings(settings)
    first = run_refresh(settings, setup_store, settings.data_path).version

    ran: list[tuple[str, str | None, int]] = []
    guard = threading.Lock()

    def counted(job: str):  # the real job, plus a record of which scheduler ran which tick
        def fn(ctx: JobContext) -> JobOutcome | None:
            with guard:
                ran.append((job, ctx.run.tick, id(ctx.runner)))
            return definitions.DEFAULT_JOBS[job](ctx)
        return fn

    stores: list[Store] = [store_from_settings(settings) for _ in range(2)]
    runners = [RecordingRunner(settings, st, {name: counted(name) for name in ("refresh", "drift", "train-ranker")})
               for st in stores]
    for r in runners:
        r.fired = []
    schedulers = [build_scheduler(r, CRONS) for r in runners]

    app = create_app(settings)
    with LiveServer(app) as server, Traffic(server.url) as traffic:
        time.sleep(0.5)  # traffic on the first version before any tick
        for s in schedulers:
            s.start()
        time.sleep(7.2)
        for s in schedulers:
            s.shutdown(wait=True)  # running jobs finish
        final = setup_store.candidates.current_version()
        deadline = time.monotonic() + 5
        while traffic.latest_version() != final and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)  # more traffic on the final version
        traffic.stop.set()
        for t in traffic.threads:
            t.join(timeout=15)

        with httpx.Client(base_url=server.url) as client:
            assert client.get("/v1/admin/jobs").status_code == 401
            jobs_api = client.get("/v1/admin/jobs", params={"limit": 1000},
                                  headers={"Authorization": f"Bearer {TOKEN}"})
            metrics_text = client.get("/metrics").text

    history = setup_store.jobs.runs(limit=None)
    refreshes = [r for r in history if r["job"] == "refresh"]

    # -- the schedulers: both fired every tick, exactly one ran it, and every refresh published
    assert len(refreshes) >= 2, history
    for job in ("refresh", "drift"):
        runs = [(tick, who) for name, tick, who in ran if name == job]
        ticks = [tick for tick, _ in runs]
        assert len(ticks) == len(set(ticks)), f"a {job} tick ran twice: {sorted(runs)}"
        for r in runners:  # each scheduler fired each of those ticks: the store claim chose one
            assert set(ticks) <= {t for name, t in r.fired if name == job}
        assert sorted(ticks) == sorted(r["tick"] for r in history if r["job"] == job)
    assert {r["status"] for r in history} == {"ok"}, [(r["job"], r["status"], r["error"]) for r in history]
    versions = [r["version"] for r in refreshes]
    assert len(set(versions)) == len(versions) and final == max(versions)
    assert {r["details"]["drift_status"] for r in history if r["job"] == "drift"} <= {"insufficient_data",
                                                                                    "reference_collected"}

    # -- the API: switched to every new version as it came, and not one request failed
    responses = [x for thread in traffic.results for x in thread]
    assert not traffic.errors, traffic.errors[:3]
    assert len(responses) > 100
    assert {status for status, _, _ in responses} == {200}
    assert {fallback for _, _, fallback in responses} == {None}
    seen = {version for _, version, _ in responses}
    assert first in seen and final in seen and seen <= {first, *versions}
    assert len(seen) >= 2
    for thread in traffic.results:  # a client never goes back to an older version after a newer one
        served = [version for _, version, _ in thread]
        assert served == sorted(served)

    # -- GET /v1/admin/jobs is the store's history
    assert jobs_api.status_code == 200
    assert [(r["run_id"], r["status"]) for r in jobs_api.json()["runs"]] == \
        [(r["run_id"], r["status"]) for r in history]

    # -- /metrics: parses, and says what happened
    families = {f.name: f for f in text_string_to_metric_families(metrics_text)}
    samples: dict[str, list[Any]] = defaultdict(list)
    for f in families.values():
        for s in f.samples:
            samples[s.name].append(s)
    endpoint = "/v1/users/{user_id}/recommendations"
    ok = [s.value for s in samples["recsys_requests_total"]
          if s.labels == {"endpoint": endpoint, "method": "GET", "status": "200"}]
    assert ok == [len(responses)]
    assert families["recsys_request_seconds"].type == "histogram"
    count = [s.value for s in samples["recsys_request_seconds_count"] if s.labels["endpoint"] == endpoint]
    assert count == [len(responses)]
    assert {s.labels["reason"] for s in samples["recsys_fallbacks_total"]} >= {"unknown_user", "store_unavailable"}
    info = samples["recsys_serving_info"]
    assert [s.labels["candidates_version"] for s in info] == [final]
    assert [s.labels["model_version"] for s in info] == [trained_ranker.model_version]
    assert 0 <= samples["recsys_candidates_version_age_seconds"][0].value < 30
    assert samples["recsys_model_age_seconds"][0].value > 0
    last_ok = {s.labels["job"]: s.value for s in samples["recsys_job_last_success_timestamp_seconds"]}
    assert last_ok["refresh"] == pytest.approx(max(r["end"] for r in refreshes))
    durations = {s.labels["job"]: s.value for s in samples["recsys_job_last_duration_seconds"]}
    assert durations["refresh"] == pytest.approx(refreshes[0]["duration_s"], abs=1e-2)
    runs = {(s.labels["job"], s.labels["status"]): s.value for s in samples["recsys_job_runs"]}
    assert runs[("refresh", "ok")] == len(refreshes)
    assert {s.labels["job"]: s.value for s in samples["recsys_job_consecutive_failures"]}["refresh"] == 0
    assert [s.labels["status"] for s in samples["recsys_drift_last_status"]] == ["insufficient_data"]
    written = {s.labels["outcome"]: s.value for s in samples["recsys_feature_log_rows_total"]}
    assert written["written"] > 0 and written["failed"] == written["dropped"] == 0
    for st in (setup_store, *stores):
        st.close()
