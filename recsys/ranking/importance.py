"""Append-only logs of feature importances and pruning decisions, kept by the artifact registry.

    importance_log   one record per (run, fit, feature): gain, splits, gain share
    pruning_log      one record per training run: policy, numbers, decision, statuses

Why append-only JSON lines and not Parquet: both logs are appended to by every `train-ranker` run
and never rewritten, so an append cannot lose earlier runs (on files, `models/*.jsonl`, which
`polars.read_ndjson` reads as a table). A line cut short by a crash is skipped on read, with a
warning, instead of making the history unreadable.

Rows are keyed by `run_id` (one training run) and `model_version` (the model that run saved).
The `fit` column says which training produced the numbers: `full` (every feature the run
started with; its rows also carry the verdict: `low`, `tier`, `reasons`, and the held-out
t-statistic when that check is on) or `pruned-N` (attempt N, without some flagged features). The
row with `kept` true belongs to the model the run saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recsys.artifacts import ArtifactRegistry

IMPORTANCE_LOG = "importance_log"
DECISION_LOG = "pruning_log"


@dataclass
class FeatureHistory:
    """Both logs of one artifacts directory, read once: what the policy and the report look at."""

    importances: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, registry: ArtifactRegistry) -> FeatureHistory:
        return cls(registry.read_records(IMPORTANCE_LOG), registry.read_records(DECISION_LOG))

    @staticmethod
    def record(registry: ArtifactRegistry, importances: list[dict[str, Any]], decision: dict[str, Any]) -> None:
        """Append one training run: its importance rows, then its decision (the run counts once decided)."""
        registry.append_records(IMPORTANCE_LOG, importances)
        registry.append_records(DECISION_LOG, [decision])

    @property
    def runs(self) -> int:
        """Training runs recorded so far."""
        return len(self.decisions)

    @property
    def last_decision(self) -> dict[str, Any] | None:
        return self.decisions[-1] if self.decisions else None

    def status(self) -> dict[str, str]:
        """Feature -> active | candidate | pruned, as the last run left it."""
        last = self.last_decision
        return dict(last.get("status", {})) if last else {}

    def pruned_at(self) -> dict[str, int]:
        """Pruned feature -> run number in which it was pruned (for re-testing)."""
        last = self.last_decision
        return {k: int(v) for k, v in last.get("pruned_at", {}).items()} if last else {}

    def measured(self, feature: str, fit: str = "full") -> list[dict[str, Any]]:
        """The feature's rows of one fit kind, oldest run first."""
        return [r for r in self.importances if r.get("feature") == feature and r.get("fit") == fit]

    def run_ids(self, last: int | None = None) -> list[str]:
        """Run ids in order, optionally only the most recent `last`."""
        ids = [str(d["run_id"]) for d in self.decisions if "run_id" in d]
        return ids if last is None else ids[-last:]
