"""Metrics of DESIGN.md §6 on hand-computed examples, and the vectorised scorer against them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.evaluation.metrics import score_lists, user_metrics

LOG2_3 = math.log2(3)


def test_hand_computed_example() -> None:
    # Hits at ranks 1 and 3, three targets (c never recommended).
    m = user_metrics(["a", "x", "b", "y"], ["a", "b", "c"])
    dcg = 1.0 + 1.0 / 2.0  # 1/log2(2) + 1/log2(4)
    idcg = 1.0 + 1.0 / LOG2_3 + 1.0 / 2.0
    assert m["ndcg@10"] == pytest.approx(dcg / idcg)
    assert m["ndcg@10"] == pytest.approx(0.703918, abs=1e-6)
    assert m["recall@10"] == pytest.approx(2 / 3)
    assert m["precision@10"] == pytest.approx(0.2)
    assert m["map@10"] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert m["hit@10"] == 1.0


def test_ideal_is_capped_at_k() -> None:
    # 12 targets, the first 10 recommended are all targets: perfect nDCG and MAP, recall 10/12.
    targets = [f"t{i}" for i in range(12)]
    m = user_metrics(targets[:10], targets)
    assert m["ndcg@10"] == pytest.approx(1.0)
    assert m["map@10"] == pytest.approx(1.0)
    assert m["recall@10"] == pytest.approx(10 / 12)


def test_miss_and_short_list() -> None:
    m = user_metrics(["x"], ["a"])
    assert m == {"ndcg@10": 0.0, "recall@10": 0.0, "precision@10": 0.0, "map@10": 0.0, "hit@10": 0.0}
    # A single hit at rank 2 of a 2-item list: nDCG = (1/log2 3) / 1, MAP = (1/2) / 1.
    m = user_metrics(["x", "a"], ["a"])
    assert m["ndcg@10"] == pytest.approx(1 / LOG2_3)
    assert m["map@10"] == pytest.approx(0.5)


def test_score_lists_matches_hand_example_and_curves() -> None:
    lists = {"u1": ["a", "x", "b", "y"], "u2": ["q"]}
    targets = {"u1": ["a", "b", "c"], "u2": ["z"]}
    s = score_lists(lists, targets, n_items=10, k_max=20)
    assert s.per_user["ndcg@10"][0] == pytest.approx(0.703918, abs=1e-6)
    assert s.per_user["ndcg@10"][1] == 0.0
    means = s.means()
    assert means["ndcg@10"] == pytest.approx(0.703918 / 2, abs=1e-6)
    assert means["recall@100"] == pytest.approx((2 / 3) / 2)
    assert means["coverage@10"] == pytest.approx(5 / 10)  # a x b y q
    # nDCG@1: u1 hit at rank 1 (ideal 1) -> 1; u2 -> 0.  Recall@3: u1 2/3.
    assert s.ndcg_curve[0] == pytest.approx(0.5)
    assert s.recall_curve[2] == pytest.approx((2 / 3) / 2)
    # nDCG@2 for u1: DCG 1, IDCG 1 + 1/log2 3.
    assert s.ndcg_curve[1] == pytest.approx(1 / (1 + 1 / LOG2_3) / 2)
    assert len(s.ndcg_curve) == 20


def test_score_lists_agrees_with_reference_on_random_lists(rng: np.random.Generator) -> None:
    items = [f"i{i}" for i in range(60)]
    lists, targets = {}, {}
    for u in range(50):
        lists[f"u{u}"] = list(rng.choice(items, size=int(rng.integers(0, 30)), replace=False))
        targets[f"u{u}"] = list(rng.choice(items, size=int(rng.integers(1, 15)), replace=False))
    lists.pop("u7")  # a user with no list at all scores zero
    s = score_lists(lists, targets, n_items=len(items))
    for row, user in enumerate(s.users):
        ref = user_metrics(lists.get(user, []), targets[user])
        for key, value in ref.items():
            assert s.per_user[key][row] == pytest.approx(value), (user, key)
    # The curve at k = 10 is the nDCG@10 mean.
    assert s.ndcg_curve[9] == pytest.approx(s.per_user["ndcg@10"].mean())


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)
