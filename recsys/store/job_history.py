"""Job history in the store: one JSON entry when a run starts and one when it ends.

Two entries rather than one update, because the store's lists are append-only (RPUSH + LTRIM): a run
whose process died keeps its start entry with no end, and `JobHistory.runs` reports it as "lost" once
no scheduler holds that job's lock any more. The history is shared by every scheduler on the store, so
`recsys jobs` and `GET /v1/admin/jobs` show the whole cluster.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from recsys.store.backend import KVBackend
from recsys.store.keys import Keys
from recsys.store.locks import LockStore

log = logging.getLogger(__name__)

RUNNING = "running"
OK = "ok"
FAILED = "failed"
ABANDONED = "abandoned"
LOST = "lost"


def host_id() -> str:
    """Which scheduler process ran a job: host name and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class JobRun:
    """One run of a job. `status` is running / ok / failed / abandoned / lost / `skipped: <why>`."""

    job: str
    run_id: str = field(default_factory=lambda: secrets.token_hex(6))
    start: float = field(default_factory=time.time)
    end: float | None = None
    status: str = RUNNING
    error: str | None = None
    version: str | None = None
    trigger: str = "manual"  # schedule | manual | drift
    reason: str | None = None  # why it was triggered (for trigger="drift")
    tick: str | None = None  # the scheduled fire time it belongs to (ISO, UTC)
    host: str = field(default_factory=host_id)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["duration_s"] = None if self.end is None else round(self.end - self.start, 3)
        return out


class JobHistory:
    """`{ns}:jobs`: start and end entries of every run, capped at `max_runs` runs."""

    def __init__(self, backend: KVBackend, keys: Keys, locks: LockStore, *, max_runs: int = 1000) -> None:
        self._backend = backend
        self._key = keys.jobs
        self._locks = locks
        self.max_runs = max_runs

    def _append(self, entry: dict[str, Any]) -> None:
        # Two entries per run, so the cap on entries is twice the cap on runs.
        self._backend.list_append(self._key, [json.dumps(entry, default=str).encode()], 2 * self.max_runs, None)

    def record_start(self, run: JobRun) -> None:
        self._append({"phase": "start", **asdict(run)})

    def record_end(self, run: JobRun) -> None:
        """Close a run (sets `end` now when unset). A run that never started is recorded whole."""
        if run.end is None:
            run.end = time.time()
        self._append({"phase": "end", **asdict(run)})
        log.info("event=job_recorded job=%s run_id=%s status=%r version=%s seconds=%.2f", run.job, run.run_id,
                 run.status, run.version, run.end - run.start)

    def runs(self, *, limit: int | None = 50, job: str | None = None) -> list[dict[str, Any]]:
        """Runs newest first, as JSON-ready dicts (for `recsys jobs` and GET /v1/admin/jobs).

        A run with a start entry and no end is "running" while its job's lock is held and it is that
        job's newest run; otherwise its process died without closing it and it is reported as "lost".
        """
        ordered = sorted(self._merged_entries().values(), key=lambda r: float(r.get("start") or 0.0), reverse=True)
        if job is not None:
            ordered = [r for r in ordered if r.get("job") == job]
        newest_per_job: dict[str, str] = {}
        for r in ordered:
            newest_per_job.setdefault(str(r.get("job")), str(r.get("run_id")))
        held: dict[str, bool] = {}
        for r in ordered:
            if r.get("status") == RUNNING and r.get("end") is None:
                name = str(r.get("job"))
                if name not in held:
                    held[name] = self._locks.holder(name) is not None
                if not held[name] or newest_per_job[name] != r.get("run_id"):
                    r["status"] = LOST
                    r["error"] = r.get("error") or "the run never recorded its end (process killed?)"
            end = r.get("end")
            r["duration_s"] = None if end is None else round(float(end) - float(r["start"]), 3)
        return ordered if limit is None else ordered[:limit]

    def _merged_entries(self) -> dict[str, dict[str, Any]]:
        """Start and end entries merged per run id; unreadable entries are skipped (and logged)."""
        runs: dict[str, dict[str, Any]] = {}
        for raw in self._backend.list_range(self._key):
            try:
                entry = json.loads(raw)
            except ValueError:
                log.warning("event=job_history_bad_entry bytes=%d", len(raw))
                continue
            if not isinstance(entry, dict):
                continue
            entry.pop("phase", None)
            runs.setdefault(str(entry.get("run_id")), {}).update(entry)
        return runs
