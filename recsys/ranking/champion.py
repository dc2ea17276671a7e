"""Champion/challenger: a new ranker replaces the serving one only if it ranks better on the same users.

Promotion used to compare the new run's validation nDCG@10 with the number in the serving model's
manifest, measured on another data set: a ranker trained on a real CSV (0.233) lost to the synthetic
demo model (0.305 on synthetic data), and one trained on a random toy file (0.302: 40 items, easy
lists) replaced the real MovieLens ranker. Scores from different data do not compare.

Here both models score the new run's validation groups (its held-out users, their candidates and
labels), with the same code (`group_ndcg`): the serving model (champion) on the feature columns it
needs, the new one (challenger) on its own. The per-group paired difference, with a bootstrap
interval, decides:

- no champion: the challenger is the first model;
- a champion that cannot be scored (corrupt, needs features this build does not define, fails to
  predict) loses by default, and the reason is recorded;
- fewer than `min_groups` validation groups: too little evidence to replace a model, kept;
- otherwise promote when mean(challenger − champion) >= −`tolerance` (a retrain on the same data,
  or a pruned model within the pruning tolerance, is not blocked by noise).

`--force` promotes anyway and is recorded. The comparison goes into the manifest, the promotion
record, the job history and the command's output.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from recsys.artifacts import ArtifactRegistry
from recsys.bootstrap import paired_difference
from recsys.errors import RecsysError
from recsys.ranking.dataset import RankerData
from recsys.ranking.model import RankerModel

log = logging.getLogger(__name__)

K = 10
PROMOTE, KEEP = "promote", "keep_champion"


def group_ndcg(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, k: int = K) -> np.ndarray:
    """nDCG@k per group (binary gains; ties keep candidate order), the one scorer of both models."""
    out = np.zeros(len(groups), dtype=np.float64)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    start = 0
    for g, n in enumerate(np.asarray(groups, dtype=np.int64)):
        s, y = scores[start:start + n], labels[start:start + n] > 0
        start += n
        ideal = min(int(y.sum()), k)
        if ideal == 0:
            continue
        top = np.argsort(-s, kind="stable")[:k]
        out[g] = float(discounts[:top.size][y[top]].sum() / discounts[:ideal].sum())
    return out


@dataclass
class Comparison:
    """The champion/challenger decision and every number behind it."""

    decision: str  # PROMOTE or KEEP
    reason: str
    champion: str | None
    groups: int = 0
    challenger_ndcg: float | None = None
    champion_ndcg: float | None = None
    difference: float | None = None  # mean over groups of challenger − champion
    difference_ci95: tuple[float, float] | None = None
    champion_error: str | None = None
    tolerance: float = 0.0
    min_groups: int = 0
    forced: bool = False
    champion_features_missing: list[str] = field(default_factory=list)

    @property
    def promote(self) -> bool:
        return self.decision == PROMOTE

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["difference_ci95"] = list(self.difference_ci95) if self.difference_ci95 else None
        return out

    def summary(self) -> str:
        """One line for the command's output."""
        if self.champion_ndcg is None or self.challenger_ndcg is None:
            return self.reason
        low, high = self.difference_ci95 or (float("nan"), float("nan"))
        return (f"{self.reason} (same {self.groups} validation groups: new {self.challenger_ndcg:.4f} vs serving "
                f"{self.champion} {self.champion_ndcg:.4f}, difference {self.difference:+.4f} "
                f"[{low:+.4f}, {high:+.4f}])")


def load_champion(registry: ArtifactRegistry) -> tuple[str | None, RankerModel | None, str | None]:
    """(serving version, its model or None, why it cannot be scored)."""
    version = registry.current_model()
    if version is None:
        return None, None, None
    try:
        return version, RankerModel.load(registry, version), None
    except (RecsysError, OSError) as exc:
        return version, None, str(exc)


def compare(challenger: Callable[[np.ndarray], np.ndarray], challenger_features: list[str],
            champion_version: str | None, champion: RankerModel | None, champion_error: str | None,
            valid: RankerData, *, tolerance: float, min_groups: int, seed: int, force: bool) -> Comparison:
    """Score both models on `valid` (the new run's validation groups, every column either model needs)."""
    out = Comparison(PROMOTE, "first model", champion_version, tolerance=tolerance, min_groups=min_groups,
                     forced=force)
    if champion_version is None:
        return out
    if champion is None:
        return _by_default(out, f"serving model {champion_version} cannot be scored: {champion_error}",
                           error=champion_error)
    missing = [f for f in champion.feature_names if f not in valid.feature_names]
    if missing:
        out.champion_features_missing = missing
        return _by_default(out, f"serving model {champion_version} needs features this run could not compute: "
                           f"{missing}", error="missing features")
    ours = group_ndcg(challenger(_columns(valid, challenger_features)), valid.labels, valid.groups)
    try:
        theirs = group_ndcg(champion.predict(_columns(valid, champion.feature_names)), valid.labels, valid.groups)
    except Exception as exc:  # a model that cannot predict cannot defend its place
        return _by_default(out, f"serving model {champion_version} failed to predict: {exc}", error=str(exc))
    diff = paired_difference(ours, theirs, seed=seed)
    out.groups, out.challenger_ndcg, out.champion_ndcg = int(ours.size), float(ours.mean()), float(theirs.mean())
    out.difference, out.difference_ci95 = diff.mean, (diff.low, diff.high)
    if force:
        out.reason = "forced (--force)"
    elif ours.size < min_groups:
        out.decision, out.reason = KEEP, (f"not promoted: only {ours.size} validation groups (< {min_groups}, "
                                          "RECSYS_RANKER__PROMOTION_MIN_GROUPS): too few to replace the serving "
                                          "model")
    elif diff.mean >= -tolerance:
        out.reason = f"promoted: nDCG@10 difference {diff.mean:+.4f} >= -{tolerance:g} on the same validation groups"
    else:
        out.decision, out.reason = KEEP, (f"not promoted: nDCG@10 difference {diff.mean:+.4f} < -{tolerance:g} "
                                          "on the same validation groups")
    return out


def _by_default(out: Comparison, reason: str, *, error: str | None) -> Comparison:
    log.warning("event=champion_unscorable model_version=%s reason=%r", out.champion, reason)
    out.reason, out.champion_error = f"promoted by default: {reason}", error
    return out


def _columns(data: RankerData, names: list[str]) -> np.ndarray:
    idx = [data.feature_names.index(n) for n in names]
    return data.features[:, idx]


def champion_extra_features(champion: RankerModel | None, planned: list[str], registered: list[str]) -> list[str]:
    """Features the champion needs beyond this run's plan (pruned by the run) that this build can compute."""
    if champion is None:
        return []
    return [f for f in champion.feature_names if f not in planned and f in registered]

