"""The protocol runner end to end on a small generated log: determinism, groups, errors, the hook."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.data.splits import HoldoutSplit
from recsys.errors import DataValidationError
from recsys.evaluation.baselines import PopularityRecommender
from recsys.evaluation.metrics import METRIC_KEYS
from recsys.evaluation.protocol import EvaluationConfig, run_evaluation
from recsys.store import SessionEvent
from tests.evaluation_data import clustered_log


def _settings() -> Settings:
    s = Settings()
    s.als.factors = 16
    s.als.iterations = 10
    return s


@pytest.fixture(scope="module")
def log_frame() -> pl.DataFrame:
    return clustered_log()


def _dataset(frame: pl.DataFrame) -> Dataset:
    return Dataset(frame, None, "synthetic", "table")


def _without_timings(result_json: dict) -> str:
    return json.dumps({k: v for k, v in result_json.items() if k != "timings"}, sort_keys=True)


@pytest.mark.parametrize("protocol", ["session-holdout", "global-time"])
def test_two_runs_give_identical_json(log_frame: pl.DataFrame, protocol: str) -> None:
    config = EvaluationConfig(protocol=protocol, quantile=0.8, n_bootstrap=200)
    first = run_evaluation(_dataset(log_frame), _settings(), config).to_json_dict()
    second = run_evaluation(_dataset(log_frame), _settings(), config).to_json_dict()
    assert first["timings"] and second["timings"]
    assert _without_timings(first) == _without_timings(second)
    # A different seed moves the bootstrap intervals (the check above is not vacuous).
    reseeded = config.model_copy(update={"seed": 7})
    other = run_evaluation(_dataset(log_frame), _settings(), reseeded).to_json_dict()
    assert other["models"]["als"]["ndcg@10_ci95"] != first["models"]["als"]["ndcg@10_ci95"]


def test_session_holdout_result_shape_and_ordering(log_frame: pl.DataFrame) -> None:
    result = run_evaluation(_dataset(log_frame), _settings(), EvaluationConfig(n_bootstrap=200))
    out = result.to_json_dict()
    models = out["models"]
    assert set(models) >= {"popularity", "als", "als+session", "itemknn+session", "ease+session",
                           "candidates", "reranked"}
    for name in ("popularity", "als", "als+session", "itemknn+session", "ease+session"):
        assert set(METRIC_KEYS) <= set(models[name]), name
        lo, hi = models[name]["ndcg@10_ci95"]
        assert lo <= models[name]["ndcg@10"] <= hi
        assert len(models[name]["curves"]["ndcg"]) == 20
    assert models["reranked"] == {"available": False, "reason": "no pipeline factory given"}
    assert out["paired"]["available"] is False
    # Every user has >= 20 events: all 240 are evaluated, each with 10 held out.
    assert out["dataset"]["eval_users"] == 240
    assert out["dataset"]["train_interactions"] == log_frame.height - 240 * 10
    # Clustered tastes: personalised models beat popularity by far; the session helps ALS.
    assert models["als"]["ndcg@10"] > 3 * models["popularity"]["ndcg@10"]
    assert models["als+session"]["ndcg@10"] > models["als"]["ndcg@10"]
    assert models["candidates"]["recall@100"] > 0.5
    assert out["groups"] == {}


def test_global_time_reports_cold_users(log_frame: pl.DataFrame) -> None:
    result = run_evaluation(_dataset(log_frame), _settings(),
                            EvaluationConfig(protocol="global-time", quantile=0.8, n_bootstrap=200))
    out = result.to_json_dict()
    # The generator's newcomers (last 10% of users) have no event before the cutoff.
    newcomers = {f"u{u}" for u in range(216, 240)}
    assert out["dataset"]["cold_users"] == len(newcomers) == out["groups"]["cold"]["users"]
    assert out["groups"]["warm"]["users"] + out["groups"]["cold"]["users"] == out["dataset"]["eval_users"]
    cold = out["groups"]["cold"]["models"]
    # Without history or session ALS has nothing to go on: it falls back to the popularity list exactly.
    assert cold["als"] == cold["popularity"]
    # Folding the session in is what personalises a cold user.
    assert cold["als+session"]["ndcg@10"] > 2 * cold["popularity"]["ndcg@10"]
    # Cold users have no published candidates.
    assert out["models"]["candidates"]["users_without_candidates"] == len(newcomers)
    assert cold["candidates"]["recall@100"] == 0.0


def test_too_small_data_is_a_clear_error() -> None:
    tiny = clustered_log(n_users=30, per_user=12, seed=1)  # nobody reaches 20 interactions
    with pytest.raises(DataValidationError, match="too small for session-holdout"):
        run_evaluation(_dataset(tiny), _settings())
    few = clustered_log(n_users=40, per_user=25, seed=1).filter(
        pl.col("user_id").is_in(["u0", "u1", "u2"]) | (pl.col("timestamp") < 1_600_000_000 + 86_400 * 50))
    with pytest.raises(DataValidationError, match=r"3 evaluation user\(s\), need at least 10"):
        run_evaluation(_dataset(few), _settings())
    with pytest.raises(DataValidationError, match="too small for global-time"):
        run_evaluation(_dataset(tiny), _settings(), EvaluationConfig(protocol="global-time", quantile=0.99))


def test_ease_is_skipped_with_a_reason_above_the_item_limit(log_frame: pl.DataFrame) -> None:
    config = EvaluationConfig(ease_max_items=100, n_bootstrap=200)
    result = run_evaluation(_dataset(log_frame), _settings(), config)
    ease = result.to_json_dict()["models"]["ease+session"]
    assert ease["available"] is False and "160 items > 100" in ease["reason"]
    assert any("ease+session skipped" in n for n in result.notes)


class _PopularityPipeline:
    """Stands in for the service in this test only: answers like the popularity baseline."""

    def __init__(self, split: HoldoutSplit, leak: bool = False) -> None:
        from recsys.candidates.matrix import build_matrix

        self.model = PopularityRecommender().fit(build_matrix(split.train))
        self.leak = leak
        self.calls: list[tuple[str, int, int]] = []

    def recommend(self, user_id: str, session: list[SessionEvent], exclude: list[str], k: int) -> list[str]:
        self.calls.append((user_id, len(session), k))
        items = self.model.recommend([user_id], {user_id: exclude}, {}, k)[user_id]
        return ([exclude[0]] + items[:-1]) if self.leak else items


def test_pipeline_hook_is_evaluated_as_reranked(log_frame: pl.DataFrame) -> None:
    made: list[_PopularityPipeline] = []

    def factory(split: HoldoutSplit, dataset: Dataset, settings: Settings) -> _PopularityPipeline:
        assert split.train.height < dataset.interactions.height  # it only gets the training part
        made.append(_PopularityPipeline(split))
        return made[0]

    result = run_evaluation(_dataset(log_frame), _settings(), EvaluationConfig(n_bootstrap=200),
                            build_pipeline=factory)
    out = result.to_json_dict()
    rr, pop = out["models"]["reranked"], out["models"]["popularity"]
    assert rr["available"] is True
    assert {k: rr[k] for k in METRIC_KEYS} == {k: pop[k] for k in METRIC_KEYS}
    # Every evaluation user got one request with their 3-event session, asking for 100 items.
    assert len(made[0].calls) == 240 and {c[1:] for c in made[0].calls} == {(3, 100)}
    paired = out["paired"]
    assert paired["available"] is True and paired["best_baseline"] == result.best_baseline()
    best = out["models"][paired["best_baseline"]]["ndcg@10"]
    assert paired["difference"] == pytest.approx(pop["ndcg@10"] - best, abs=2e-6)  # both rounded to 1e-6
    assert paired["ci95"][1] < 0  # popularity is clearly worse than the best baseline here


def test_pipeline_returning_excluded_items_is_reported(log_frame: pl.DataFrame) -> None:
    result = run_evaluation(_dataset(log_frame), _settings(), EvaluationConfig(n_bootstrap=200),
                            build_pipeline=lambda split, ds, s: _PopularityPipeline(split, leak=True))
    assert result.models["reranked"].extra["excluded_returned"] == 240
    assert any("excluded item" in n for n in result.notes)


def test_cli_evaluate_writes_json_and_report(tmp_path: Path, log_frame: pl.DataFrame) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    data = tmp_path / "interactions.csv"
    log_frame.write_csv(data)
    out_json, out_dir = tmp_path / "res.json", tmp_path / "report"
    res = CliRunner().invoke(app, ["evaluate", "--data", str(data), "--json", str(out_json),
                                   "--out", str(out_dir), "--bootstrap", "200", "--factors", "16"])
    assert res.exit_code == 0, res.output
    body = json.loads(out_json.read_text())
    assert {"popularity", "als", "als+session", "reranked"} <= set(body["models"])
    assert "ndcg@10" in res.output and "reranked" in res.output
    # The CLI evaluates the real online path: a reranked row with metrics, no excluded item returned.
    assert body["models"]["reranked"]["ndcg@10"] > body["models"]["popularity"]["ndcg@10"]
    assert (out_dir / "report.html").read_text().count("<svg") >= 10
    bad = CliRunner().invoke(app, ["evaluate", "--data", str(data), "--protocol", "nope"])
    assert bad.exit_code == 2 and "unknown protocol" in bad.output


def test_cli_evaluate_too_small(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    data = tmp_path / "interactions.csv"
    clustered_log(n_users=20, per_user=10).write_csv(data)
    res = CliRunner().invoke(app, ["evaluate", "--data", str(data)])
    assert res.exit_code == 2
    assert "too small for session-holdout" in res.output


def test_per_user_arrays_align_with_users(log_frame: pl.DataFrame) -> None:
    result = run_evaluation(_dataset(log_frame), _settings(), EvaluationConfig(n_bootstrap=200))
    for name in ("popularity", "als"):
        m = result.models[name]
        assert m.per_user_ndcg is not None and m.per_user_ndcg.size == m.users
        assert float(np.mean(m.per_user_ndcg)) == pytest.approx(m.metrics["ndcg@10"])
