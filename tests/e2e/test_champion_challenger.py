"""Champion/challenger: a new ranker replaces the serving one only if it ranks at least as well on the same users.

Before: promotion compared the new run's validation nDCG@10 with the number stored in the serving
model's manifest, measured on another data set. A ranker trained on real data (ml-100k, 0.23) was not
promoted over a model trained on synthetic data (0.3 on synthetic data), and a ranker trained on a
random 100 x 40 toy file (0.46: 40 items make easy lists) was promoted over the real ml-100k ranker.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from cli.main import app
from recsys.artifacts import open_registry, registry_for
from recsys.config import Settings
from recsys.data.synthetic import write_synthetic
from recsys.ranking.champion import KEEP, PROMOTE, group_ndcg
from recsys.ranking.train import train_ranker
from recsys.store import open_store
from tests.conftest import REDIS_URL, TrainedRanker, redis_available


def _settings(artifacts: Path) -> Settings:
    return Settings(artifacts_dir=artifacts)


def _toy(path: Path, seed: int = 0) -> Path:
    """100 users x 40 items, 25 random items each: no structure to learn, short easy lists."""
    rng = np.random.default_rng(seed)
    rows = [(str(u), str(i), 1_600_000_000 + j) for u in range(100)
            for j, i in enumerate(rng.choice(40, size=25, replace=False))]
    pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp"], orient="row").write_csv(path)
    return path


def test_group_ndcg_known_answers() -> None:
    labels = np.array([0, 1, 0, 1, 0, 0], dtype=np.float32)
    groups = np.array([3, 3])
    perfect = group_ndcg(np.array([0.1, 0.9, 0.2, 0.8, 0.5, 0.4]), labels, groups)
    assert perfect.tolist() == [1.0, 1.0]
    worst = group_ndcg(np.array([0.9, 0.1, 0.8, 0.1, 0.5, 0.4]), labels, groups)
    assert worst.tolist() == pytest.approx([1 / np.log2(4), 1 / np.log2(4)])  # each positive ranked third
    assert group_ndcg(np.zeros(3), np.zeros(3), np.array([3])).tolist() == [0.0]


@pytest.mark.ml100k
@pytest.mark.slow
def test_real_data_ranker_replaces_a_synthetic_one_and_a_toy_one_does_not(ml100k: Path, tmp_path: Path) -> None:
    settings = _settings(tmp_path / "artifacts")
    registry = open_registry(settings.artifacts_dir)
    write_synthetic(tmp_path / "synthetic", 1000, 400, 42)
    synthetic = train_ranker(settings, tmp_path / "synthetic")
    assert synthetic.promoted and synthetic.reason == "first model"

    real = train_ranker(settings, ml100k)
    # The old rule: real.valid_ndcg (~0.23, ml-100k users) < synthetic.valid_ndcg (~0.3, synthetic users).
    assert real.valid_ndcg < synthetic.valid_ndcg
    c = real.comparison
    assert c is not None and c.decision == PROMOTE and real.promoted
    assert registry.current_model() == real.model_version
    assert c.champion == synthetic.model_version and c.groups >= 100
    assert c.challenger_ndcg is not None and c.champion_ndcg is not None and c.difference_ci95 is not None
    assert c.challenger_ndcg > c.champion_ndcg and c.difference == pytest.approx(c.challenger_ndcg - c.champion_ndcg)
    assert c.difference_ci95[0] > 0  # better on the same users, beyond noise
    # The decision and both scores are in the manifest and the promotion record.
    manifest = registry.model_manifest(real.model_version).extra("promotion")
    assert manifest["decision"] == PROMOTE and manifest["champion_ndcg"] == pytest.approx(c.champion_ndcg)
    record = registry.promotions()[-1]
    assert record["model_version"] == real.model_version and record["difference"] == pytest.approx(c.difference)

    toy = train_ranker(settings, _toy(tmp_path / "toy.csv"))
    assert toy.valid_ndcg > real.valid_ndcg  # the old rule would have promoted it
    assert toy.comparison is not None and toy.comparison.decision == KEEP and not toy.promoted
    assert "too few" in toy.reason
    assert registry.current_model() == real.model_version
    assert registry.model_manifest(toy.model_version).extra("promotion")["decision"] == KEEP


def _copy_champion(trained_ranker: TrainedRanker, artifacts: Path) -> str:
    trained_ranker.install(artifacts)
    return trained_ranker.model_version


def test_an_unscorable_champion_loses_by_default_with_the_reason(trained_ranker: TrainedRanker, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    champion = _copy_champion(trained_ranker, artifacts)
    model_file = artifacts / "models" / champion / "model.txt"
    model_file.write_text(model_file.read_text().replace("Tree=0", "Tree=0 ", 1))  # checksum no longer matches
    settings = _settings(artifacts)
    settings.als.factors = 8
    result = train_ranker(settings, trained_ranker.dataset)
    c = result.comparison
    assert c is not None and result.promoted and c.champion == champion
    assert "promoted by default" in c.reason and "checksum mismatch" in c.reason
    assert c.champion_ndcg is None and c.champion_error is not None
    assert open_registry(artifacts).promotions()[-1]["champion_error"] == c.champion_error


def test_a_champion_needing_features_this_run_pruned_is_scored_on_them(
        trained_ranker: TrainedRanker, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    champion = _copy_champion(trained_ranker, artifacts)
    champion_features = open_registry(artifacts).model_manifest(champion).features
    settings = _settings(artifacts)
    settings.als.factors = 8
    fewer = champion_features[: len(champion_features) // 2]  # this run computes and trains on half of them
    result = train_ranker(settings, trained_ranker.dataset, feature_names=fewer)
    c = result.comparison
    assert result.feature_names == fewer
    assert c is not None and c.champion == champion and c.champion_ndcg is not None and not c.champion_features_missing
    assert c.groups >= 50 and c.decision in (PROMOTE, KEEP)


def test_a_retrain_on_the_same_data_ties_and_is_promoted_and_force_is_recorded(
        trained_ranker: TrainedRanker, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    settings = _settings(artifacts)
    settings.als.factors = 8
    settings.pruning.enabled = False  # the same features in both runs: the same data and seed give the same model
    first = train_ranker(settings, trained_ranker.dataset)
    same = train_ranker(settings, trained_ranker.dataset)
    assert same.comparison is not None and same.comparison.champion == first.model_version
    assert same.comparison.difference == 0.0 and same.promoted
    settings.ranker.promotion_min_groups = 10_000  # too few groups to decide: kept, unless forced
    kept = train_ranker(settings, trained_ranker.dataset)
    assert not kept.promoted and "too few" in kept.reason
    forced = train_ranker(settings, trained_ranker.dataset, force_promote=True)
    assert forced.promoted and forced.comparison is not None and forced.comparison.forced
    record = open_registry(artifacts).promotions()[-1]
    assert record["model_version"] == forced.model_version and record["forced"] is True
    assert record["reason"] == "forced (--force)" and record["champion_ndcg"] is not None


@pytest.mark.ml100k
@pytest.mark.redis
@pytest.mark.slow
def test_cli_train_ranker_on_a_toy_file_is_refused_against_the_serving_data(ml100k: Path, tmp_path: Path) -> None:
    """The scheduled job and the command check the data they train on against the serving candidate version."""
    if not redis_available():
        pytest.skip(f"no Redis at {REDIS_URL}")
    ns = f"test-cc-{uuid.uuid4().hex[:8]}"
    env = {"RECSYS_STORE_URL": REDIS_URL, "RECSYS_STORE_NAMESPACE": ns,
           "RECSYS_ARTIFACTS_DIR": str(tmp_path / "artifacts")}
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["refresh", "--data", str(ml100k)], env=env).exit_code == 0
        registry = registry_for(Settings(store_url=REDIS_URL, store_namespace=ns, artifacts_dir=tmp_path / "artifacts"))
        toy = _toy(tmp_path / "toy.csv")
        result = runner.invoke(app, ["train-ranker", "--data", str(toy)], env=env)
        flat = " ".join(result.output.split())
        assert result.exit_code == 2, result.output
        assert "refusing to train a ranker on this data" in flat and "users shrink from 943 to 100" in flat
        assert registry.current_model() is None and registry.model_versions() == []
    finally:
        store = open_store(REDIS_URL, namespace=ns)
        store.wipe()
        store.close()
        shutil.rmtree(tmp_path / "artifacts", ignore_errors=True)


def test_job_history_carries_the_comparison(trained_ranker: TrainedRanker, tmp_path: Path) -> None:
    from jobs.definitions import DEFAULT_JOBS
    from jobs.runner import JobRunner

    artifacts = tmp_path / "artifacts"
    champion = _copy_champion(trained_ranker, artifacts)
    data = tmp_path / "data.parquet"
    trained_ranker.dataset.interactions.write_parquet(data)
    settings = Settings(artifacts_dir=artifacts, data_path=data, store_url=f"embedded://{tmp_path / 's.sqlite'}")
    settings.als.factors = 8
    from recsys.store import store_from_settings

    store = store_from_settings(settings)
    run = JobRunner(settings, store, DEFAULT_JOBS).run("train-ranker")
    assert run is not None and run.status == "ok", run
    promotion = run.details["promotion"]
    assert promotion["champion"] == champion and promotion["decision"] == PROMOTE
    assert promotion["champion_ndcg"] is not None and promotion["challenger_ndcg"] is not None
    stored = store.jobs.runs(limit=1, job="train-ranker")[0]["details"]
    assert json.loads(json.dumps(stored))["promotion"]["difference"] == pytest.approx(promotion["difference"])
