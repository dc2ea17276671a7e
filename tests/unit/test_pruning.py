"""Feature pruning policy on generated ranking data whose useful and useless columns are known."""

from __future__ import annotations

import zlib
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from recsys.artifacts import open_registry
from recsys.config import PruningConfig, Settings
from recsys.errors import ArtifactError
from recsys.ranking.compact import check_same_predictions, drop_unused_columns
from recsys.ranking.dataset import RankerData
from recsys.ranking.importance import IMPORTANCE_LOG, FeatureHistory
from recsys.ranking.pruning import (
    ACCEPTED,
    CANDIDATE,
    DRY_RUN,
    NOTHING_TO_PRUNE,
    PRUNED,
    REJECTED,
    holdout_contributions,
    judge,
    plan_features,
    record_run,
    train_with_pruning,
)
from recsys.ranking.train import _split_users, fit_lambdamart, importances

USEFUL = ["signal_a", "signal_b", "signal_c"]
USELESS = ["noise", "constant", "item_hash"]


def ranking_data(seed: int = 0, users: int = 500, per_user: int = 30) -> RankerData:
    """Each user's 3 positives are the top of 2a + b + 0.5c (+ a little noise); the rest is useless."""
    rng = np.random.default_rng(seed)
    rows = users * per_user
    a, b, c = rng.random(rows), rng.random(rows), rng.random(rows)
    item = rng.integers(0, 5000, size=rows)
    score = 2 * a + b + 0.5 * c + 0.1 * rng.standard_normal(rows)
    labels = np.zeros(rows, dtype=np.float32)
    for g in range(users):
        block = slice(g * per_user, (g + 1) * per_user)
        top = np.argsort(-score[block])[:3]
        labels[g * per_user + top] = 1.0
    item_hash = np.array([zlib.crc32(f"i{i}".encode()) / 2**32 for i in item])
    features = np.column_stack([a, b, c, rng.random(rows), np.full(rows, 3.0), item_hash]).astype(np.float32)
    return RankerData(features, labels, np.full(users, per_user), [f"u{g}" for g in range(users)],
                      USEFUL + USELESS, 1.0)


# Pinned tree settings: these tests are about the pruning policy on known data, not about the
# production LightGBM tuning (which regularises harder for a few hundred validation users).
PINNED: dict[str, object] = {"num_threads": 1, "min_data_in_leaf": 50, "learning_rate": 0.05, "num_leaves": 31,
                             "feature_fraction": 0.9, "bagging_fraction": 0.9, "bagging_freq": 1, "lambda_l2": 1.0,
                             "lambdarank_truncation_level": 20}


def fit_one_thread(data: RankerData, seed: int, *, params: dict[str, object] | None = None
                   ) -> tuple[lgb.Booster, float]:
    """The production fit with one thread (same result; no OpenMP spinning on a busy machine)."""
    return fit_lambdamart(data, seed, params={**PINNED, **(params or {})})


def validation(seed: int):  # type: ignore[no-untyped-def]
    return lambda d: ~_split_users(d.user_ids, seed)


def settings(tmp_path: Path, **policy: object) -> Settings:
    """The policy with the held-out check on (t < 2) unless told otherwise: it is what catches noise."""
    s = Settings(artifacts_dir=tmp_path / "artifacts")
    s.pruning = PruningConfig(**{"holdout_t": 2.0, **policy})  # type: ignore[arg-type]
    return s


def run(s: Settings, data: RankerData, fit=fit_one_thread):  # type: ignore[no-untyped-def]
    plan = plan_features(s, data.feature_names)
    return train_with_pruning(s, data, plan, fit=fit, measure=importances, validation_users=validation(s.seed),
                              registered=data.feature_names)


def test_useless_columns_are_pruned_and_the_smaller_model_is_within_tolerance(tmp_path: Path) -> None:
    s = settings(tmp_path)
    out = run(s, ranking_data())
    assert out.outcome == ACCEPTED
    assert sorted(out.pruned) == sorted(USELESS)
    assert out.features == USEFUL
    assert out.full_valid_ndcg - out.valid_ndcg <= s.pruning.tolerance
    # Why each one was low: the constant is never split on; noise and the item hash earn gain on the
    # training rows but nothing on the validation users.
    assert out.verdicts["constant"].reasons == ["never split on"]
    for name in ("noise", "item_hash"):
        assert out.verdicts[name].holdout is not None and out.verdicts[name].holdout.t < 2
    for name in USEFUL:
        assert not out.verdicts[name].low and out.verdicts[name].holdout.t > 5
    # The kept booster has exactly the kept columns and scores them like the masked model did.
    assert out.booster.feature_name() == USEFUL
    assert out.status == {**dict.fromkeys(USEFUL, "active"), **dict.fromkeys(USELESS, PRUNED)}


def test_holdout_contribution_separates_signal_from_noise() -> None:
    data = ranking_data(seed=3)
    booster, _ = fit_one_thread(data, 42)
    stats = holdout_contributions(booster, data.take_users(~_split_users(data.user_ids, 42)))
    assert stats["signal_a"].t > stats["signal_b"].t > 3
    assert stats["constant"].t == 0.0 and stats["constant"].gap == 0.0
    assert abs(stats["noise"].t) < 3
    assert 60 <= stats["signal_a"].users <= 140  # the validation users (20% of 500), each with a positive


def test_records_go_to_both_logs_keyed_by_run_and_model(tmp_path: Path) -> None:
    s = settings(tmp_path)
    out = run(s, ranking_data())
    record_run(open_registry(s.artifacts_dir), out, "model-1")
    history = FeatureHistory.load(open_registry(s.artifacts_dir))
    assert history.runs == 1 and history.last_decision["model_version"] == "model-1"
    assert history.last_decision["outcome"] == ACCEPTED and sorted(history.last_decision["pruned"]) == sorted(USELESS)
    full = [r for r in history.importances if r["fit"] == "full"]
    assert {r["feature"] for r in full} == set(USEFUL + USELESS)
    assert all(r["run_id"] == out.run_id and r["model_version"] == "model-1" for r in history.importances)
    assert abs(sum(r["gain_share"] for r in full) - 1.0) < 1e-9
    kept = [r for r in history.importances if r["kept"]]
    assert {r["feature"] for r in kept} == set(USEFUL) and kept[0]["fit"] == "pruned-1"


def test_pruned_features_stay_out_until_retest(tmp_path: Path) -> None:
    s = settings(tmp_path, retest_every=3)
    data = ranking_data()
    record_run(open_registry(s.artifacts_dir), run(s, data), "m1")  # run 1 prunes the useless columns
    plan2 = plan_features(s, data.feature_names)
    assert plan2.run_number == 2 and plan2.features == USEFUL and sorted(plan2.pruned) == sorted(USELESS)
    from recsys.ranking.pruning import select_features

    out2 = train_with_pruning(s, select_features(data, plan2.features), plan2, fit=fit_one_thread,
                              measure=importances, validation_users=validation(s.seed),
                              registered=data.feature_names)
    assert out2.outcome == NOTHING_TO_PRUNE
    assert out2.status == {**dict.fromkeys(USEFUL, "active"), **dict.fromkeys(USELESS, PRUNED)}
    record_run(open_registry(s.artifacts_dir), out2, "m2")
    record_run(open_registry(s.artifacts_dir), out2, "m3")  # pretend a third run changed nothing
    plan4 = plan_features(s, data.feature_names + ["brand_new"])
    assert plan4.run_number == 4
    assert sorted(plan4.retested) == sorted(USELESS)  # pruned in run 1, 3 runs ago: measured again
    assert plan4.features == data.feature_names + ["brand_new"] and plan4.pruned == []
    # Disabled pruning trains on everything; explicit feature names are taken as given.
    assert plan_features(settings(tmp_path, enabled=False), data.feature_names).features == data.feature_names
    assert plan_features(s, data.feature_names, explicit=["signal_a"]).features == ["signal_a"]


def test_window_needs_the_feature_low_in_each_of_the_last_n_runs() -> None:
    cfg = PruningConfig(window_runs=3)
    full = {"f": {"gain": 1.0, "split": 3, "gain_share": 0.001}, "g": {"gain": 99.0, "split": 40, "gain_share": 0.999}}
    rows = [{"fit": "full", "feature": "f", "low": low} for low in (True, False, True)]
    v = judge(full, {}, cfg, FeatureHistory(importances=rows))
    assert v["f"].low and v["f"].low_runs == 2 and not v["f"].flagged  # a break two runs ago resets the count
    rows.append({"fit": "full", "feature": "f", "low": True})
    v = judge(full, {}, cfg, FeatureHistory(importances=rows))
    assert v["f"].low_runs == 3 and v["f"].flagged
    assert not v["g"].low and not v["g"].flagged


class ScriptedFit:
    """Real (tiny) LightGBM fits whose validation nDCG@10 is scripted by which columns are masked."""

    def __init__(self, ndcg_by_masked: dict[frozenset[str], float], default: float) -> None:
        self.ndcg_by_masked = ndcg_by_masked
        self.default = default
        self.calls: list[frozenset[str]] = []

    def __call__(self, data: RankerData, seed: int, *, params: dict[str, object] | None = None
                 ) -> tuple[lgb.Booster, float]:
        contri = (params or {}).get("feature_contri")
        masked = frozenset(n for n, c in zip(data.feature_names, contri, strict=True) if c == 0) if contri \
            else frozenset()
        self.calls.append(masked)
        booster, _ = fit_lambdamart(data, seed, 20, params={**PINNED, **(params or {})})
        return booster, self.ndcg_by_masked.get(masked, self.default)


def test_back_off_to_firmer_evidence_when_the_widest_attempt_loses_too_much(tmp_path: Path) -> None:
    data = ranking_data()
    # Full model 0.30; removing the never-split constant alone costs nothing, anything more costs 0.01.
    fit = ScriptedFit({frozenset(): 0.30, frozenset({"constant"}): 0.30}, default=0.29)
    out = run(settings(tmp_path), data, fit=fit)
    assert {"constant", "noise", "item_hash"} <= set(out.flagged)
    assert out.outcome == ACCEPTED and out.pruned == ["constant"]
    assert [a.accepted for a in out.attempts] == [False] * (len(out.attempts) - 1) + [True]
    assert out.attempts[0].removed == out.flagged and out.attempts[-1].label == "never split"
    assert 2 <= len(out.attempts) <= 4 and fit.calls[0] == frozenset()  # the full fit masks nothing
    assert out.booster.feature_name() == [n for n in data.feature_names if n != "constant"]
    for name in set(out.flagged) - {"constant"}:
        assert out.status[name] == CANDIDATE  # flagged, but removing it cost too much this run
    assert out.status["constant"] == PRUNED
    assert "drop +0.0100 > 0.002" in out.reason and "drop +0.0000 <= 0.002" in out.reason

    rejected = run(settings(tmp_path / "b"), data, fit=ScriptedFit({frozenset(): 0.40}, default=0.30))
    assert rejected.outcome == REJECTED and rejected.pruned == [] and rejected.features == data.feature_names
    assert rejected.booster.feature_name() == data.feature_names
    assert not any(a.accepted for a in rejected.attempts)
    assert "every attempt lost more than the tolerance" in rejected.reason


def test_default_policy_uses_gain_and_splits_only(tmp_path: Path) -> None:
    s = Settings(artifacts_dir=tmp_path / "artifacts")
    assert s.pruning.holdout_t == 0.0
    out = run(s, ranking_data())
    assert "constant" in out.pruned and out.verdicts["constant"].reasons == ["never split on"]
    assert all(v.holdout is None for v in out.verdicts.values())  # not even computed (TreeSHAP costs)
    for name in USEFUL:
        assert name not in out.pruned


def test_dry_run_measures_and_never_prunes(tmp_path: Path) -> None:
    out = run(settings(tmp_path, enabled=False), ranking_data())
    assert out.outcome == DRY_RUN and out.attempts == [] and out.features == USEFUL + USELESS
    assert {n for n, st in out.status.items() if st == CANDIDATE} == set(USELESS)


def test_min_features_keeps_the_strongest_flagged(tmp_path: Path) -> None:
    out = run(settings(tmp_path, min_features=5), ranking_data())
    assert len(out.features) == 5 and len(out.kept_back) == 2
    assert "constant" not in out.kept_back  # it earned no gain at all: the last to be kept back


def test_compact_model_predicts_exactly_like_the_masked_model() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((3000, 5))
    y = (x[:, 0] + x[:, 3] > 1.0).astype(float)
    names = ["a", "b", "c", "d", "e"]
    masked = lgb.train({"objective": "binary", "verbosity": -1, "num_leaves": 8, "feature_fraction": 0.8, "seed": 1,
                        "feature_contri": [1, 0, 0, 1, 1], "num_threads": 1},
                       lgb.Dataset(x, y, feature_name=names), 25)
    compact = drop_unused_columns(masked, ["a", "d", "e"])
    assert compact.feature_name() == ["a", "d", "e"] and compact.num_feature() == 3
    check_same_predictions(masked, compact, x, names, ["a", "d", "e"])
    np.testing.assert_array_equal(compact.predict(x[:, [0, 3, 4]]), masked.predict(x))
    with pytest.raises(ArtifactError, match="splits on columns"):
        drop_unused_columns(masked, ["a", "e"])


def test_log_reader_skips_a_line_cut_short_by_a_crash(tmp_path: Path) -> None:
    registry = open_registry(tmp_path)
    registry.append_records(IMPORTANCE_LOG, [{"run_id": "r1", "feature": "f", "fit": "full"}])
    with (tmp_path / "models" / f"{IMPORTANCE_LOG}.jsonl").open("a") as fh:
        fh.write('{"run_id": "r2", "feat')
    registry.append_records(IMPORTANCE_LOG, [{"run_id": "r3", "feature": "f", "fit": "full"}])
    assert [r["run_id"] for r in registry.read_records(IMPORTANCE_LOG)] == ["r1", "r3"]
