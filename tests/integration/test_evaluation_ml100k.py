"""The session-holdout protocol on MovieLens 100k reproduces an independent implementation.

Reference values (issue "offline evaluation"): popularity nDCG@10 0.0634 ± 0.003; ALS with 64
factors, regularization 0.05, alpha 2, 15 iterations 0.101 ± 0.015; EASE with the session folded
in 0.120 ± 0.01. Skips when the data set is absent (its licence forbids shipping it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recsys.config import ALSConfig, Settings
from recsys.data.loaders import load_dataset
from recsys.evaluation.protocol import EvaluationConfig, run_evaluation

REPO = Path(__file__).resolve().parents[2]
ML100K = Path(os.environ.get("RECSYS_ML100K", REPO.parent / "shared" / "data" / "ml-100k"))

pytestmark = [pytest.mark.ml100k, pytest.mark.slow]


@pytest.fixture(scope="module")
def ml100k_result():  # type: ignore[no-untyped-def]
    if not (ML100K / "u.data").exists():
        pytest.skip(f"MovieLens 100k not found at {ML100K}")
    settings = Settings()
    settings.als = ALSConfig(factors=64, regularization=0.05, alpha=2.0, iterations=15, random_state=42)
    return run_evaluation(load_dataset(ML100K), settings, EvaluationConfig(n_bootstrap=200))


def test_session_holdout_matches_the_reference(ml100k_result) -> None:  # type: ignore[no-untyped-def]
    models = ml100k_result.models
    assert ml100k_result.dataset.eval_users == 943
    assert models["popularity"].metrics["ndcg@10"] == pytest.approx(0.0634, abs=0.003)
    assert models["als"].metrics["ndcg@10"] == pytest.approx(0.101, abs=0.015)
    assert models["ease+session"].metrics["ndcg@10"] == pytest.approx(0.120, abs=0.01)


def test_session_and_candidates_behave(ml100k_result) -> None:  # type: ignore[no-untyped-def]
    models = ml100k_result.models
    assert models["als+session"].metrics["ndcg@10"] > models["als"].metrics["ndcg@10"]
    # The published candidates are the ALS top-100 (session items not removed): close to ALS's own recall@100.
    assert models["candidates"].metrics["recall@100"] == pytest.approx(models["als"].metrics["recall@100"],
                                                                       abs=0.02)
    ci = models["popularity"].ndcg_ci
    assert ci is not None and ci.low < 0.0634 < ci.high
