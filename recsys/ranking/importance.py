"""Append-only logs of feature importances and pruning decisions, beside the models.

    <artifacts>/models/importance_log.jsonl  one line per (run, fit, feature): gain, splits, gain share
    <artifacts>/models/pruning_log.jsonl     one line per training run: policy, numbers, decision, statuses

Why JSONL and not Parquet: both logs are appended to by every `train-ranker` run and never
rewritten; one `write` of whole lines to a file opened in append mode cannot lose earlier runs,
and `polars.read_ndjson` reads it as a table for analysis. A line cut short by a crash is skipped
on read, with a warning, instead of making the history unreadable.

Rows are keyed by `run_id` (one training run) and `model_version` (the model that run saved).
The `fit` column says which training produced the numbers: `full` (every feature the run
started with; its rows also carry the verdict: `low`, `tier`, `reasons`, and the held-out
t-statistic when that check is on) or `pruned-N` (attempt N, without some flagged features). The
row with `kept` true belongs to the model the run saved.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsys.ranking.model import models_dir

log = logging.getLogger(__name__)

IMPORTANCE_LOG = "importance_log.jsonl"
DECISION_LOG = "pruning_log.jsonl"


def importance_log_path(artifacts_dir: Path) -> Path:
    return models_dir(artifacts_dir) / IMPORTANCE_LOG


def decision_log_path(artifacts_dir: Path) -> Path:
    return models_dir(artifacts_dir) / DECISION_LOG


def append_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Append records as JSON lines in one write (O_APPEND: concurrent appends do not interleave lines)."""
    text = "".join(json.dumps(dict(r), sort_keys=True) + "\n" for r in records)
    if not text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size:
        with path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                text = "\n" + text  # a crash cut the last line short: never glue a record onto it
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete, valid line of a JSONL file (none when it does not exist)."""
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            log.warning("event=log_line_skipped path=%s line=%d reason=not_json", path, n)
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


@dataclass
class FeatureHistory:
    """Both logs of one artifacts directory, read once: what the policy and the report look at."""

    importances: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, artifacts_dir: Path) -> FeatureHistory:
        return cls(read_jsonl(importance_log_path(artifacts_dir)), read_jsonl(decision_log_path(artifacts_dir)))

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
