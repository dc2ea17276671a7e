"""`recsys features report`: every registered feature with its gain, splits, trend and status.

Reads the registry, the CURRENT model's manifest and the importance / decision logs of one
artifacts directory; writes nothing. Status, as the last training run left it:

- active: trained on and earning its place;
- candidate: trained on but low in the last run (not yet low for `window_runs` runs, or its
  removal cost more than the tolerance);
- pruned: left out of training and of the online path;
- new: registered but never measured (no run since it was added, or no run at all).

`served` says whether the CURRENT model uses it; it can differ from the status when the last run's
model was not promoted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from recsys.artifacts import ArtifactRegistry
from recsys.errors import ArtifactError
from recsys.features import REGISTRY, FeatureRegistry
from recsys.ranking.importance import FeatureHistory

NEW = "new"
STATUSES = ("active", "candidate", "pruned", NEW)


@dataclass
class FeatureRow:
    name: str
    group: str
    description: str
    status: str
    served: bool
    gain_share: float | None = None  # in the last run that measured it (its full fit)
    gain: float | None = None
    split: int | None = None
    holdout_t: float | None = None
    trend: list[float | None] = field(default_factory=list)  # gain share per recent run, oldest first
    reasons: list[str] = field(default_factory=list)
    measured_in: str | None = None  # run id of the last measurement


@dataclass
class RunSummary:
    run_id: str
    run_number: int
    model_version: str | None
    outcome: str
    features_in: int
    features_out: int
    full_valid_ndcg: float | None
    valid_ndcg: float | None
    pruned: list[str]
    reason: str


@dataclass
class FeatureReport:
    artifacts_dir: str
    model_version: str | None
    model_features: list[str]
    rows: list[FeatureRow]
    runs: list[RunSummary]
    policy: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)

    @property
    def has_model(self) -> bool:
        return self.model_version is not None

    def counts(self) -> dict[str, int]:
        out = {"registered": len(self.rows), "served": sum(r.served for r in self.rows)}
        out.update({s: sum(r.status == s for r in self.rows) for s in STATUSES})
        return out

    def to_json_dict(self) -> dict[str, Any]:
        return {"artifacts_dir": self.artifacts_dir, "model_version": self.model_version,
                "model_features": self.model_features, "counts": self.counts(), "policy": self.policy,
                "features": [asdict(r) for r in self.rows], "runs": [asdict(r) for r in self.runs],
                "notes": self.notes}


def _manifest(artifacts: ArtifactRegistry, version: str | None) -> dict[str, Any]:
    if version is None:
        return {}
    try:
        return artifacts.model_manifest(version).model_dump()
    except ArtifactError:
        return {}


def _runs(history: FeatureHistory) -> list[RunSummary]:
    out = []
    for i, d in enumerate(history.decisions, start=1):
        out.append(RunSummary(
            run_id=str(d.get("run_id")), run_number=int(d.get("run_number", i)), model_version=d.get("model_version"),
            outcome=str(d.get("outcome")), features_in=len(d.get("features_in", [])),
            features_out=len(d.get("features_out", [])), full_valid_ndcg=d.get("full_valid_ndcg"),
            valid_ndcg=d.get("valid_ndcg"), pruned=list(d.get("pruned", [])), reason=str(d.get("reason", ""))))
    return out


def build_feature_report(artifacts: ArtifactRegistry, registry: FeatureRegistry | None = None, *,
                         trend_runs: int = 5) -> FeatureReport:
    """The report of one artifact registry; a fresh one gives every feature as `new`."""
    registry = registry if registry is not None else REGISTRY
    history = FeatureHistory.load(artifacts)
    version = artifacts.current_model()
    manifest = _manifest(artifacts, version)
    model_features = [str(f) for f in manifest.get("features", [])]
    status = history.status()
    recent = history.run_ids(trend_runs)
    full_rows: dict[tuple[str, str], dict[str, Any]] = {
        (str(r.get("run_id")), str(r.get("feature"))): r for r in history.importances if r.get("fit") == "full"}
    notes: list[str] = []
    if version is None:
        notes.append(f"no ranker model yet in {artifacts.model_location()}: run `recsys train-ranker --data PATH` "
                     "to train one; until then no feature has been measured")
    elif not manifest:
        notes.append(f"the current model {version} has no readable manifest")
    if version is not None and not history.decisions:
        notes.append("no importance log yet (model trained before feature pruning existed): numbers come from "
                     "the current model's manifest")
    manifest_imp = manifest.get("importances", {}) if not history.decisions else {}

    rows: list[FeatureRow] = []
    for feature in registry:
        name = feature.name
        row = FeatureRow(name, feature.group, feature.description, status.get(name, NEW), name in model_features)
        measured = history.measured(name)
        if measured:
            last = measured[-1]
            row.gain_share, row.gain, row.split = last.get("gain_share"), last.get("gain"), last.get("split")
            row.holdout_t, row.reasons = last.get("holdout_t"), list(last.get("reasons", []))
            row.measured_in = last.get("run_id")
        elif name in manifest_imp:
            imp = manifest_imp[name]
            row.gain_share, row.gain, row.split = imp.get("gain_share"), imp.get("gain"), imp.get("split")
            if row.served:
                row.status = "active"
        row.trend = [full_rows[(rid, name)].get("gain_share") if (rid, name) in full_rows else None
                     for rid in recent]
        if not row.trend and row.gain_share is not None:
            row.trend = [row.gain_share]
        rows.append(row)
    order = {s: i for i, s in enumerate(STATUSES)}
    rows.sort(key=lambda r: (order.get(r.status, 9), -(r.gain_share or 0.0), r.name))
    stale = sorted(set(status) - set(registry.names))
    if stale:
        notes.append(f"{len(stale)} feature(s) in the log are no longer registered: {', '.join(stale)}")
    decision = history.last_decision
    return FeatureReport(artifacts.model_location(), version, model_features, rows, _runs(history),
                         decision.get("policy") if decision else None, notes)


def sparkline(values: Iterable[float | None]) -> str:
    """▁..█ per value scaled to the row's own maximum; · where the feature was not measured."""
    vals = list(values)
    top = max((v for v in vals if v is not None), default=0.0)
    ticks = "▁▂▃▄▅▆▇█"
    return "".join("·" if v is None else ticks[min(int(v / top * 7.999), 7)] if top > 0 else ticks[0]
                   for v in vals)
