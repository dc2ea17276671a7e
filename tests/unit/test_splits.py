"""Evaluation splits on hand-made logs whose right answer is written out, and the ml-100k counts."""

from __future__ import annotations

import os
import random
from pathlib import Path

import polars as pl
import pytest

from recsys.data.splits import global_time, session_holdout
from recsys.errors import DataValidationError

REPO = Path(__file__).resolve().parents[2]
ML100K = Path(os.environ.get("RECSYS_ML100K", REPO.parent / "shared" / "data" / "ml-100k"))


def log(rows: list[tuple[str, str, int]], seed: int = 0) -> pl.DataFrame:
    """A log in shuffled row order: the splits must sort it themselves."""
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    return pl.DataFrame(shuffled, schema={"user_id": pl.String, "item_id": pl.String, "timestamp": pl.Int64},
                        orient="row").with_columns(pl.lit("view").alias("event"), pl.lit(1.0).alias("weight"))


def user_rows(user: str, items: list[str], t0: int, step: int = 10) -> list[tuple[str, str, int]]:
    return [(user, item, t0 + step * k) for k, item in enumerate(items)]


def pairs(df: pl.DataFrame) -> list[tuple[str, str]]:
    return sorted(zip(df["user_id"].to_list(), df["item_id"].to_list(), strict=True))


@pytest.fixture
def holdout_log() -> pl.DataFrame:
    a_train = [f"a{k:02d}" for k in range(15)]
    # A (25 events): session s1 s2 s3; then t1, a03 (seen in training), t2, s2 (seen in the session),
    # t3, t4, t1 again (one target, at its first position).
    a = user_rows("A", a_train + ["s1", "s2", "s3", "t1", "a03", "t2", "s2", "t3", "t4", "t1"], 1_000)
    # s3 and t1 share a timestamp: (timestamp, item_id) order puts s3 first, so s3 is in the session.
    a[18] = ("A", "t1", a[17][2])
    b = user_rows("B", [f"b{k:02d}" for k in range(15)], 2_000)  # 15 events: training only
    c = user_rows("C", [f"c{k:02d}" for k in range(20)], 3_000)  # exactly 20: evaluated
    # D (21 events): every would-be target was already seen, so D is not evaluated.
    d_train = [f"d{k:02d}" for k in range(11)]
    d = user_rows("D", d_train + ["e1", "e2", "e3", *d_train[:7]], 4_000)
    return log(a + b + c + d)


def test_session_holdout_exact_answer(holdout_log: pl.DataFrame) -> None:
    split = session_holdout(holdout_log)
    assert split.targets == {"A": ["t1", "t2", "t3", "t4"], "C": [f"c{k}" for k in range(13, 20)]}
    assert split.session_items() == {"A": ["s1", "s2", "s3"], "C": ["c10", "c11", "c12"]}
    assert split.sessions.columns == ["user_id", "item_id", "event", "timestamp"]
    expected_train = ([("A", f"a{k:02d}") for k in range(15)] + [("B", f"b{k:02d}") for k in range(15)]
                      + [("C", f"c{k:02d}") for k in range(10)] + [("D", f"d{k:02d}") for k in range(11)])
    assert pairs(split.train) == sorted(expected_train)
    assert split.train.columns == holdout_log.columns
    # Nothing held out leaks into training: each user's training events precede their holdout.
    held = holdout_log.join(split.train, on=["user_id", "item_id", "timestamp"], how="anti")
    last_train = split.train.group_by("user_id").agg(pl.col("timestamp").max().alias("last"))
    assert held.join(last_train, on="user_id").filter(pl.col("timestamp") < pl.col("last")).height == 0


def test_session_holdout_is_independent_of_row_order(holdout_log: pl.DataFrame) -> None:
    first = session_holdout(holdout_log)
    second = session_holdout(holdout_log.sample(fraction=1.0, shuffle=True, seed=7))
    assert first.targets == second.targets
    assert first.session_items() == second.session_items()
    assert pairs(first.train) == pairs(second.train)


def test_session_holdout_parameters(holdout_log: pl.DataFrame) -> None:
    split = session_holdout(holdout_log, n_holdout=5, n_session=2, min_interactions=16)
    # A's last 5 (positions 20..24) are t2 s2 | t3 t4 t1; s2 is no longer in the session but in training.
    assert split.session_items()["A"] == ["t2", "s2"]
    assert split.targets["A"] == ["t3", "t4"]  # t1 was seen in training (position 18)
    assert "B" not in split.targets
    with pytest.raises(DataValidationError, match="n_session"):
        session_holdout(holdout_log, n_holdout=3, n_session=3)
    with pytest.raises(DataValidationError, match="too small"):
        session_holdout(holdout_log, min_interactions=30)


@pytest.fixture
def timeline_log() -> pl.DataFrame:
    u1 = user_rows("U1", [f"p{k}" for k in range(10)], 10, step=1) + user_rows(
        "U1", ["q1", "q2", "q3", "q4", "p2", "q5"], 101, step=1)
    u2 = user_rows("U2", ["r1", "r2", "r3", "r4", "r5"], 111, step=1)  # no history: cold
    u3 = user_rows("U3", ["x1", "x2"], 20, step=1) + user_rows("U3", ["x3", "x4"], 120, step=1)
    u4 = user_rows("U4", [f"y{k}" for k in range(5)], 30, step=1)
    return log(u1 + u2 + u3 + u4)


def test_global_time_exact_answer(timeline_log: pl.DataFrame) -> None:
    # 30 events, 17 of them at t <= 34; the "lower" 0.57 quantile is the 17th smallest timestamp, 34.
    split, cold = global_time(timeline_log, quantile=0.57)
    assert int(split.train["timestamp"].max()) == 34
    assert split.train.height == 17
    assert pairs(split.train) == pairs(timeline_log.filter(pl.col("timestamp") <= 34))
    assert split.targets == {"U1": ["q4", "q5"], "U2": ["r4", "r5"]}  # p2 was seen before the cutoff
    assert split.session_items() == {"U1": ["q1", "q2", "q3"], "U2": ["r1", "r2", "r3"]}
    assert cold == {"U2"}
    # U3 has only 2 events after the cutoff (< min_after): not evaluated, and its future is dropped.
    assert "U3" not in split.targets and split.sessions.filter(pl.col("user_id") == "U3").height == 0


def test_global_time_errors(timeline_log: pl.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="quantile"):
        global_time(timeline_log, quantile=1.0)
    with pytest.raises(DataValidationError, match="after the cutoff"):
        global_time(timeline_log, quantile=0.57, min_after=7)


@pytest.mark.ml100k
@pytest.mark.skipif(not (ML100K / "u.data").exists(), reason=f"MovieLens 100k not found at {ML100K}")
def test_session_holdout_on_ml100k() -> None:
    from recsys.data.loaders import load_dataset

    ds = load_dataset(ML100K)
    split = session_holdout(ds.interactions)
    assert len(split.targets) == 943
    assert split.sessions.height == 2829
    assert sum(len(t) for t in split.targets.values()) == 6601
    assert split.train.height == ds.interactions.height - 943 * 10
