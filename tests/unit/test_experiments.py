"""Assignment, interleaving and the analysis on generated data whose answer is known."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from recsys.errors import ConfigError, ExperimentConflictError
from recsys.experiments.assignment import ExperimentSet, allocate_slot, unit_hash
from recsys.experiments.config import Experiment, parse_experiment, parse_variant_spec
from recsys.experiments.interleaving import credit, team_draft
from recsys.experiments.report import analyse

IDS = [f"user-{i}" for i in range(100_000)]


def ab(name: str, shares: tuple[float, ...] = (0.5, 0.5), traffic: float = 1.0, slot: float = 0.0,
       kind: str = "ab") -> Experiment:
    return parse_experiment({"name": name, "kind": kind, "traffic": traffic, "slot_start": slot,
                             "variants": [{"name": f"v{i}", "share": s, "ranker": "model" if i else "als"}
                                          for i, s in enumerate(shares)]})


def test_unit_hash_is_the_same_in_another_process() -> None:
    code = ("from recsys.experiments.assignment import unit_hash;"
            "print(','.join(repr(unit_hash('salt', f'user-{i}')) for i in range(50)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123"}).stdout.strip()
    assert out == ",".join(repr(unit_hash("salt", f"user-{i}")) for i in range(50))
    # and a different salt is a different, independent draw
    assert unit_hash("a", "user-1") != unit_hash("b", "user-1")


@pytest.mark.parametrize("shares", [(0.5, 0.5), (0.2, 0.3, 0.5), (0.6, 0.4), (0.1, 0.9)])
def test_variant_shares_within_one_percent_on_100000_ids(shares: tuple[float, ...]) -> None:
    experiments = ExperimentSet([ab("exp", shares)])
    counts: dict[str, int] = {}
    for uid in IDS:
        a = experiments.assign(uid)
        assert a is not None
        counts[a.variant] = counts.get(a.variant, 0) + 1
    for i, share in enumerate(shares):
        assert abs(counts[f"v{i}"] / len(IDS) - share) < 0.01, counts


def test_traffic_share_within_one_percent_and_users_outside_are_unassigned() -> None:
    experiments = ExperimentSet([ab("exp", traffic=0.3)])
    inside = sum(experiments.assign(uid) is not None for uid in IDS)
    assert abs(inside / len(IDS) - 0.3) < 0.01


def test_adding_an_experiment_does_not_reshuffle_another() -> None:
    first = ab("first", traffic=0.5)
    before = ExperimentSet([first])
    second = ab("second", traffic=0.4, slot=allocate_slot([first], 0.4))
    after = ExperimentSet([first, second])
    moved = 0
    in_second = 0
    for uid in IDS:
        a, b = before.assign(uid), after.assign(uid)
        if a is not None:
            moved += b is None or (b.experiment, b.variant) != (a.experiment, a.variant)
        elif b is not None:
            assert b.experiment == "second"
            in_second += 1
    assert moved == 0
    assert abs(in_second / len(IDS) - 0.4) < 0.01


def test_allocation_refuses_overlapping_traffic_with_an_actionable_error() -> None:
    running = [ab("a", traffic=0.7)]
    assert allocate_slot(running, 0.3) == pytest.approx(0.7)
    with pytest.raises(ExperimentConflictError, match="widest free slice is 0.3"):
        allocate_slot(running, 0.5)
    # a gap left by a stopped experiment is reused
    assert allocate_slot([ab("b", traffic=0.2), ab("c", traffic=0.5, slot=0.5)], 0.3) == pytest.approx(0.2)


def test_bad_definitions_say_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="add up to 1"):
        ab("x", (0.5, 0.4))
    with pytest.raises(ConfigError, match="exactly two variants"):
        ab("x", (0.2, 0.3, 0.5), kind="interleaving")
    with pytest.raises(ConfigError, match="variants.1.ranker"):
        parse_experiment({"name": "x", "variants": [{"name": "a", "share": 0.5},
                                                     {"name": "b", "share": 0.5, "ranker": "magic"}]})
    with pytest.raises(ConfigError, match="NAME:RANKER:SHARE"):
        parse_variant_spec("control:0.5")
    assert parse_variant_spec("control:als:0.5").ranker == "als"


def test_team_draft_keeps_each_teams_order_and_balance(rng: np.random.Generator) -> None:
    for _ in range(200):
        a = list(rng.permutation(30)[:15])
        b = list(rng.permutation(30)[:15])
        items, teams = team_draft(a, b, 10, rng)
        assert len(items) == len(set(items)) == 10
        for t, ranking in ((0, a), (1, b)):
            mine = [i for i, tt in zip(items, teams, strict=True) if tt == t]
            assert mine == sorted(mine, key=ranking.index)  # a team's picks come in its own order
        # each prefix: the picks of the two teams differ by at most one
        for n in range(1, 11):
            assert abs(sum(teams[:n]) * 2 - n) <= 1
    # identical rankings: the list is that ranking whatever the coin says
    items, _ = team_draft(list(range(10)), list(range(10)), 10, rng)
    assert items == list(range(10))


def test_team_draft_is_reproducible_from_its_seed() -> None:
    a, b = list(range(20)), list(range(19, -1, -1))
    first = team_draft(a, b, 10, np.random.default_rng(7))
    assert team_draft(a, b, 10, np.random.default_rng(7)) == first


def test_credit_counts_clicked_items_per_team() -> None:
    assert credit(["x", "y", "x"], ["i1", "i2", "i3"], {"i1", "i3"}, ("x", "y")) == 1
    assert credit(["x", "y"], ["i1", "i2"], {"i2"}, ("x", "y")) == -1
    assert credit(["x", "y"], ["i1", "i2"], {"i1", "i2"}, ("x", "y")) == 0


def _frames(rng: np.random.Generator, n_users: int, ctr: dict[str, float], experiment: Experiment,
            shares: dict[str, float] | None = None, per_user: int = 4) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Impressions of `n_users` (assigned by the experiment, or by `shares` to simulate a broken split) and
    click events whose probability per impression is `ctr[variant]`."""
    sets = ExperimentSet([experiment])
    imps: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    names = list(ctr)
    for u in range(n_users):
        uid = f"u{u}"
        assigned = sets.assign(uid)
        assert assigned is not None
        variant = assigned.variant if shares is None else str(rng.choice(names, p=[shares[n] for n in names]))
        for j in range(per_user):
            rec = f"{uid}-{j}"
            imps.append({"rec_id": rec, "user_id": uid, "items": ["a", "b", "c"], "teams": None,
                         "experiment": experiment.name, "variant": variant, "ts": float(j)})
            if rng.random() < ctr[variant]:
                events.append({"rec_id": rec, "user_id": uid, "item_id": "b", "event": "click"})
    schema = {"rec_id": pl.String, "user_id": pl.String, "items": pl.List(pl.String), "teams": pl.List(pl.String),
              "experiment": pl.String, "variant": pl.String, "ts": pl.Float64}
    return (pl.DataFrame(imps, schema=schema),
            pl.DataFrame(events, schema={"rec_id": pl.String, "user_id": pl.String, "item_id": pl.String,
                                         "event": pl.String}))


def test_report_declares_a_real_difference_and_its_sign(rng: np.random.Generator) -> None:
    e = ab("real")
    imps, events = _frames(rng, 3000, {"v0": 0.10, "v1": 0.16}, e)
    report = analyse(e, imps, events)
    (cmp,) = report.comparisons
    assert cmp.decided and cmp.low > 0 and cmp.difference == pytest.approx(0.06, abs=0.015)
    assert cmp.lift is not None and cmp.lift_low is not None and cmp.lift_low > 0
    assert report.srm is not None and not report.srm.fired
    by_name = {v.name: v for v in report.variants}
    assert by_name["v0"].first_click_position == 2.0  # "b" is shown second


def test_report_on_identical_variants_rarely_declares_and_says_how_many_users_are_needed() -> None:
    e = ab("aa")
    declared = 0
    for seed in range(20):
        imps, events = _frames(np.random.default_rng(seed), 600, {"v0": 0.1, "v1": 0.1}, e)
        (cmp,) = analyse(e, imps, events).comparisons
        declared += cmp.decided
        if not cmp.decided:
            assert "cannot decide yet" in cmp.verdict and cmp.users_needed_per_variant is not None
    assert declared <= 3  # 20 tests at alpha 0.05: 1 expected, more than 3 has probability < 2 %


def test_srm_fires_on_a_60_40_split_of_a_50_50_experiment(rng: np.random.Generator) -> None:
    e = ab("srm")
    imps, events = _frames(rng, 2000, {"v0": 0.1, "v1": 0.1}, e, shares={"v0": 0.6, "v1": 0.4}, per_user=1)
    report = analyse(e, imps, events)
    assert report.srm is not None and report.srm.fired and report.srm.p_value < 1e-6
    assert any("sample ratio mismatch" in n for n in report.notes)


def test_interleaving_report_credits_clicks_to_teams() -> None:
    e = ab("tdi", kind="interleaving")
    imps, events = [], []
    for u in range(60):
        # v1 wins 3 of every 4 impressions of each user
        for j in range(4):
            rec = f"u{u}-{j}"
            imps.append({"rec_id": rec, "user_id": f"u{u}", "items": ["a", "b"], "teams": ["v0", "v1"],
                         "experiment": "tdi", "variant": "interleaved", "ts": 0.0})
            events.append({"rec_id": rec, "user_id": f"u{u}", "item_id": "a" if j == 0 else "b", "event": "click"})
    schema = {"rec_id": pl.String, "user_id": pl.String, "items": pl.List(pl.String), "teams": pl.List(pl.String),
              "experiment": pl.String, "variant": pl.String, "ts": pl.Float64}
    result = analyse(e, pl.DataFrame(imps, schema=schema), pl.DataFrame(events)).interleaving
    assert result is not None
    assert result.wins == {"v0": 60, "v1": 180} and result.users_preferring == {"v0": 0, "v1": 60}
    assert result.decided and result.p_value is not None and result.p_value < 1e-10
    assert result.preference_share == pytest.approx(0.25)


def test_definitions_round_trip_through_the_store_and_a_damaged_value_is_reported(tmp_path: object) -> None:
    from recsys.errors import CorruptValueError, ExperimentNotFoundError
    from recsys.experiments.manage import create_experiment, list_experiments, load_running, stop_experiment
    from recsys.store import open_store
    from recsys.store.codec import decode_experiments

    store = open_store("embedded://:memory:")
    first = create_experiment(store, {"name": "one", "traffic": 0.6, "variants": [
        {"name": "a", "share": 0.5, "ranker": "als"}, {"name": "b", "share": 0.5}]})
    second = create_experiment(store, {"name": "two", "traffic": 0.4, "variants": [
        {"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}]})
    assert (first.slot_start, second.slot_start) == (0.0, pytest.approx(0.6))
    assert [e.name for e in load_running(store).experiments] == ["one", "two"]
    stop_experiment(store, "one")
    assert [e.name for e in load_running(store).experiments] == ["two"]
    assert {e.name: e.status for e in list_experiments(store)} == {"one": "stopped", "two": "running"}
    with pytest.raises(ExperimentNotFoundError):
        stop_experiment(store, "three")
    with pytest.raises(CorruptValueError):
        decode_experiments(b"[1, 2]")
    with pytest.raises(CorruptValueError):
        decode_experiments(b"\xff")
