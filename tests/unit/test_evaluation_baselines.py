"""Baselines on block-structured data whose right answers are known, and the split's tie order."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recsys.candidates.matrix import build_matrix
from recsys.config import ALSConfig
from recsys.data.splits import session_holdout
from recsys.evaluation.baselines import (
    ALSRecommender,
    EASERecommender,
    ItemKNNRecommender,
    PopularityRecommender,
)


def _frame(pairs: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame({"user_id": [u for u, _ in pairs], "item_id": [i for _, i in pairs],
                         "timestamp": list(range(1_600_000_000, 1_600_000_000 + len(pairs))),
                         "event": ["click"] * len(pairs), "weight": [1.0] * len(pairs)},
                        schema_overrides={"weight": pl.Float32})


def _blocks(n_users: int = 60, per_block: int = 10) -> pl.DataFrame:
    """Two blocks: even users take every a-item but one, odd users every b-item but one."""
    pairs = []
    for u in range(n_users):
        block = "a" if u % 2 == 0 else "b"
        skip = u % per_block
        pairs += [(f"u{u}", f"{block}{j}") for j in range(per_block) if j != skip]
    return _frame(pairs)


def test_popularity_order_and_exclusion() -> None:
    pairs = [("u1", "x"), ("u2", "x"), ("u3", "x"), ("u1", "y"), ("u2", "y"), ("u1", "z")]
    train = build_matrix(_frame(pairs))
    model = PopularityRecommender().fit(train)
    out = model.recommend(["u9", "u3"], {"u9": [], "u3": ["x"]}, {"u9": ["y"], "u3": []}, n=10)
    assert out["u9"] == ["x", "z"]  # y is in the session
    assert out["u3"] == ["y", "z"]  # x is in the history


@pytest.mark.parametrize("make", [
    lambda: ItemKNNRecommender(neighbours=20),
    lambda: EASERecommender(50.0),
    lambda: ALSRecommender(ALSConfig(factors=8, iterations=10, regularization=0.05, random_state=1),
                           fold_session=True),
], ids=["itemknn", "ease", "als+session"])
def test_session_models_recover_the_block_of_a_new_user(make) -> None:  # type: ignore[no-untyped-def]
    train = build_matrix(_blocks())
    model = make().fit(train)
    # A user the model never saw, whose session is three b-items: the other b-items come first.
    out = model.recommend(["new"], {"new": []}, {"new": ["b0", "b1", "b2"]}, n=7)["new"]
    assert sorted(out) == [f"b{j}" for j in range(3, 10)]


def test_history_models_complete_the_withheld_item() -> None:
    train = build_matrix(_blocks())
    histories = {u: [f"{'a' if int(u[1:]) % 2 == 0 else 'b'}{j}" for j in range(10) if j != int(u[1:]) % 10]
                 for u in ("u0", "u3", "u14")}
    # Two factors: the data has rank two; more factors learn who skipped which item (and keep skipping it).
    for model in (ALSRecommender(ALSConfig(factors=2, iterations=15, random_state=1)), EASERecommender(20.0),
                  ItemKNNRecommender(20)):
        out = model.fit(train).recommend(list(histories), histories, {}, n=1)
        assert out == {"u0": ["a0"], "u3": ["b3"], "u14": ["a4"]}, model.name


def test_nothing_seen_is_ever_recommended() -> None:
    train = build_matrix(_blocks())
    histories = {"u0": [f"a{j}" for j in range(1, 10)], "u1": [f"b{j}" for j in range(10) if j != 1]}
    sessions = {"u0": ["b5", "b6"], "u1": ["a0"]}
    for model in (PopularityRecommender(), ALSRecommender(ALSConfig(factors=4, iterations=5)),
                  ALSRecommender(ALSConfig(factors=4, iterations=5), fold_session=True),
                  ItemKNNRecommender(5), EASERecommender(10.0)):
        out = model.fit(train).recommend(["u0", "u1"], histories, sessions, n=100)
        for user, items in out.items():
            assert not set(items) & (set(histories[user]) | set(sessions[user])), model.name
            assert len(items) == 20 - len(histories[user]) - len(sessions[user])


def test_cold_user_without_session_gets_popularity() -> None:
    train = build_matrix(_frame([("u1", "x"), ("u2", "x"), ("u1", "y")]))
    als = ALSRecommender(ALSConfig(factors=2, iterations=3)).fit(train)
    assert als.recommend(["new"], {}, {"new": ["zzz-unknown"]}, n=5) == {"new": ["x", "y"]}


def test_ease_refuses_a_catalogue_above_its_limit() -> None:
    from recsys.errors import ConfigError

    with pytest.raises(ConfigError, match="dense"):
        EASERecommender(10.0, max_items=5).fit(build_matrix(_blocks()))


def test_split_breaks_timestamp_ties_by_numeric_item_id() -> None:
    # 25 events of one user at one timestamp: numerically the last ten items are 16..25;
    # lexicographically they would be "24", "25", "3", ..., "9".
    frame = pl.DataFrame({"user_id": ["u"] * 25, "item_id": [str(i) for i in range(1, 26)],
                          "timestamp": [1_600_000_000] * 25, "event": ["r"] * 25, "weight": [1.0] * 25})
    split = session_holdout(frame)
    assert split.session_items()["u"] == ["16", "17", "18"]
    assert split.targets["u"] == [str(i) for i in range(19, 26)]
    # Non-numeric ids keep the plain string order.
    lettered = frame.with_columns(("i" + pl.col("item_id")).alias("item_id"))
    split = session_holdout(lettered)
    order = sorted(f"i{i}" for i in range(1, 26))
    assert split.session_items()["u"] == order[15:18]
    assert split.targets["u"] == order[18:]


def test_split_tie_order_does_not_depend_on_row_order() -> None:
    rng = np.random.default_rng(3)
    frame = pl.DataFrame({"user_id": ["u"] * 30, "item_id": [str(i) for i in range(30)],
                          "timestamp": (1_600_000_000 + rng.integers(0, 4, size=30)).tolist(),
                          "event": ["r"] * 30, "weight": [1.0] * 30})
    a = session_holdout(frame)
    b = session_holdout(frame.sample(fraction=1.0, shuffle=True, seed=9))
    assert a.targets == b.targets and a.session_items() == b.session_items()
