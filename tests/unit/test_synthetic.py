"""The synthetic generator: determinism, schema, sessions, and structure that ALS can find."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from recsys.candidates.pipeline import build_candidates
from recsys.candidates.popularity import popular_order, popularity_counts
from recsys.config import ALSConfig, CandidateConfig
from recsys.data.loaders import load_dataset
from recsys.data.schema import INTERACTION_SCHEMA, ITEM_SCHEMA, validate_interactions
from recsys.data.splits import HoldoutSplit, session_holdout
from recsys.data.synthetic import (
    IN_SESSION_GAP_MAX_SECONDS,
    SESSION_GAP_MIN_SECONDS,
    SynthConfig,
    generate,
    write_synthetic,
)
from recsys.errors import ConfigError
from recsys.evaluation.metrics import evaluate_lists

NOW = 2_000_000_000.0  # validation's "now": fixed so the tests do not depend on the clock


@pytest.fixture(scope="module")
def small() -> tuple[pl.DataFrame, pl.DataFrame]:
    return generate(400, 300, seed=11)


def test_same_seed_gives_identical_frames(small: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    again = generate(400, 300, seed=11)
    assert_frame_equal(small[0], again[0])
    assert_frame_equal(small[1], again[1])


def test_different_seed_gives_different_frames(small: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    other, other_items = generate(400, 300, seed=12)
    assert not small[0].equals(other)
    assert not small[1].equals(other_items)


def test_output_passes_validation_with_contract_schema(small: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    interactions, items = small
    assert dict(interactions.schema) == INTERACTION_SCHEMA
    assert dict(items.schema) == ITEM_SCHEMA
    validated, report = validate_interactions(interactions, "synthetic", now=NOW)
    assert_frame_equal(validated, interactions)
    assert report.duplicates_dropped == 0
    assert interactions.select("user_id", "item_id").is_duplicated().sum() == 0
    assert interactions["user_id"].str.contains(r"^u\d+$").all()
    assert interactions["item_id"].str.contains(r"^i\d+$").all()
    assert interactions["user_id"].n_unique() == 400
    assert items.height == 300 and items["item_id"].n_unique() == 300
    assert interactions["item_id"].is_in(items["item_id"].implode()).all()
    assert set(interactions["event"].unique()) == {"view", "click", "purchase"}
    weights = interactions.group_by("event").agg(pl.col("weight").unique())
    assert dict(weights.iter_rows()) == {"view": [1.0], "click": [2.0], "purchase": [5.0]}
    assert (items["categories"].list.len() >= 1).all()


def test_event_counts_follow_mean_and_minimum() -> None:
    for mean in (50.0, 20.0):
        interactions, _ = generate(1500, 20_000, seed=3, mean_events=mean, min_events=5)
        per_user = interactions.group_by("user_id").len()["len"]
        assert per_user.min() >= 5
        assert 0.85 * mean <= per_user.mean() <= 1.1 * mean
        # Heavy tail: the 99th percentile is far above the median.
        assert per_user.quantile(0.99) > 3 * per_user.median()


def test_sessions_are_time_ordered_with_short_inner_and_long_outer_gaps(
        small: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    interactions, _ = small
    # Rows come grouped by user (one contiguous run each), in strictly increasing time.
    assert interactions["user_id"].rle_id().max() + 1 == interactions["user_id"].n_unique()
    gaps = interactions.select(pl.col("timestamp").diff().over("user_id").alias("gap")).drop_nulls()["gap"]
    assert (gaps >= 1).all()
    inner = gaps <= IN_SESSION_GAP_MAX_SECONDS
    outer = gaps >= SESSION_GAP_MIN_SECONDS
    assert (inner | outer).all()
    # Several sessions per user, several events per session on average.
    sessions = int(outer.sum()) + 400
    assert 4.0 < interactions.height / sessions < 10.0


def _transitions(interactions: pl.DataFrame) -> pl.DataFrame:
    return (interactions
            .with_columns(pl.col("timestamp").diff().over("user_id").alias("gap"),
                          pl.col("item_id").shift().over("user_id").alias("prev"))
            .filter(pl.col("gap") <= IN_SESSION_GAP_MAX_SECONDS))


def test_next_item_in_session_is_a_recurring_neighbour() -> None:
    """With the in-session walk, the same (previous, next) pairs recur across users."""
    def repeated_share(p_continue: float) -> float:
        interactions, _ = generate(2000, 1000, seed=5, p_continue=p_continue)
        t = _transitions(interactions)
        pairs = t.group_by("prev", "item_id").len()
        return float(pairs.filter(pl.col("len") >= 3)["len"].sum() / t.height)

    assert repeated_share(0.6) > repeated_share(0.0) + 0.1


def test_categories_follow_clusters(small: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    interactions, items = small
    main = items.select("item_id", pl.col("categories").list.first().alias("cat"))
    t = (_transitions(interactions).join(main, on="item_id")
         .join(main.rename({"item_id": "prev", "cat": "prev_cat"}), on="prev"))
    same_in_session = float((t["cat"] == t["prev_cat"]).mean())
    cats = main["cat"].to_numpy()
    rng = np.random.default_rng(0)
    same_at_random = float((cats[rng.integers(0, cats.size, 50_000)]
                            == cats[rng.integers(0, cats.size, 50_000)]).mean())
    assert same_in_session > 3 * same_at_random


def _candidate_recall(interactions: pl.DataFrame, items: pl.DataFrame) -> tuple[float, float]:
    """(ALS candidate recall@100, popularity recall@100) on the session-holdout split."""
    split: HoldoutSplit = session_holdout(interactions)
    art = build_candidates(split.train, items, version="test", als_config=ALSConfig(),
                           candidate_config=CandidateConfig())
    ids = art.matrix.item_ids
    rows = art.matrix.user_index()
    item_map = pl.DataFrame({"item_id": ids, "_i": np.arange(ids.size, dtype=np.int32)})
    all_time, _ = popularity_counts(split.train, item_map, ids.size, recent_days=30)
    popular = ids[popular_order(all_time)].tolist()
    seen = dict(split.train.group_by("user_id").agg(pl.col("item_id")).iter_rows())
    session = split.session_items()
    als_lists, pop_lists = {}, {}
    for user in split.targets:
        excluded = set(seen[user]) | set(session.get(user, []))
        als_lists[user] = [it for it in ids[art.lists.row(rows[user])[0]].tolist() if it not in excluded]
        pop_lists[user] = [it for it in popular if it not in excluded][:100]
    als = evaluate_lists(als_lists, split.targets, ids.size)["recall@100"]
    pop = evaluate_lists(pop_lists, split.targets, ids.size)["recall@100"]
    return als, pop


def test_als_candidates_beat_popularity_on_planted_tastes() -> None:
    interactions, items = generate(2000, 1000, seed=21)
    als, pop = _candidate_recall(interactions, items)
    assert als > 1.5 * pop, (als, pop)


def test_without_user_tastes_als_has_nothing_to_find() -> None:
    """Control: sessions from random clusters (no primary/secondary) leave ALS no better than popularity,
    so the margin above comes from the planted structure, not from the evaluation."""
    interactions, items = generate(2000, 1000, seed=21, p_primary=0.0, p_secondary=0.0)
    als, pop = _candidate_recall(interactions, items)
    assert als < 1.1 * pop, (als, pop)


@pytest.mark.parametrize(("options", "message"), [
    ({"n_users": 0}, "users must be >= 1"),
    ({"n_items": 9}, "items must be >= 10"),
    ({"min_events": 0}, "min-events must be >= 1"),
    ({"mean_events": 5.0, "min_events": 5}, "mean-events (5.0) must be greater than min-events (5)"),
    ({"n_items": 10, "min_events": 6}, "min-events (6) must be <= half the items (5)"),
    ({"p_primary": 0.8, "p_secondary": 0.3}, "p_primary + p_secondary must be <= 1"),
    ({"event_probs": (0.5, 0.2, 0.2)}, "event_probs must be >= 0 and sum to 1"),
])
def test_bad_configuration_is_a_clear_error(options: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"n_users": 10, "n_items": 100}
    with pytest.raises(ConfigError) as info:
        SynthConfig(**{**base, **options}).validate()  # type: ignore[arg-type]
    assert message in str(info.value)


def test_write_synthetic_is_loadable_and_equal_to_generate(tmp_path) -> None:
    summary = write_synthetic(tmp_path / "synth", 300, 200, seed=4)
    interactions, items = generate(300, 200, seed=4)
    assert (summary.rows, summary.users, summary.items) == (interactions.height, 300, 200)
    dataset = load_dataset(tmp_path / "synth", now=NOW)
    assert dataset.format == "directory"
    assert_frame_equal(dataset.interactions, interactions)
    assert dataset.items is not None
    assert_frame_equal(dataset.items, items)
    assert not (tmp_path / "synth" / "interactions.parquet.tmp").exists()


def test_cli_writes_and_summarises(tmp_path) -> None:
    from cli.main import app

    out = tmp_path / "cli-synth"
    result = CliRunner().invoke(app, ["data", "synth", "--users", "200", "--items", "100", "--seed", "3",
                                      "--out", str(out), "--mean-events", "20"])
    assert result.exit_code == 0, result.output
    rows = pl.read_parquet(out / "interactions.parquet").height
    assert rows == generate(200, 100, seed=3, mean_events=20.0)[0].height
    assert f"{rows:,}" in result.output and "200" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--items", "5"], "items must be >= 10"),
    (["--users", "0"], "users must be >= 1"),
    (["--mean-events", "3"], "mean-events (3.0) must be greater than min-events (5)"),
])
def test_cli_rejects_bad_arguments(tmp_path, args: list[str], message: str) -> None:
    from cli.main import app

    out = tmp_path / "never"
    result = CliRunner().invoke(app, ["data", "synth", "--out", str(out), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


def test_taste_drift_moves_later_events_to_other_clusters_deterministically() -> None:
    """Known answer for the replay: after `drift_at` a user's items come from clusters they did not use."""
    from recsys.data.synthetic import SynthConfig, _catalogue

    cfg = SynthConfig(n_users=400, n_items=300, seed=9, start_span_days=20.0)
    drift_at = cfg.start + 10 * 86400
    before, _ = generate(400, 300, seed=9, start_span_days=20.0)
    a, _ = generate(400, 300, seed=9, start_span_days=20.0, drift_at=drift_at)
    b, _ = generate(400, 300, seed=9, start_span_days=20.0, drift_at=drift_at)
    assert a.equals(b)
    early = pl.col("timestamp") < drift_at
    assert a.filter(early).equals(before.filter(early))  # nothing changes before the drift
    cat = _catalogue(cfg, np.random.default_rng(np.random.SeedSequence(9).spawn(2)[0]))
    cluster = {f"i{i}": int(c) for i, c in enumerate(cat.item_cluster)}

    def share_in_old_clusters(frame: pl.DataFrame) -> float:
        old = {u: {cluster[i] for i in items} for u, items in
               frame.filter(early).group_by("user_id").agg("item_id").iter_rows()}
        late = frame.filter(~early & pl.col("user_id").is_in(list(old)))
        return float(np.mean([cluster[i] in old[u] for u, i in late.select("user_id", "item_id").iter_rows()]))

    stay, drifted = share_in_old_clusters(before), share_in_old_clusters(a)
    assert stay > 0.5, stay  # without drift most later events are in clusters the user already used
    assert drifted < stay / 2, (drifted, stay)
