"""The job functions and runner on the embedded store: versions produced, abandon before publish, history."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from jobs import definitions
from jobs.context import JobContext, JobOutcome
from jobs.definitions import DEFAULT_JOBS
from jobs.runner import JobRunner
from jobs.scheduler import job_crons, parse_cron
from recsys.config import SchedulerConfig, Settings
from recsys.errors import ConfigError
from recsys.store import Store, open_store


@pytest.fixture
def store() -> Store:
    st = open_store("embedded://:memory:", namespace="jobtest")
    yield st
    st.close()


@pytest.fixture
def interactions(tmp_path: Path) -> Path:
    """60 users × 40 items, two taste clusters, 1200 events: enough for a real (fast) refresh."""
    rng = np.random.default_rng(5)
    users = rng.integers(0, 60, 1200)
    items = (users % 2) * 20 + rng.integers(0, 20, 1200)
    path = tmp_path / "interactions.parquet"
    pl.DataFrame({"user_id": [f"u{u}" for u in users], "item_id": [f"i{i}" for i in items],
                  "timestamp": 1_700_000_000 + np.arange(1200)}).write_parquet(path)
    return path


def refresh_settings(tmp_path: Path, data: Path | None) -> Settings:
    s = Settings(artifacts_dir=tmp_path / "artifacts", data_path=data)
    s.als.factors, s.als.iterations = 8, 3
    s.candidates.n_candidates = 20
    return s


def test_refresh_job_publishes_and_records_its_version(tmp_path: Path, store: Store,
                                                       interactions: Path) -> None:
    run = JobRunner(refresh_settings(tmp_path, interactions), store, DEFAULT_JOBS).run("refresh", trigger="schedule")
    assert run is not None and run.status == "ok", run
    assert run.version is not None and run.version == store.candidates.current_version()
    [recorded] = store.jobs.runs()
    assert recorded["version"] == run.version and recorded["details"]["users"] == 60
    assert recorded["end"] >= recorded["start"] and recorded["trigger"] == "schedule"


def test_refresh_stopped_mid_way_publishes_nothing(tmp_path: Path, store: Store,
                                                   interactions: Path) -> None:
    settings = refresh_settings(tmp_path, interactions)
    first = JobRunner(settings, store, DEFAULT_JOBS).run("refresh")
    assert first is not None and first.status == "ok"

    def refresh_then_sigterm(ctx: JobContext) -> JobOutcome:
        ctx.runner.stop_event.set()  # SIGTERM arrives while the refresh is training
        return definitions.refresh(ctx)

    run = JobRunner(settings, store, {"refresh": refresh_then_sigterm}).run("refresh")
    assert run is not None and run.status == "abandoned" and "shutdown requested" in (run.error or "")
    assert store.candidates.current_version() == first.version  # the previous version keeps serving
    assert [v["version"] for v in store.candidates.versions()] == [first.version]
    bundles = sorted(p.name for p in (settings.artifacts_dir / "bundles").iterdir())
    assert bundles == [first.version]


def test_refresh_without_data_path_fails_clearly(tmp_path: Path, store: Store) -> None:
    run = JobRunner(refresh_settings(tmp_path, None), store, DEFAULT_JOBS).run("refresh")
    assert run is not None and run.status == "failed" and "RECSYS_DATA_PATH" in (run.error or "")
    assert store.candidates.current_version() is None


def test_train_ranker_job_passes_checkpoint_and_records_version(tmp_path: Path, store: Store,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys.ranking import train

    seen: dict[str, object] = {}

    def train_ranker_job(settings: Settings, *,
                         before_publish: Callable[[], None] | None = None,
                         serving: object = None) -> train.TrainResult:
        seen["before_publish"] = before_publish
        assert before_publish is not None
        before_publish()
        return train.TrainResult(model_version="m42", path=tmp_path, valid_ndcg=0.5, promoted=True, reason="test",
                                 feature_names=[])

    monkeypatch.setattr(train, "train_ranker_job", train_ranker_job)
    run = JobRunner(Settings(artifacts_dir=tmp_path), store, DEFAULT_JOBS).run("train-ranker")
    assert run is not None and run.status == "ok" and run.version == "m42"
    assert callable(seen["before_publish"])


def test_train_ranker_missing_dependency_is_a_failure_not_a_skip(tmp_path: Path, store: Store,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    class Finder:
        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name == "recsys.ranking.train":
                raise ModuleNotFoundError("No module named 'lightgbm'", name="lightgbm")
            return None

    monkeypatch.delitem(sys.modules, "recsys.ranking.train", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    run = JobRunner(Settings(artifacts_dir=tmp_path), store, DEFAULT_JOBS).run("train-ranker")
    assert run is not None and run.status == "failed" and "lightgbm" in (run.error or "")


def test_a_job_already_running_is_skipped_and_recorded(tmp_path: Path, store: Store) -> None:
    token = store.locks.acquire("drift", 30)
    assert token is not None
    run = JobRunner(Settings(artifacts_dir=tmp_path), store, DEFAULT_JOBS).run("drift")
    assert run is not None and run.status.startswith("skipped: already running")
    assert store.locks.release("drift", token)  # the holder's lock was not touched


def test_a_tick_runs_once(tmp_path: Path, store: Store) -> None:
    calls = []
    runner = JobRunner(Settings(artifacts_dir=tmp_path), store, {"j": lambda ctx: calls.append(1)})
    assert runner.run("j", tick="2024-01-01T00:00:00Z") is not None
    assert runner.run("j", tick="2024-01-01T00:00:00Z") is None
    assert runner.run("j", tick="2024-01-01T00:00:02Z") is not None
    assert len(calls) == 2 and len(store.jobs.runs()) == 2


def test_history_lists_newest_first_and_is_capped(tmp_path: Path, store: Store) -> None:
    store.jobs.max_runs = 3  # store_from_settings sets it from RECSYS_SCHEDULER__HISTORY_MAX_RUNS
    runner = JobRunner(Settings(artifacts_dir=tmp_path), store, {"a": lambda ctx: JobOutcome(version="va"),
                                         "b": lambda ctx: JobOutcome(status="skipped: nothing to do")})
    for name in ("a", "b", "a", "b", "a"):
        runner.run(name)
    runs = store.jobs.runs(limit=None)
    assert [r["job"] for r in runs] == ["a", "b", "a"]
    assert [r["status"] for r in runs] == ["ok", "skipped: nothing to do", "ok"]
    assert store.jobs.runs(job="b")[0]["version"] is None
    assert all(r["duration_s"] is not None and r["duration_s"] >= 0 for r in runs)


def test_cron_settings() -> None:
    assert job_crons(SchedulerConfig()) == {"refresh": "0 */6 * * *", "train-ranker": "30 2 * * *",
                                            "drift": "15 * * * *", "ingest": "* * * * *", "update": "*/5 * * * *"}
    assert "drift" not in job_crons(SchedulerConfig(drift_cron=""))
    with pytest.raises(ConfigError):
        parse_cron("every hour", "UTC")
    with pytest.raises(ConfigError):
        parse_cron("61 * * * *", "UTC")
