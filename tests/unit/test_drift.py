"""Drift check and its retrain trigger, on generated features whose drift is known by construction.

The reference is N(0, 1) per feature; "shifted" traffic moves 4 of 5 features by one standard
deviation (share 0.8 > 0.5: retrain), "same" traffic is a fresh N(0, 1) sample (no retrain).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from jobs import definitions
from jobs.context import JobContext, JobOutcome
from jobs.definitions import DEFAULT_JOBS
from jobs.runner import JobRunner
from recsys.artifacts import open_registry
from recsys.config import DriftConfig, Settings
from recsys.monitoring.feature_log import log_feature_rows, read_feature_log
from recsys.store import Store, open_store

FEATURES = ["als_score", "item_pop", "covisit", "session_sim", "category_match"]
SHIFTED = FEATURES[:4]
MODEL = "m20240101T000000"


@pytest.fixture
def store() -> Store:
    st = open_store("embedded://:memory:", namespace="drifttest")
    yield st
    st.close()


def write_model(artifacts: Path, version: str = MODEL, n: int = 2000, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    reference = io.BytesIO()
    pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES).to_parquet(reference)
    registry = open_registry(artifacts)
    registry.save_model(version, {"reference.parquet": reference.getvalue()},
                        {"created_at": 0.0, "features": FEATURES})
    registry.promote(version, "test")


def log_traffic(store: Store, n: int, *, shift: float, seed: int, model: str = MODEL) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    x[:, : len(SHIFTED)] += shift
    for start in range(0, n, 10):  # many users, 10 rows each (serving logs ~3 rows a request)
        log_feature_rows(store, model, f"u{start}", FEATURES, x[start:start + 10], 1.0, rng)


class FakeTrainer:
    """Stands in for train-ranker so the trigger is observable without LightGBM."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, ctx: JobContext) -> JobOutcome:
        self.calls.append((ctx.run.trigger, ctx.run.reason))
        return JobOutcome(version="m-retrained")


def make_runner(tmp_path: Path, store: Store, trainer: FakeTrainer, **drift: object) -> JobRunner:
    drift.setdefault("reference", "training")  # these tests give the model a known training reference
    settings = Settings(artifacts_dir=tmp_path, drift=DriftConfig(**drift))
    return JobRunner(settings, store, {"drift": definitions.drift, "train-ranker": trainer})


def test_feature_log_samples_at_rate_and_round_trips(store: Store) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4000, 3))
    written = log_feature_rows(store, "m1", "u1", ["a", "b", "c"], x, 0.25, np.random.default_rng(1),
                               ts=100.0)
    # Binomial(4000, 0.25): mean 1000, sd ~27.
    assert 900 <= written <= 1100
    y = np.array([[1.0, np.nan, 3.0]])
    log_feature_rows(store, "m2", "u2", ["a", "b", "c"], y, 1.0, rng, ts=200.0)
    frame = read_feature_log(store)
    assert len(frame) == written + 1
    assert list(frame.columns) == ["ts", "model_version", "user_id", "a", "b", "c"]
    m2 = read_feature_log(store, model_version="m2")
    assert len(m2) == 1 and m2["a"].iloc[0] == 1.0 and np.isnan(m2["b"].iloc[0])
    assert m2["user_id"].iloc[0] == "u2"
    assert len(read_feature_log(store, since_ts=150.0)) == 1
    # Every logged row is one of the input rows (sampling keeps rows whole).
    m1 = read_feature_log(store, model_version="m1")[["a", "b", "c"]].to_numpy()
    assert np.isin(m1[:, 0], x[:, 0]).all()


def test_shifted_features_drift_and_trigger_retrain(tmp_path: Path, store: Store) -> None:
    write_model(tmp_path)
    log_traffic(store, 600, shift=1.0, seed=11)
    trainer = FakeTrainer()
    runner = make_runner(tmp_path, store, trainer)
    json_path, html_path = tmp_path / "out" / "drift.json", tmp_path / "out" / "drift.html"
    run = runner.run("drift", options={"json_path": json_path, "html_path": html_path})

    assert run is not None and run.status == "ok"
    assert run.details["drift_status"] == "drift"
    summary = json.loads(json_path.read_text())
    assert summary["status"] == "drift" and summary["retrain"] is True
    assert summary["drifted_share"] == pytest.approx(0.8)
    by_name = {f["feature"]: f for f in summary["features"]}
    assert {n for n, f in by_name.items() if f["drifted"]} == set(SHIFTED)
    for f in by_name.values():
        assert f["test"] and f["score"] is not None and 0.0 <= f["p_value"] <= 1.0
    assert all(by_name[n]["p_value"] < 1e-6 for n in SHIFTED)
    assert html_path.stat().st_size > 10_000

    # The retrain ran once, triggered by drift, and the history says why.
    assert len(trainer.calls) == 1 and trainer.calls[0][0] == "drift"
    assert "drifted share 0.80 > threshold 0.50" in trainer.calls[0][1]
    runs = store.jobs.runs()
    train = [r for r in runs if r["job"] == "train-ranker"]
    assert len(train) == 1
    assert train[0]["trigger"] == "drift" and train[0]["version"] == "m-retrained"
    assert "drifted share 0.80" in train[0]["reason"]
    drift_run = next(r for r in runs if r["job"] == "drift")
    assert drift_run["details"]["triggered"] == "train-ranker"
    assert drift_run["details"]["retrain_run_id"] == train[0]["run_id"]


def test_reference_distribution_does_not_trigger(tmp_path: Path, store: Store) -> None:
    write_model(tmp_path)
    log_traffic(store, 600, shift=0.0, seed=12)
    trainer = FakeTrainer()
    run = make_runner(tmp_path, store, trainer).run("drift", options={"json_path": tmp_path / "d.json"})
    assert run is not None and run.status == "ok"
    assert run.details["drift_status"] == "no_drift"
    assert run.details["drifted_share"] <= 0.2
    assert trainer.calls == []
    assert [r["job"] for r in store.jobs.runs()] == ["drift"]


def test_threshold_is_a_strict_share(tmp_path: Path, store: Store) -> None:
    """0.8 drifted is not *more* than a 0.8 threshold: no retrain."""
    write_model(tmp_path)
    log_traffic(store, 600, shift=1.0, seed=13)
    trainer = FakeTrainer()
    runner = make_runner(tmp_path, store, trainer, threshold=0.8)
    run = runner.run("drift", options={"json_path": tmp_path / "d.json"})
    assert run is not None and run.details["drift_status"] == "no_drift"
    assert run.details["drifted_share"] == pytest.approx(0.8)
    assert trainer.calls == []


def test_a_feature_missing_from_serving_counts_as_drifted(tmp_path: Path, store: Store) -> None:
    """Served rows without a feature the model needs are training/serving skew, reported as drift."""
    write_model(tmp_path)
    rng = np.random.default_rng(17)
    for u in range(40):
        log_feature_rows(store, MODEL, f"u{u}", FEATURES[:4], rng.normal(size=(10, 4)), 1.0, rng)
    runner = make_runner(tmp_path, store, FakeTrainer(), threshold=0.5)
    run = runner.run("drift", options={"json_path": tmp_path / "d.json"})
    assert run is not None and run.details["drifted_features"] == ["category_match"]
    feature = json.loads((tmp_path / "d.json").read_text())["features"][-1]
    assert feature["test"] == "missing from the served feature log" and feature["drifted"] is True
    assert run.details["drift_status"] == "no_drift"  # 1/5 is below the share threshold


def test_too_few_recent_rows_gives_no_verdict(tmp_path: Path, store: Store) -> None:
    write_model(tmp_path)
    log_traffic(store, 150, shift=3.0, seed=14)  # wildly shifted, but below min_rows=200
    log_traffic(store, 500, shift=3.0, seed=15, model="m-older")  # another model's rows do not count
    trainer = FakeTrainer()
    html = tmp_path / "d.html"
    run = make_runner(tmp_path, store, trainer).run("drift", options={"json_path": tmp_path / "d.json",
                                                                      "html_path": html})
    assert run is not None and run.status == "ok"
    assert run.details["drift_status"] == "insufficient_data"
    assert "insufficient data: 150 rows of model" in run.details["message"]
    assert trainer.calls == [] and not html.exists()
    assert json.loads((tmp_path / "d.json").read_text())["drifted_share"] is None


def test_one_user_flooding_the_log_cannot_trigger_a_retrain(tmp_path: Path, store: Store) -> None:
    """A client writing as one user (the write endpoints are open without RECSYS_CLIENT_TOKEN) floods the
    log with shifted rows: they count as one user's 20 rows, no verdict, no retrain. Normal traffic from
    many users next to the flood is judged on its own."""
    write_model(tmp_path)
    rng = np.random.default_rng(21)
    flood = rng.normal(size=(5000, len(FEATURES))) + 3.0
    for start in range(0, 5000, 100):
        log_feature_rows(store, MODEL, "attacker", FEATURES, flood[start:start + 100], 1.0, rng)
    trainer = FakeTrainer()
    run = make_runner(tmp_path, store, trainer).run("drift", options={"json_path": tmp_path / "d.json"})
    assert run is not None and run.details["drift_status"] == "insufficient_data"
    assert "from 1 distinct users" in run.details["message"] and trainer.calls == []
    log_traffic(store, 600, shift=0.0, seed=22)  # 60 ordinary users
    run = make_runner(tmp_path, store, trainer).run("drift", options={"json_path": tmp_path / "d.json"})
    assert run is not None and run.details["drift_status"] == "no_drift", run.details["message"]
    assert trainer.calls == []
    assert [r for r in store.jobs.runs() if r["job"] == "train-ranker"] == []


def test_old_rows_fall_outside_the_window(tmp_path: Path, store: Store) -> None:
    write_model(tmp_path)
    rng = np.random.default_rng(3)
    log_feature_rows(store, MODEL, "u", FEATURES, rng.normal(size=(400, 5)) + 2.0, 1.0, rng, ts=1.0)
    run = make_runner(tmp_path, store, FakeTrainer()).run("drift", options={"json_path": tmp_path / "d.json"})
    assert run is not None and run.details["drift_status"] == "insufficient_data"


def test_drift_retrains_through_the_real_job_table(tmp_path: Path, store: Store) -> None:
    write_model(tmp_path)
    log_traffic(store, 400, shift=1.0, seed=16)
    runner = JobRunner(Settings(artifacts_dir=tmp_path, drift=DriftConfig(reference="training")), store,
                       DEFAULT_JOBS)  # no RECSYS_DATA_PATH: the real train-ranker job fails and says why
    run = runner.run("drift", options={"json_path": tmp_path / "d.json"})
    assert run is not None and run.details["retrain_status"] == "failed"
    train = [r for r in store.jobs.runs() if r["job"] == "train-ranker"]
    assert [r["status"] for r in train] == ["failed"] and "RECSYS_DATA_PATH" in train[0]["error"]


def test_cli_without_model_says_so_and_exits_zero(tmp_path: Path) -> None:
    from cli.main import app

    out = tmp_path / "summary.json"
    result = CliRunner().invoke(app, ["drift", "--store", f"embedded://{tmp_path / 's.sqlite'}",
                                      "--artifacts", str(tmp_path), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "status=no_model" in result.output
    assert "no ranker model yet" in result.output
    assert json.loads(out.read_text())["status"] == "no_model"
