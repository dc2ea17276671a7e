"""Runs one job under its store lock and records it in the job history.

Shared by the scheduler (`recsys schedule`) and the one-shot commands (`recsys drift`), so a job started
by hand still never overlaps a scheduled run of the same job on another machine. No APScheduler here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from jobs.context import JobAbandoned, JobContext, JobFn
from jobs.locks import JobLock, claim_tick
from recsys.config import Settings
from recsys.errors import ConfigError, StoreUnavailableError
from recsys.store import Store
from recsys.store.job_history import ABANDONED, FAILED, JobRun

log = logging.getLogger(__name__)

SKIPPED_RUNNING = "skipped: already running"


class JobRunner:
    """Runs the job functions it is given (by name) with tick claim, run lock, checkpoints and history."""

    def __init__(self, settings: Settings, store: Store, jobs: Mapping[str, JobFn], *,
                 stop_event: threading.Event | None = None) -> None:
        self.settings = settings
        self.store = store
        self.jobs = dict(jobs)
        self.stop_event = stop_event or threading.Event()
        self._active: dict[str, tuple[JobRun, JobLock]] = {}
        self._mutex = threading.Lock()

    @property
    def active(self) -> list[JobRun]:
        with self._mutex:
            return [run for run, _ in self._active.values()]

    def _record_end(self, run: JobRun) -> None:
        try:
            self.store.jobs.record_end(run)
        except StoreUnavailableError as exc:
            log.error("event=job_history_write_failed job=%s run_id=%s error=%r", run.job, run.run_id,
                      str(exc))

    def run(self, name: str, *, trigger: str = "manual", reason: str | None = None, tick: str | None = None,
            options: dict[str, Any] | None = None) -> JobRun | None:
        """Run job `name` now. Returns its record, or None when it did not start (tick taken, shutdown).

        With `tick` (a scheduled fire time), only the first scheduler to claim that tick runs it.
        """
        fn = self.jobs.get(name)
        if fn is None:
            raise ConfigError(f"unknown job {name!r}; known: {sorted(self.jobs)}")
        if self.stop_event.is_set():
            log.info("event=job_not_started job=%s reason=shutdown", name)
            return None
        cfg = self.settings.scheduler
        if tick is not None and not claim_tick(self.store, name, tick,
                                               cfg.misfire_grace_seconds + cfg.lock_ttl_seconds):
            log.info("event=job_tick_taken job=%s tick=%s", name, tick)
            return None
        run = JobRun(job=name, trigger=trigger, reason=reason, tick=tick)
        lock = JobLock(self.store, name, cfg.lock_ttl_seconds)
        if not lock.acquire():
            run.status = SKIPPED_RUNNING + " (another run of this job holds its lock)"
            log.info("event=job_skipped job=%s reason=lock_held tick=%s", name, tick)
            self._record_end(run)
            return run
        with self._mutex:
            self._active[run.run_id] = (run, lock)
        log.info("event=job_started job=%s run_id=%s trigger=%s tick=%s", name, run.run_id, trigger, tick)
        interrupted: BaseException | None = None
        try:
            self.store.jobs.record_start(run)
            outcome = fn(JobContext(self, run, lock, dict(options or {})))
        except JobAbandoned as exc:
            run.status, run.error = ABANDONED, str(exc)
        except Exception as exc:
            log.exception("event=job_failed job=%s run_id=%s", name, run.run_id)
            run.status, run.error = FAILED, f"{type(exc).__name__}: {exc}"
        except BaseException as exc:  # KeyboardInterrupt / SystemExit: record, then let it through
            run.status, run.error = ABANDONED, f"interrupted: {type(exc).__name__}"
            interrupted = exc
        else:
            if outcome is not None:
                run.status, run.version = outcome.status, outcome.version
                run.details.update(outcome.details)
            if lock.lost.is_set():
                run.details["lock_lost"] = True
                log.warning("event=job_lock_lost_during_run job=%s run_id=%s", name, run.run_id)
        finally:
            with self._mutex:
                still_ours = self._active.pop(run.run_id, None) is not None
            if still_ours:  # else abandon_active already closed it
                self._record_end(run)
                lock.release()
        if interrupted is not None:
            raise interrupted
        return run

    def abandon_active(self, why: str) -> int:
        """Close every running job as abandoned and free its lock (forced shutdown); returns how many.

        Their threads may still be computing, but the stop event is set, so their next checkpoint raises
        before anything is published.
        """
        self.stop_event.set()
        with self._mutex:
            active = list(self._active.values())
            self._active.clear()
        for run, lock in active:
            run.status, run.error = ABANDONED, why
            self._record_end(run)
            lock.release()
        return len(active)
