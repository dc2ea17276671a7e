"""Job and drift health derived from the shared job history (`Store.jobs.runs`).

Why from the history and not from counters kept by the jobs: the jobs run in scheduler processes that
serve no HTTP, possibly on other machines, while `/metrics` is scraped from the API. The history in the
store is already shared by every scheduler, so any API replica derives the same cluster-wide figures at
scrape time, with no push gateway and nothing lost when a scheduler restarts. The price: the history
is capped (`scheduler.history_max_runs`), so run counts are over that window and are gauges, not
monotonic counters; alert on the timestamps and on `consecutive_failures` instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from recsys.store.job_history import FAILED, LOST, OK, RUNNING

# Statuses that count as a failure of the job (abandoned = stopped cleanly at shutdown: not a failure).
FAILURES = (FAILED, LOST)


def status_class(status: str) -> str:
    """'skipped: already running (…)' → 'skipped'; other statuses unchanged."""
    return status.split(":", 1)[0].strip() or "unknown"


@dataclass
class JobSummary:
    job: str
    runs: dict[str, int] = field(default_factory=dict)  # by status class, over the retained history
    running: bool = False
    last_duration_s: float | None = None  # newest finished run that did work (not skipped)
    last_success_ts: float | None = None  # end of the newest ok run
    last_failure_ts: float | None = None  # end (start when lost) of the newest failed or lost run
    consecutive_failures: int = 0  # failed or lost runs since the newest ok run


@dataclass
class DriftSummary:
    last_check_ts: float | None = None  # end of the newest drift run that completed (any verdict)
    last_status: str | None = None  # its verdict: drift / no_drift / insufficient_data / no_model
    share: float | None = None  # drifted share of the newest run that reached a verdict
    share_model_version: str | None = None
    share_checked_ts: float | None = None
    detected: bool = False  # that verdict was "drift"


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def summarise_jobs(runs: Iterable[Mapping[str, Any]]) -> dict[str, JobSummary]:
    """Per job, from runs ordered newest first (as `Store.jobs.runs` returns them)."""
    out: dict[str, JobSummary] = {}
    seen_ok: set[str] = set()
    for run in runs:
        name = str(run.get("job"))
        summary = out.setdefault(name, JobSummary(name))
        status = str(run.get("status"))
        cls = status_class(status)
        summary.runs[cls] = summary.runs.get(cls, 0) + 1
        end, start = _float(run.get("end")), _float(run.get("start"))
        if status == RUNNING:
            summary.running = True
            continue
        if cls == "skipped":
            continue
        if summary.last_duration_s is None and end is not None and start is not None:
            summary.last_duration_s = end - start
        if status == OK:
            if summary.last_success_ts is None:
                summary.last_success_ts = end
            seen_ok.add(name)
        elif status in FAILURES:
            if summary.last_failure_ts is None:
                summary.last_failure_ts = end if end is not None else start
            if name not in seen_ok:
                summary.consecutive_failures += 1
    return out


def summarise_drift(runs: Iterable[Mapping[str, Any]]) -> DriftSummary:
    """From the drift job's recorded summaries (run details), runs ordered newest first."""
    out = DriftSummary()
    for run in runs:
        if run.get("job") != "drift" or run.get("status") != OK:
            continue
        details = run.get("details") or {}
        if out.last_check_ts is None:
            out.last_check_ts = _float(run.get("end"))
            out.last_status = details.get("drift_status")
        share = _float(details.get("drifted_share"))
        if share is not None:
            out.share = share
            out.share_model_version = details.get("model_version")
            out.share_checked_ts = _float(run.get("end"))
            out.detected = details.get("drift_status") == "drift"
            break
    return out
