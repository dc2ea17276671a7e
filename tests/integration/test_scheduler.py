"""Scheduler cluster behaviour against the real Redis (db 15, one namespace per test).

Two schedulers on one store stand for two machines: each has its own Redis connection, runner and
APScheduler instance, and only the store is shared.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from jobs.context import JobAbandoned, JobContext, JobOutcome
from jobs.locks import JobLock
from jobs.runner import JobRunner
from jobs.scheduler import build_scheduler, parse_cron, scheduled_tick
from recsys.config import SchedulerConfig, Settings
from recsys.store import Store, open_store

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("RECSYS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def namespace() -> Iterator[str]:
    ns = f"test-jobs-{uuid.uuid4().hex[:10]}"
    probe = open_store(REDIS_URL, namespace=ns)
    if not probe.ping():
        pytest.skip(f"no Redis at {REDIS_URL}")
    yield ns
    probe.wipe()
    probe.close()


def make_store(ns: str) -> Store:
    return open_store(REDIS_URL, namespace=ns)


def settings(**scheduler: object) -> Settings:
    defaults: dict[str, object] = {"lock_ttl_seconds": 3.0, "misfire_grace_seconds": 2}
    return Settings(store_url=REDIS_URL, scheduler=SchedulerConfig(**{**defaults, **scheduler}))


class LateRunner(JobRunner):
    """A scheduler on a slower machine: starts each run 0.3 s after the tick, when the other is done."""

    def run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.3)
        return super().run(*args, **kwargs)


def run_two_schedulers(ns: str, job, seconds: float, cron: str = "* * * * * *") -> list[Store]:
    stores = [make_store(ns), make_store(ns)]
    runners = [JobRunner(settings(), stores[0], {"count": job}),
               LateRunner(settings(), stores[1], {"count": job})]
    schedulers = [build_scheduler(r, {"count": cron}) for r in runners]
    for s in schedulers:
        s.start()
    time.sleep(seconds)
    for s in schedulers:
        s.shutdown(wait=True)
    return stores


def test_two_schedulers_run_each_tick_once(namespace: str) -> None:
    ran: list[tuple[str, int]] = []
    guard = threading.Lock()

    def count(ctx: JobContext) -> JobOutcome:
        with guard:
            ran.append((str(ctx.run.tick), id(ctx.runner)))
        return JobOutcome()  # instant: without the tick claim the other scheduler would run it again

    start = datetime.now(timezone.utc)
    stores = run_two_schedulers(namespace, count, 5.5)
    ticks = [t for t, _ in ran]
    assert len(ticks) >= 4
    assert len(ticks) == len(set(ticks)), f"a tick ran twice: {sorted(ticks)}"
    # No tick in the middle of the window was skipped either: consecutive seconds.
    secs = sorted(int(datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())
                  for t in ticks)
    assert secs == list(range(secs[0], secs[0] + len(secs)))
    assert secs[0] <= start.timestamp() + 2
    history = stores[0].jobs.runs(limit=None)
    assert sorted(r["tick"] for r in history) == sorted(ticks)
    assert {r["status"] for r in history} == {"ok"}


def test_overlapping_runs_never_run_at_once(namespace: str) -> None:
    """A run longer than the tick interval: the next ticks are skipped, never run concurrently."""
    active, peak = 0, 0
    guard = threading.Lock()

    def slow(ctx: JobContext) -> JobOutcome:
        nonlocal active, peak
        with guard:
            active += 1
            peak = max(peak, active)
        time.sleep(1.6)
        with guard:
            active -= 1
        return JobOutcome()

    stores = run_two_schedulers(namespace, slow, 4.5)
    assert peak == 1
    statuses = [r["status"] for r in stores[0].jobs.runs(limit=None)]
    assert statuses.count("ok") >= 2
    # While one scheduler's run holds the lock, the other claims the next tick and records the skip.
    assert any(s.startswith("skipped: already running") for s in statuses), statuses


def test_lock_is_renewed_while_held_and_exclusive(namespace: str) -> None:
    store, other = make_store(namespace), make_store(namespace)
    lock = JobLock(store, "renew", ttl_seconds=0.6)
    assert lock.acquire()
    time.sleep(1.5)  # 2.5 TTLs: the key would be gone without renewal
    assert store.locks.holder("renew") is not None
    assert lock.renewals >= 3 and not lock.lost.is_set()
    assert not JobLock(other, "renew", 0.6).acquire()
    lock.release()
    assert store.locks.holder("renew") is None
    second = JobLock(other, "renew", 0.6)
    assert second.acquire()
    second.release()


def test_job_that_loses_its_lock_does_not_publish(namespace: str) -> None:
    store = make_store(namespace)
    steal = threading.Event()

    def publish(ctx: JobContext) -> JobOutcome:
        writer = ctx.store.candidates.begin()
        writer.write_meta({})
        steal.set()
        deadline = time.monotonic() + 5
        while not ctx.should_stop() and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            ctx.checkpoint()
        except JobAbandoned:
            ctx.store.candidates.abandon(writer.version)
            raise
        ctx.store.candidates.publish(writer.version)
        return JobOutcome(version=writer.version)

    runner = JobRunner(settings(lock_ttl_seconds=0.6), store, {"publish": publish})
    stolen: list[str | None] = []

    def take_over() -> None:  # the lock expires (its holder stalled) and another scheduler takes it
        steal.wait(5)
        store.locks.release("publish", store.locks.holder("publish") or "")
        stolen.append(store.locks.acquire("publish", 5))

    thief = threading.Thread(target=take_over)
    thief.start()
    run = runner.run("publish")
    thief.join()
    assert run is not None and run.status == "abandoned" and "lock lost" in (run.error or "")
    assert store.candidates.current_version() is None
    # The other holder's lock is left alone.
    assert stolen[0] is not None and store.locks.holder("publish") == stolen[0]


def test_scheduled_tick_is_the_same_on_every_machine() -> None:
    trigger = parse_cron("*/2 * * * * *", "UTC")
    base = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    late = base.replace(microsecond=900_000)  # one machine wakes 0.9 s late
    assert scheduled_tick(trigger, base, 10) == scheduled_tick(trigger, late, 10) == base
    assert scheduled_tick(trigger, base.replace(second=1), 10) == base
    hourly = parse_cron("15 * * * *", "UTC")
    assert scheduled_tick(hourly, base.replace(minute=20), 600) == base.replace(minute=15)
    assert scheduled_tick(hourly, base.replace(minute=40), 600) is None  # outside the misfire window


def _child(ns: str, mode: str, flag: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = REPO / "tests/integration/scheduler_child.py"
    return subprocess.Popen([sys.executable, str(script), REDIS_URL, ns, mode, str(flag)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = proc.communicate()[0].decode()
            pytest.fail(f"child never started its job:\n{out}")
        time.sleep(0.05)


@pytest.mark.parametrize("mode, expected_error", [
    ("cooperative", "shutdown requested"),  # abandons at its checkpoint
    ("stubborn", "shutdown timeout"),  # never checks: abandoned when the 1 s shutdown timeout expires
])
def test_sigterm_mid_job_publishes_nothing(namespace: str, tmp_path: Path, mode: str,
                                           expected_error: str) -> None:
    flag = tmp_path / "started"
    proc = _child(namespace, mode, flag)
    _wait_for(flag, proc)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=15)[0].decode()
    assert proc.returncode == 0, out
    store = make_store(namespace)
    assert store.candidates.current_version() is None
    runs = store.jobs.runs(limit=None)
    assert [r["status"] for r in runs] == ["abandoned"], out
    assert expected_error in runs[0]["error"]
    assert store.locks.holder("publish") is None  # freed at once, not left to expire


def test_killed_scheduler_publishes_nothing_and_frees_the_job(namespace: str, tmp_path: Path) -> None:
    flag = tmp_path / "started"
    proc = _child(namespace, "cooperative", flag)
    _wait_for(flag, proc)
    proc.kill()
    proc.wait(timeout=10)
    store = make_store(namespace)
    assert store.candidates.current_version() is None
    time.sleep(1.6)  # one lock TTL
    assert store.locks.holder("publish") is None
    runs = store.jobs.runs(limit=None)
    assert [r["status"] for r in runs] == ["lost"]
    # Another scheduler can run the job now.
    runner = JobRunner(settings(), store, {"publish": lambda ctx: JobOutcome(version="v2")})
    run = runner.run("publish")
    assert run is not None and run.status == "ok"
