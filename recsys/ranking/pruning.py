"""Feature debt control: prune ranker features that do not earn their cost, without losing quality.

One pass per `recsys train-ranker` run (settings.pruning, env RECSYS_PRUNING__…):

1. Plan: every registered feature except those an earlier run pruned. A pruned feature stays out
   (computed neither for training nor online) until `retest_every` runs later, when it is computed
   and measured again, and pruned again if it still fails. A feature new to the registry is in.
2. Fit `full` on the planned features: the model kept when nothing is pruned.
3. A feature is *low* in this run when it is never split on or its gain share is below
   `threshold`, and, with `holdout_t` > 0, when its held-out contribution is not significant
   (below). It is *flagged* when it was low in each of its last `window_runs` measured runs; a
   low feature not (yet) flagged is a candidate.
4. Retrain without the flagged features and accept the smaller model when full − smaller
   validation nDCG@10 is at most `tolerance`. When it loses more, back off (at most four
   attempts): the firm ones (never split, below threshold) plus the half of the others with the
   weakest held-out evidence, then the firm ones, then the never-split ones. The first attempt
   within tolerance is kept; when none is, the full model is kept. Flagged features not pruned
   stay candidates. Every attempt is logged with its numbers.

Why a held-out check, and why it is off by default: gain is measured on the training rows and
rewards noise. On ml-100k a uniform-noise column earned 1.5% of the gain and a hash of the item
id 1.8%, above the 1% threshold and above several real features, so the threshold alone cannot
catch them. The held-out check asks what gain cannot: on the validation users (never trained on),
does the feature's contribution to the score (LightGBM's TreeSHAP, `pred_contrib`) rank each
user's held-out items above the user's other candidates? Per user the gap is mean contribution on
positives − on negatives; a feature is low when the t-statistic of the mean gap is below
`holdout_t`. Over 10 trainings (ml-100k and synthetic data) the noise column scored t = -0.9 to
2.4, the item-id hash 0.9 to 2.6 and the strong real features 5 to 15; it costs one TreeSHAP pass
over a sample of the validation rows (a few seconds), no extra fit. But weak real features score 1
to 3 as well, and ~190 validation users cannot tell them from noise: on ml-100k (DESIGN.md §6,
benchmarks/pruning.py) the check at t < 2 pruned 11 of 27 features and the session-holdout
nDCG@10 moved by -0.0037 (95% CI [-0.0098, +0.0018]), at t < 3 15 features and -0.0070 ([-0.0127,
-0.0011]), while validation nDCG@10 rose both times; the plain rule pruned 4 and moved it by
+0.0023. Hence opt-in. (Noise probes, random columns trained alongside as in Boruta, were tried
first: a probe is exchangeable with a noise feature, so with P probes a noise feature beats them
all 1 time in P + 1.)

Why "retrain" means *mask*: the smaller model is trained on the same columns with the pruned ones
masked (`feature_contri` = 0, never split on), then compacted to the kept columns (compact.py).
Dropping the columns instead changes which columns `feature_fraction` samples in every tree, and
that alone moved validation nDCG@10 on ml-100k by 0.004 for never-used columns and by 0.02 for a
17-feature refit: more than the tolerance, so accept/reject was a coin toss. With masking, a model
without never-used columns is the same model (drop exactly 0) and the comparison is paired.
The validation set stays small (20% of the users with a positive: ~190 on ml-100k), so a single
run's verdict on a weak feature is only as sure as that; `window_runs` > 1 asks for the same
verdict over several runs.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np

from recsys.artifacts import ArtifactRegistry, registry_for
from recsys.config import PruningConfig, Settings
from recsys.errors import ArtifactError
from recsys.ranking.compact import check_same_predictions, drop_unused_columns
from recsys.ranking.dataset import RankerData
from recsys.ranking.importance import FeatureHistory

log = logging.getLogger(__name__)


class FitFn(Protocol):
    """`train.fit_lambdamart`: a fit with early stopping on the validation users, and its nDCG@10."""

    def __call__(self, data: RankerData, seed: int, *,
                 params: dict[str, object] | None = None) -> tuple[lgb.Booster, float]: ...


ImportanceFn = Callable[[lgb.Booster], dict[str, dict[str, float]]]

ACTIVE, CANDIDATE, PRUNED = "active", "candidate", "pruned"

# Outcomes of one run.
ACCEPTED = "accepted"  # the smaller model is within tolerance and is the one saved
REJECTED = "rejected"  # the smaller model lost too much: the full model is saved
NOTHING_TO_PRUNE = "nothing_to_prune"
DRY_RUN = "dry_run"  # pruning.enabled = false: measured and logged, never pruned


@dataclass(frozen=True)
class FeaturePlan:
    """Which features one run computes and trains on."""

    features: list[str]
    retested: list[str]  # pruned earlier, measured again in this run
    pruned: list[str]  # pruned earlier and still out: not computed at all
    run_number: int  # 1 for the first run logged in this artifacts directory
    explicit: bool = False  # the caller named the features; earlier pruning is not applied


def plan_features(settings: Settings, registered: Sequence[str], explicit: Sequence[str] | None = None,
                  history: FeatureHistory | None = None) -> FeaturePlan:
    """Registered features minus those pruned earlier (except the ones due for a re-test)."""
    history = history if history is not None else FeatureHistory.load(registry_for(settings))
    run = history.runs + 1
    if explicit:
        return FeaturePlan(list(explicit), [], [], run, explicit=True)
    cfg = settings.pruning
    if not cfg.enabled:
        return FeaturePlan(list(registered), [], [], run)
    status, pruned_at = history.status(), history.pruned_at()
    stay_out, retest = [], []
    for name in registered:
        if status.get(name) != PRUNED:
            continue
        if cfg.retest_every and run - pruned_at.get(name, run) >= cfg.retest_every:
            retest.append(name)
        else:
            stay_out.append(name)
    features = [n for n in registered if n not in set(stay_out)]
    if not features:  # the registry shrank under the pruned set: measure everything again
        return FeaturePlan(list(registered), list(stay_out), [], run)
    return FeaturePlan(features, retest, stay_out, run)


def select_features(data: RankerData, names: Sequence[str]) -> RankerData:
    """The same rows with only `names` as columns (no feature is recomputed)."""
    idx = [data.feature_names.index(n) for n in names]
    return RankerData(data.features[:, idx], data.labels, data.groups, data.user_ids, list(names),
                      data.candidate_recall)


@dataclass(frozen=True)
class HoldoutStat:
    """A feature's held-out contribution: mean per-user gap (positives − negatives) and its t-statistic."""

    gap: float
    t: float
    users: int


# TreeSHAP costs ~trees x leaves x depth^2 per row (~0.5 ms a row for 70 trees of 31 leaves): the
# check looks at a seeded sample of validation users and, per user, every positive and a sample of
# the negatives (an unbiased estimate of the negatives' mean).
HOLDOUT_MAX_USERS = 500
HOLDOUT_NEGATIVES = 20


def holdout_contributions(booster: lgb.Booster, valid: RankerData, *, max_users: int = HOLDOUT_MAX_USERS,
                          negatives: int = HOLDOUT_NEGATIVES, seed: int = 0) -> dict[str, HoldoutStat]:
    """Per feature: does its TreeSHAP contribution rank the validation users' held-out items higher?

    Users with only positives or only negatives say nothing about ranking and are skipped. A
    feature the model never uses contributes exactly 0 everywhere: t = 0.
    """
    rng = np.random.default_rng(seed)
    bounds = np.concatenate([[0], np.cumsum(valid.groups)]).astype(np.int64)
    users = [g for g in range(len(valid.groups))
             if 0 < (valid.labels[bounds[g]:bounds[g + 1]] > 0).sum() < valid.groups[g]]
    if len(users) > max_users:
        users = sorted(rng.choice(users, size=max_users, replace=False).tolist())
    rows, owner, positive = [], [], []
    for k, g in enumerate(users):
        idx = np.arange(bounds[g], bounds[g + 1])
        pos = idx[valid.labels[idx] > 0]
        neg = idx[valid.labels[idx] <= 0]
        if neg.size > negatives:
            neg = np.sort(rng.choice(neg, size=negatives, replace=False))
        rows += [pos, neg]
        owner += [np.full(pos.size + neg.size, k)]
        positive += [np.ones(pos.size, dtype=bool), np.zeros(neg.size, dtype=bool)]
    if len(users) < 2:
        return {}
    take = np.concatenate(rows)
    phi = np.asarray(booster.predict(valid.features[take], num_iteration=booster.best_iteration,
                                     pred_contrib=True, num_threads=1))[:, : len(valid.feature_names)]
    who, is_pos = np.concatenate(owner), np.concatenate(positive)
    gaps = []
    for k in range(len(users)):
        mine = who == k
        block, y = phi[mine], is_pos[mine]
        gaps.append(block[y].mean(axis=0) - block[~y].mean(axis=0))
    if len(gaps) < 2:
        return {}
    d = np.asarray(gaps)
    mean, sd = d.mean(axis=0), d.std(axis=0, ddof=1)
    se = sd / np.sqrt(d.shape[0])
    t = np.divide(mean, se, out=np.zeros_like(mean), where=se > 1e-12)
    return {name: HoldoutStat(float(mean[j]), float(t[j]), d.shape[0]) for j, name in enumerate(valid.feature_names)}


@dataclass
class FitRecord:
    """One LightGBM fit of a run and what it measured."""

    importances: dict[str, dict[str, float]]
    valid_ndcg: float
    best_iteration: int
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {"valid_ndcg": self.valid_ndcg, "best_iteration": self.best_iteration,
                "seconds": round(self.seconds, 3), "features": len(self.importances)}


# How firm the evidence against a low feature is, firmest first (the back-off order of the attempts).
NEVER_SPLIT, BELOW_THRESHOLD, NOT_SIGNIFICANT = "never_split", "below_threshold", "holdout_not_significant"
TIERS = (NEVER_SPLIT, BELOW_THRESHOLD, NOT_SIGNIFICANT)


@dataclass
class FeatureVerdict:
    """One feature in one run: its numbers and why it is low (no reasons: it earned its place)."""

    gain: float
    split: int
    gain_share: float
    holdout: HoldoutStat | None
    reasons: list[str]
    tier: str | None  # the firmest rule it fails (TIERS), None when it fails none
    low_runs: int  # consecutive measured runs, this one included, in which it was low
    flagged: bool = False

    @property
    def low(self) -> bool:
        return self.tier is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"gain": self.gain, "split": self.split, "gain_share": self.gain_share,
                               "reasons": self.reasons, "tier": self.tier, "low_runs": self.low_runs}
        if self.holdout is not None:
            out.update(holdout_gap=self.holdout.gap, holdout_t=self.holdout.t, holdout_users=self.holdout.users)
        return out


def judge(full: dict[str, dict[str, float]], holdout: dict[str, HoldoutStat], cfg: PruningConfig,
          history: FeatureHistory) -> dict[str, FeatureVerdict]:
    """Per-feature verdicts of this run (`holdout` empty: the held-out check is off or had no users)."""
    verdicts: dict[str, FeatureVerdict] = {}
    for name, imp in full.items():
        share, split = float(imp["gain_share"]), int(imp["split"])
        stat = holdout.get(name)
        reasons: list[str] = []
        tiers: list[str] = []
        if split == 0:
            reasons.append("never split on")
            tiers.append(NEVER_SPLIT)
        elif share < cfg.threshold:
            reasons.append(f"gain share {share:.4f} < threshold {cfg.threshold:g}")
            tiers.append(BELOW_THRESHOLD)
        if split > 0 and cfg.holdout_t > 0 and stat is not None and stat.t < cfg.holdout_t:
            reasons.append(f"held-out contribution not significant: t {stat.t:.2f} < {cfg.holdout_t:g} "
                           f"({stat.users} validation users)")
            tiers.append(NOT_SIGNIFICANT)
        prior = 0
        for row in reversed(history.measured(name)):
            if not row.get("low"):
                break
            prior += 1
        low_runs = prior + 1 if reasons else 0
        verdicts[name] = FeatureVerdict(float(imp["gain"]), split, share, stat, reasons,
                                        tiers[0] if tiers else None, low_runs, flagged=low_runs >= cfg.window_runs)
    return verdicts


@dataclass
class Attempt:
    """One retraining without a set of flagged features."""

    number: int  # 1 = widest
    label: str  # which flagged features it removes
    removed: list[str]
    fit: FitRecord
    drop: float  # full − this validation nDCG@10 (positive: the smaller model is worse)
    accepted: bool

    @property
    def key(self) -> str:
        """Its `fit` name in the importance log."""
        return f"pruned-{self.number}"

    def note(self, tolerance: float) -> str:
        """One clause of the run's reason."""
        return (f"without {len(self.removed)} ({self.label}): {self.fit.valid_ndcg:.4f}, drop {self.drop:+.4f} "
                f"{'<=' if self.accepted else '>'} {tolerance:g}")

    def to_dict(self) -> dict[str, Any]:
        return {"fit": self.key, "label": self.label, "removed": self.removed, "valid_ndcg": self.fit.valid_ndcg,
                "drop": self.drop, "accepted": self.accepted, "best_iteration": self.fit.best_iteration,
                "seconds": round(self.fit.seconds, 3)}


@dataclass
class PruningOutcome:
    """What one run decided, the model it keeps, and every number behind the decision."""

    run_id: str
    plan: FeaturePlan
    policy: PruningConfig
    booster: lgb.Booster
    valid_ndcg: float  # of the kept model
    data: RankerData  # training data of the kept model (its columns are the served features)
    outcome: str
    reason: str
    verdicts: dict[str, FeatureVerdict]
    flagged: list[str]
    kept_back: list[str]
    fits: dict[str, FitRecord]  # "full"
    attempts: list[Attempt]
    status: dict[str, str]
    pruned_at: dict[str, int]
    started_at: float = field(default_factory=time.time)

    @property
    def full_valid_ndcg(self) -> float:
        return self.fits["full"].valid_ndcg

    @property
    def accepted(self) -> Attempt | None:
        return next((a for a in self.attempts if a.accepted), None)

    @property
    def pruned(self) -> list[str]:
        """Features this run removed (empty unless an attempt was accepted)."""
        return list(self.accepted.removed) if self.accepted else []

    @property
    def kept_fit(self) -> str:
        return self.accepted.key if self.accepted else "full"

    @property
    def features(self) -> list[str]:
        return list(self.data.feature_names)

    def summary(self) -> dict[str, Any]:
        """The manifest's `pruning` block (also the body of the decision log line)."""
        return {
            "run_id": self.run_id, "run_number": self.plan.run_number, "outcome": self.outcome,
            "reason": self.reason, "policy": self.policy.model_dump(),
            "features_in": list(self.plan.features), "features_out": self.features, "pruned": self.pruned,
            "retested": list(self.plan.retested), "carried_pruned": list(self.plan.pruned),
            "flagged": {n: self.verdicts[n].to_dict() for n in self.flagged},
            "candidates": {n: v.to_dict() for n, v in self.verdicts.items() if v.low and n not in self.pruned},
            "kept_back": list(self.kept_back),
            "full_valid_ndcg": self.full_valid_ndcg, "valid_ndcg": self.valid_ndcg,
            "tolerance": self.policy.tolerance,
            "fits": {name: f.summary() for name, f in self.fits.items()},
            "attempts": [a.to_dict() for a in self.attempts],
        }

    def decision_record(self, model_version: str) -> dict[str, Any]:
        return {"ts": self.started_at, "model_version": model_version, **self.summary(),
                "status": dict(self.status), "pruned_at": dict(self.pruned_at)}

    def importance_records(self, model_version: str) -> list[dict[str, Any]]:
        fits = [*self.fits.items(), *((a.key, a.fit) for a in self.attempts)]
        rows = []
        for fit_name, fit in fits:
            for feature, imp in fit.importances.items():
                row: dict[str, Any] = {
                    "run_id": self.run_id, "model_version": model_version, "ts": self.started_at,
                    "fit": fit_name, "feature": feature, "gain": float(imp["gain"]), "split": int(imp["split"]),
                    "gain_share": float(imp["gain_share"]), "valid_ndcg": fit.valid_ndcg,
                    "kept": fit_name == self.kept_fit,
                }
                if fit_name == "full" and feature in self.verdicts:
                    v = self.verdicts[feature]
                    row.update(low=v.low, tier=v.tier, reasons=v.reasons)
                    if v.holdout is not None:
                        row.update(holdout_gap=v.holdout.gap, holdout_t=v.holdout.t)
                rows.append(row)
        return rows


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


@dataclass(frozen=True)
class _Fitter:
    """How one run fits and measures models on its `data`; `validation` marks the users `fit` validates on."""

    fit: FitFn
    measure: ImportanceFn
    data: RankerData
    seed: int
    validation: np.ndarray

    def full(self) -> tuple[lgb.Booster, FitRecord]:
        """Every planned feature: the model kept when nothing is pruned."""
        return self._fit(None)

    def without(self, removed: Sequence[str]) -> tuple[lgb.Booster, FitRecord]:
        """The full data with `removed` masked (never split on): same column sampling as the full fit.

        The record lists the kept features only; the booster still has every column (see compact.py).
        """
        drop = set(removed)
        booster, record = self._fit({"feature_contri": [0.0 if n in drop else 1.0 for n in self.data.feature_names]})
        record.importances = {n: v for n, v in record.importances.items() if n not in drop}
        return booster, record

    def compact(self, booster: lgb.Booster, keep: list[str]) -> tuple[lgb.Booster, float | None]:
        """The masked model without its masked columns; if that fails, a refit on the kept columns.

        Returns the booster and, for a refit, its own validation nDCG@10 (None: the model is unchanged).
        """
        try:
            compact = drop_unused_columns(booster, keep)
            check_same_predictions(booster, compact, self.data.take_users(self.validation).features,
                                   self.data.feature_names, keep)
            return compact, None
        except ArtifactError as exc:
            log.warning("event=pruning_compact_failed error=%r action=refit_without_columns", str(exc))
            refit, ndcg = self.fit(select_features(self.data, keep), self.seed)
            return refit, ndcg

    def _fit(self, params: dict[str, object] | None) -> tuple[lgb.Booster, FitRecord]:
        start = time.perf_counter()
        booster, ndcg = self.fit(self.data, self.seed, params=params)
        return booster, FitRecord(self.measure(booster), ndcg, int(booster.best_iteration),
                                  time.perf_counter() - start)


@dataclass
class _Decision:
    """What a run keeps and why: outcome, reason, the kept model, its validation nDCG@10 and its data."""

    outcome: str
    reason: str
    booster: lgb.Booster
    valid_ndcg: float
    data: RankerData
    attempts: list[Attempt] = field(default_factory=list)


def _attempt_sets(flagged: list[str], verdicts: dict[str, FeatureVerdict]) -> list[tuple[str, list[str]]]:
    """(label, features to remove), widest first, at most four; empty and repeated sets are skipped.

    1. every flagged feature; 2. the firm ones (never split, below threshold) plus the half of the
    held-out-only ones with the lowest t; 3. the firm ones; 4. the never-split ones.
    """
    def t(name: str) -> float:
        stat = verdicts[name].holdout
        return stat.t if stat is not None else 0.0

    never = [n for n in flagged if verdicts[n].tier == NEVER_SPLIT]
    firm = [n for n in flagged if verdicts[n].tier in (NEVER_SPLIT, BELOW_THRESHOLD)]
    soft = sorted((n for n in flagged if verdicts[n].tier == NOT_SIGNIFICANT), key=lambda n: (t(n), n))
    candidates = [("all flagged", flagged),
                  (f"firm + {len(soft) // 2} lowest held-out t", firm + soft[: len(soft) // 2]),
                  ("never split or below threshold", firm), ("never split", never)]
    out: list[tuple[str, list[str]]] = []
    seen: set[frozenset[str]] = set()
    for label, names in candidates:
        key = frozenset(names)
        if names and key not in seen:
            seen.add(key)
            out.append((label, [n for n in flagged if n in key]))
    return out


def train_with_pruning(settings: Settings, data: RankerData, plan: FeaturePlan, *, fit: FitFn,
                       measure: ImportanceFn, validation_users: Callable[[RankerData], np.ndarray],
                       registered: Sequence[str] | None = None,
                       history: FeatureHistory | None = None) -> PruningOutcome:
    """Fit full, judge every feature, retrain without the flagged ones, accept within tolerance.

    `validation_users(data)` is the boolean mask of the users `fit` validates on (the held-out check
    looks only at them). Writes nothing: `record_run` appends the outcome to the logs once the kept
    model has a version.
    """
    cfg = settings.pruning
    history = history if history is not None else FeatureHistory.load(registry_for(settings))
    run_id = new_run_id()
    fitter = _Fitter(fit, measure, data, settings.seed, validation_users(data))
    full_booster, full = fitter.full()
    verdicts = _measure(fitter, full_booster, full, cfg, history)
    flagged, kept_back = _choose(data, verdicts, cfg)
    decision = _decide(fitter, full_booster, full, flagged, kept_back, verdicts, cfg)
    status, pruned_at = _statuses(plan, verdicts, decision.attempts, history, registered)
    result = PruningOutcome(run_id, plan, cfg.model_copy(), decision.booster, decision.valid_ndcg, decision.data,
                            decision.outcome, decision.reason, verdicts, flagged, kept_back, {"full": full},
                            decision.attempts, status, pruned_at)
    log.info("event=feature_pruning run_id=%s run=%d outcome=%s features_in=%d features_out=%d pruned=%s "
             "flagged=%s full_ndcg=%.4f kept_ndcg=%.4f reason=%r", run_id, plan.run_number, result.outcome,
             len(data.feature_names), len(result.features), ",".join(result.pruned) or "-",
             ",".join(flagged) or "-", full.valid_ndcg, result.valid_ndcg, result.reason)
    return result


def _measure(fitter: _Fitter, full_booster: lgb.Booster, full: FitRecord, cfg: PruningConfig,
             history: FeatureHistory) -> dict[str, FeatureVerdict]:
    """Every feature's verdict on the full fit; the held-out check (TreeSHAP) only when it is on."""
    holdout: dict[str, HoldoutStat] = {}
    if cfg.holdout_t > 0:
        holdout = holdout_contributions(full_booster, fitter.data.take_users(fitter.validation), seed=fitter.seed)
    return judge(full.importances, holdout, cfg, history)


def _choose(data: RankerData, verdicts: dict[str, FeatureVerdict], cfg: PruningConfig
            ) -> tuple[list[str], list[str]]:
    """The flagged features in column order, and those kept back: the strongest flagged ones are
    un-flagged until at least `min_features` remain."""
    flagged = [n for n in data.feature_names if verdicts[n].flagged]
    need = cfg.min_features - (len(data.feature_names) - len(flagged))
    if need <= 0:
        return flagged, []
    back = sorted(flagged, key=lambda n: (-verdicts[n].gain, n))[:need]
    return [n for n in flagged if n not in back], back


def _decide(fitter: _Fitter, full_booster: lgb.Booster, full: FitRecord, flagged: list[str], kept_back: list[str],
            verdicts: dict[str, FeatureVerdict], cfg: PruningConfig) -> _Decision:
    """Keep the full model unless pruning is on, something is flagged and a masked retrain is within tolerance."""
    if not cfg.enabled:
        return _Decision(DRY_RUN, f"pruning disabled (dry run): {len(flagged)} feature(s) would be tried",
                         full_booster, full.valid_ndcg, fitter.data)
    if not flagged:
        reason = f"no feature was low in each of its last {cfg.window_runs} measured run(s)"
        if kept_back:
            reason += f"; {', '.join(kept_back)} kept back by min_features={cfg.min_features}"
        return _Decision(NOTHING_TO_PRUNE, reason, full_booster, full.valid_ndcg, fitter.data)
    return _retrain_masked(fitter, full_booster, full, flagged, verdicts, cfg)


def _retrain_masked(fitter: _Fitter, full_booster: lgb.Booster, full: FitRecord, flagged: list[str],
                    verdicts: dict[str, FeatureVerdict], cfg: PruningConfig) -> _Decision:
    """Try the attempt sets widest first; keep the first one within tolerance, compacted to its columns."""
    data = fitter.data
    attempts: list[Attempt] = []

    def reason(verdict: str) -> str:
        return (f"valid nDCG@10 {full.valid_ndcg:.4f} with all {len(data.feature_names)}; "
                + "; ".join(a.note(cfg.tolerance) for a in attempts) + f": {verdict}")

    for label, removed in _attempt_sets(flagged, verdicts):
        masked, record = fitter.without(removed)
        drop = full.valid_ndcg - record.valid_ndcg
        attempts.append(Attempt(len(attempts) + 1, label, removed, record, drop, drop <= cfg.tolerance + 1e-12))
        if attempts[-1].accepted:
            keep = [n for n in data.feature_names if n not in set(removed)]
            booster, refit_ndcg = fitter.compact(masked, keep)
            return _Decision(ACCEPTED, reason(f"kept {len(keep)} of {len(data.feature_names)} features"), booster,
                             record.valid_ndcg if refit_ndcg is None else refit_ndcg, select_features(data, keep),
                             attempts)
    return _Decision(REJECTED, reason("every attempt lost more than the tolerance, features kept"), full_booster,
                     full.valid_ndcg, data, attempts)


def _statuses(plan: FeaturePlan, verdicts: dict[str, FeatureVerdict], attempts: list[Attempt],
              history: FeatureHistory, registered: Sequence[str] | None) -> tuple[dict[str, str], dict[str, int]]:
    """Status of every feature after this run, and the run in which each pruned one was pruned."""
    status = history.status()
    pruned_at = {n: r for n, r in history.pruned_at().items() if status.get(n) == PRUNED}
    removed = next((set(a.removed) for a in attempts if a.accepted), set())
    for name in plan.pruned:
        status[name] = PRUNED
    for name, v in verdicts.items():
        if name in removed:
            status[name], pruned_at[name] = PRUNED, plan.run_number
        else:
            status[name] = CANDIDATE if v.low else ACTIVE
            pruned_at.pop(name, None)
    if registered is not None:
        keep = set(registered)
        status = {n: s for n, s in status.items() if n in keep}
        pruned_at = {n: r for n, r in pruned_at.items() if n in keep}
    return status, pruned_at


def record_run(registry: ArtifactRegistry, outcome: PruningOutcome, model_version: str) -> None:
    """Append the run's importances and its decision to the logs beside the models."""
    FeatureHistory.record(registry, outcome.importance_records(model_version), outcome.decision_record(model_version))
