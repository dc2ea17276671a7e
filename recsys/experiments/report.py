"""The analysis of an experiment from what was shown (impressions) and what users did with it (events).

Attribution: an event counts for an impression when it carries the impression's `rec_id` and its item
was in the shown list (a click on something else is not a response to this list). Counted per impression:
clicks (distinct shown items acted on: any event but `view`), conversions (`add_to_cart`, `purchase`),
the position of the first click.

Per user, not per impression: a user's impressions are not independent (the same taste, the same
session), so every interval treats the user as the unit. The A/B metric is clicks per impression as a
ratio of per-user sums, with the delta method's variance (the standard for ratio metrics clustered by
user); the difference and the relative lift of each variant against the first (the control) get normal
intervals. The sample-ratio-mismatch check is a chi-square test of users per variant against the
configured shares. Interleaving: each impression is won by the team with more clicked items; each user
prefers the team that won more of their impressions; a two-sided binomial (sign) test over the users
with a preference.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from recsys.data.lake import Lake
from recsys.experiments.config import Experiment

CLICK_EXCLUDED = ("view",)
CONVERSIONS = ("add_to_cart", "purchase")
SRM_ALPHA = 0.001  # the usual threshold: an SRM alarm should mean a broken assignment, not bad luck
POWER = 0.8


@dataclass(frozen=True)
class VariantStats:
    name: str
    users: int
    impressions: int
    clicks: int
    conversions: int
    ctr: float  # clicks per impression (ratio of per-user sums)
    ctr_low: float
    ctr_high: float
    clicks_per_user: float
    conversions_per_impression: float
    first_click_position: float | None  # mean over impressions with a click
    expected_share: float


@dataclass(frozen=True)
class Comparison:
    """`variant` against the control on clicks per impression."""

    variant: str
    control: str
    difference: float
    low: float
    high: float
    p_value: float
    lift: float | None
    lift_low: float | None
    lift_high: float | None
    decided: bool
    verdict: str
    users_needed_per_variant: int | None  # for the experiment's minimum detectable effect, at this variance


@dataclass(frozen=True)
class SrmCheck:
    chi2: float
    p_value: float
    fired: bool
    observed: dict[str, int]
    expected: dict[str, float]


@dataclass(frozen=True)
class InterleavingResult:
    teams: tuple[str, str]
    impressions: int
    impressions_with_clicks: int
    wins: dict[str, int]  # impressions won per team
    ties: int
    users_preferring: dict[str, int]
    users_tied: int
    preference_share: float | None  # impressions won by teams[0] / impressions won by either
    p_value: float | None
    decided: bool
    verdict: str


@dataclass
class ExperimentReport:
    experiment: dict[str, Any]
    alpha: float
    impressions: int
    users: int
    variants: list[VariantStats] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    srm: SrmCheck | None = None
    interleaving: InterleavingResult | None = None
    users_in_several_variants: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: a figure that cannot be computed (NaN, e.g. a variance of one user) is null."""
        out = asdict(self)
        if self.interleaving is not None:
            out["interleaving"]["teams"] = list(self.interleaving.teams)
        return _finite(out)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1.0 - alpha / 2.0))


def attributed(impressions: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """One row per impression: rec_id, user_id, variant, clicks, conversions, first_click, and (interleaving)
    clicks credited to each team as `team_clicks` (a list of the clicked items' teams)."""
    shown = (impressions.select("rec_id", "user_id", "variant", "items", "teams")
             .with_columns(pl.int_ranges(1, pl.col("items").list.len() + 1).alias("position"),
                           pl.when(pl.col("teams").is_null())
                           .then(pl.col("items").list.eval(pl.lit(None, pl.String)))
                           .otherwise(pl.col("teams")).alias("teams"))
             .explode("items", "teams", "position")
             .rename({"items": "item_id", "teams": "team"}))
    acted = (events.filter(pl.col("rec_id").is_not_null() & ~pl.col("event").is_in(CLICK_EXCLUDED))
             .group_by("rec_id", "item_id")
             .agg(pl.col("event").is_in(CONVERSIONS).any().alias("converted")))
    hits = shown.join(acted, on=["rec_id", "item_id"], how="inner")
    per_imp = hits.group_by("rec_id").agg(pl.len().alias("clicks"), pl.col("converted").sum().alias("conversions"),
                                          pl.col("position").min().alias("first_click"),
                                          pl.col("team").alias("team_clicks"))
    return (impressions.select("rec_id", "user_id", "variant", "ts").join(per_imp, on="rec_id", how="left")
            .with_columns(pl.col("clicks").fill_null(0), pl.col("conversions").fill_null(0)))


def _ratio_stats(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Ratio of sums R = Σx/Σy over users and its delta-method variance."""
    n = x.size
    r = float(x.sum() / y.sum())
    if n < 2:
        return r, float("nan")
    mx, my = x.mean(), y.mean()
    cov = np.cov(x, y, ddof=1)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * my * my)
    return r, float(max(var, 0.0)) if mx >= 0 else float("nan")


def analyse(experiment: Experiment, impressions: pl.DataFrame, events: pl.DataFrame, *, alpha: float = 0.05,
            seed: int = 42) -> ExperimentReport:
    """The report of `experiment` from lake-shaped frames (impressions of any experiments, events of any lists).

    `seed` is kept for interval methods that resample; the delta method and the exact tests draw nothing.
    """
    del seed
    imps = impressions.filter(pl.col("experiment") == experiment.name)
    report = ExperimentReport(experiment=experiment.to_dict(), alpha=alpha, impressions=imps.height,
                              users=imps["user_id"].n_unique() if imps.height else 0)
    if imps.height == 0:
        report.notes.append("no impressions of this experiment in the lake yet (run `recsys ingest`, or wait "
                            "for the scheduled ingest)")
        return report
    rows = attributed(imps, events.filter(pl.col("rec_id").is_in(imps["rec_id"].implode())))
    if experiment.kind == "interleaving":
        report.interleaving = _interleaving(experiment, rows, alpha)
        return report
    _ab(experiment, rows, report, alpha)
    return report


def _ab(experiment: Experiment, rows: pl.DataFrame, report: ExperimentReport, alpha: float) -> None:
    per_user = rows.group_by("user_id", "variant").agg(pl.len().alias("impressions"), pl.col("clicks").sum(),
                                                        pl.col("conversions").sum())
    several = per_user.group_by("user_id").len().filter(pl.col("len") > 1).height
    report.users_in_several_variants = several
    if several:
        report.notes.append(f"{several} users were served more than one variant (changed definition?)")
    z = _z(alpha)
    ratio: dict[str, tuple[float, float, int]] = {}
    for v in experiment.variants:
        sub = per_user.filter(pl.col("variant") == v.name)
        imp_rows = rows.filter(pl.col("variant") == v.name)
        x = sub["clicks"].to_numpy().astype(np.float64)
        y = sub["impressions"].to_numpy().astype(np.float64)
        if x.size == 0:
            report.variants.append(VariantStats(v.name, 0, 0, 0, 0, float("nan"), float("nan"), float("nan"),
                                                float("nan"), float("nan"), None, v.share))
            continue
        r, var = _ratio_stats(x, y)
        ratio[v.name] = (r, var, x.size)
        se = math.sqrt(var) if var == var else float("nan")
        first = imp_rows["first_click"].drop_nulls()
        report.variants.append(VariantStats(
            v.name, int(x.size), int(y.sum()), int(x.sum()), int(sub["conversions"].sum()), r, r - z * se,
            r + z * se, float(x.mean()), float(sub["conversions"].sum() / y.sum()),
            float(first.mean()) if first.len() else None, v.share))  # type: ignore[arg-type]
    observed = {v.name: int(per_user.filter(pl.col("variant") == v.name).height) for v in experiment.variants}
    total = sum(observed.values())
    expected = {v.name: total * v.share for v in experiment.variants}
    if total > 0:
        chi2 = sum((observed[k] - expected[k]) ** 2 / expected[k] for k in observed)
        p = float(stats.chi2.sf(chi2, len(observed) - 1))
        report.srm = SrmCheck(float(chi2), p, p < SRM_ALPHA, observed, expected)
        if p < SRM_ALPHA:
            report.notes.append(f"sample ratio mismatch (p = {p:.2g} < {SRM_ALPHA}): users per variant do not "
                                "match the configured shares; the assignment or the logging is broken, so no "
                                "comparison of this experiment can be trusted")
    control = experiment.variants[0].name
    if control not in ratio:
        return
    rc, vc, nc = ratio[control]
    for v in experiment.variants[1:]:
        if v.name not in ratio:
            continue
        rt, vt, nt = ratio[v.name]
        report.comparisons.append(_compare(v.name, control, rt, vt, nt, rc, vc, nc, alpha, z,
                                           experiment.min_detectable_effect))


def _compare(name: str, control: str, rt: float, vt: float, nt: int, rc: float, vc: float, nc: int,
             alpha: float, z: float, mde: float) -> Comparison:
    d = rt - rc
    se = math.sqrt(vt + vc) if (vt == vt and vc == vc) else float("nan")
    p = float(2 * stats.norm.sf(abs(d) / se)) if se > 0 else float("nan")
    lift = lift_lo = lift_hi = None
    if rc > 0:
        lift = rt / rc - 1.0
        lse = (rt / rc) * math.sqrt(vt / rt ** 2 + vc / rc ** 2) if rt > 0 else float("nan")
        lift_lo, lift_hi = lift - z * lse, lift + z * lse
    low, high = d - z * se, d + z * se
    decided = bool(se > 0 and (low > 0 or high < 0))
    needed: int | None = None
    # Users per variant to detect a relative lift of `mde` with power 0.8: per-user variance of the ratio
    # is n·Var(R) (the delta method's linearisation), pooled over both arms.
    per_user_var = (vt * nt + vc * nc) / 2.0
    if rc > 0 and per_user_var == per_user_var and per_user_var > 0:
        zb = float(stats.norm.ppf(POWER))
        needed = int(math.ceil(2 * (z + zb) ** 2 * per_user_var / (mde * rc) ** 2))
    if decided:
        better = name if d > 0 else control
        verdict = (f"{better} is better: clicks per impression {rt:.4f} vs {rc:.4f}, difference {d:+.4f} "
                   f"[{low:+.4f}, {high:+.4f}] at {1 - alpha:.0%}, p = {p:.2g}")
    else:
        more = "" if needed is None else (f"; to detect a {mde:.0%} relative lift needs about {needed} users per "
                                          f"variant ({max(needed - min(nt, nc), 0)} more than the smallest arm)")
        verdict = (f"cannot decide yet: difference {d:+.4f} [{low:+.4f}, {high:+.4f}] includes 0{more}")
    return Comparison(name, control, d, low, high, p, lift, lift_lo, lift_hi, decided, verdict, needed)


def _interleaving(experiment: Experiment, rows: pl.DataFrame, alpha: float) -> InterleavingResult:
    a, b = experiment.variants[0].name, experiment.variants[1].name
    scored = rows.with_columns(
        pl.col("team_clicks").list.eval((pl.element() == a).cast(pl.Int64)).list.sum().fill_null(0).alias("wa"),
        pl.col("team_clicks").list.eval((pl.element() == b).cast(pl.Int64)).list.sum().fill_null(0).alias("wb"),
    ).with_columns(pl.when(pl.col("wa") > pl.col("wb")).then(1).when(pl.col("wa") < pl.col("wb")).then(-1)
                   .otherwise(0).alias("outcome"))
    wins_a = int((scored["outcome"] == 1).sum())
    wins_b = int((scored["outcome"] == -1).sum())
    with_clicks = int((scored["clicks"] > 0).sum())
    per_user = scored.group_by("user_id").agg(pl.col("outcome").sum().alias("net"))
    pref_a = int((per_user["net"] > 0).sum())
    pref_b = int((per_user["net"] < 0).sum())
    n = pref_a + pref_b
    p = float(stats.binomtest(pref_a, n, 0.5).pvalue) if n > 0 else None
    share = wins_a / (wins_a + wins_b) if wins_a + wins_b else None
    decided = p is not None and p < alpha
    if decided:
        better = a if pref_a > pref_b else b
        verdict = (f"{better} is preferred: {max(pref_a, pref_b)} of {n} users with a preference "
                   f"(sign test p = {p:.2g} < {alpha})")
    else:
        verdict = (f"cannot decide yet: {pref_a} users prefer {a}, {pref_b} prefer {b}"
                   + (f" (sign test p = {p:.2g})" if p is not None else " (no clicks yet)"))
    return InterleavingResult((a, b), scored.height, with_clicks, {a: wins_a, b: wins_b},
                              scored.height - wins_a - wins_b, {a: pref_a, b: pref_b}, int(per_user.height - n),
                              share, p, decided, verdict)


def experiment_report(experiment: Experiment, lake: Lake, *, alpha: float = 0.05, seed: int = 42) -> ExperimentReport:
    """The report from the lake: impressions of the experiment, events citing their rec_ids."""
    impressions = lake.read("impressions")
    events = lake.read_events()
    return analyse(experiment, impressions, events, alpha=alpha, seed=seed)
