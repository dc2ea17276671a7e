"""Bring your own data: one column mapping in the settings for every command, the demo and the scheduler.

Before: `refresh` and `evaluate` took --user-col/--item-col/--time-col, `train-ranker` did not (yet its
error told the user to pass them), `demo --data` and the scheduler (RECSYS_DATA_PATH) could not map
columns at all, fractional-second timestamps were rejected, and `evaluate` on a small data set failed
with "no user has >= 20 interactions" and no way out. And `demo` on a busy port ran the whole pipeline,
replaced the published version, and only then failed on the port.
"""

from __future__ import annotations

import socket
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from cli.main import app
from jobs.definitions import DEFAULT_JOBS
from jobs.runner import JobRunner
from recsys.artifacts import open_registry
from recsys.config import get_settings
from recsys.store import open_store, store_from_settings
from tests.helpers import clustered_interactions

MAPPING = {"RECSYS_DATA__USER_COL": "customer", "RECSYS_DATA__ITEM_COL": "sku", "RECSYS_DATA__TIME_COL": "when",
           "RECSYS_DATA__EVENT_COL": "action", "RECSYS_DATA__WEIGHT_COL": "strength"}


def _their_file(tmp_path: Path, *, per_user: int = 24) -> Path:
    """The clustered test data under the user's own column names, with fractional-second timestamps."""
    inter, _ = clustered_interactions(n_users=150, n_items=100, per_user=per_user, seed=5)
    theirs = inter.select(pl.col("user_id").alias("customer"), pl.col("item_id").alias("sku"),
                          (pl.col("timestamp").cast(pl.Float64) + 0.25).alias("when"),
                          pl.col("event").alias("action"), pl.col("weight").alias("strength"))
    path = tmp_path / "theirs.csv"
    theirs.write_csv(path)
    return path


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"RECSYS_STORE_URL": f"embedded://{tmp_path / 'store.sqlite'}",
            "RECSYS_ARTIFACTS_DIR": str(tmp_path / "artifacts"), "RECSYS_ALS__FACTORS": "8", "COLUMNS": "200",
            **extra}


def test_the_settings_mapping_serves_refresh_train_ranker_demo_and_the_scheduler(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch
                                                                                 ) -> None:
    data = _their_file(tmp_path)
    env = _env(tmp_path, **MAPPING)
    runner = CliRunner()
    refresh = runner.invoke(app, ["refresh", "--data", str(data)], env=env)
    assert refresh.exit_code == 0, refresh.output
    assert "users=150 items=100" in refresh.output
    train = runner.invoke(app, ["train-ranker", "--data", str(data)], env=env)
    assert train.exit_code == 0, train.output
    assert open_registry(tmp_path / "artifacts").current_model() is not None
    demo = runner.invoke(app, ["demo", "--data", str(data), "--no-serve"], env=env)
    assert demo.exit_code == 0, demo.output
    assert "top-10 for user" in demo.output
    # The scheduler's jobs read RECSYS_DATA_PATH with the same mapping.
    for key, value in {**env, "RECSYS_DATA_PATH": str(data)}.items():
        monkeypatch.setenv(key, value)
    settings = get_settings()
    jobs = JobRunner(settings, store_from_settings(settings), DEFAULT_JOBS)
    for job in ("refresh", "train-ranker"):
        run = jobs.run(job)
        assert run is not None and run.status == "ok", (job, run)


def test_cli_flags_override_the_settings_mapping(tmp_path: Path) -> None:
    data = _their_file(tmp_path)
    wrong = _env(tmp_path, RECSYS_DATA__USER_COL="nobody")
    runner = CliRunner()
    bad = runner.invoke(app, ["train-ranker", "--data", str(data)], env=wrong)
    assert bad.exit_code == 2
    assert "'nobody' (mapped to user_id) is not in the file" in " ".join(bad.output.split())
    flags = ["--user-col", "customer", "--item-col", "sku", "--time-col", "when", "--event-col", "action",
             "--weight-col", "strength"]
    for command in ("refresh", "train-ranker"):
        result = runner.invoke(app, [command, "--data", str(data), *flags], env=wrong)
        assert result.exit_code == 0, (command, result.output)


def test_evaluate_explains_the_rule_and_the_way_out_for_a_small_data_set(tmp_path: Path) -> None:
    data = _their_file(tmp_path, per_user=14)  # 14 interactions per user: below the protocol's 20
    env = _env(tmp_path, **MAPPING)
    runner = CliRunner()
    assert "--min-events" in runner.invoke(app, ["evaluate", "--help"], env={"COLUMNS": "200"}).output
    small = runner.invoke(app, ["evaluate", "--data", str(data), "--bootstrap", "100"], env=env)
    flat = " ".join(small.output.split())
    assert small.exit_code == 2
    assert "no user has >= 20 interactions" in flat and "last 10 interactions" in flat
    assert "--min-events" in flat and "--protocol global-time" in flat
    ok = runner.invoke(app, ["evaluate", "--data", str(data), "--bootstrap", "100", "--min-events", "14"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "session-holdout" in ok.output


def test_demo_on_a_busy_port_fails_before_doing_anything(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["demo", "--port", str(port), "--users", "300", "--items", "100"],
                                    env=_env(tmp_path))
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert f"cannot serve on 127.0.0.1:{port}" in flat and "--port" in flat and "Nothing was done" in flat
    assert not (tmp_path / "generated").exists() and not (tmp_path / "artifacts").exists()
    assert open_store(f"embedded://{tmp_path / 'store.sqlite'}").candidates.current_version() is None
