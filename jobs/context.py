"""What a job function sees and returns: JobContext in, JobOutcome out.

Both the runner (jobs/runner.py) and the job table (jobs/definitions.py) import this module and neither
imports the other: the runner is handed its jobs, and a job reaches the runner only through `JobHost`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from jobs.locks import JobLock
from recsys.config import Settings
from recsys.errors import PublishAbortedError
from recsys.store import Store
from recsys.store.job_history import OK, JobRun


class JobAbandoned(PublishAbortedError):
    """The job stopped at a checkpoint (shutdown requested or lock lost) and published nothing."""


class JobHost(Protocol):
    """The part of the runner a job may use (jobs.runner.JobRunner is one)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Store: ...

    @property
    def stop_event(self) -> threading.Event: ...

    def run(self, name: str, *, trigger: str, reason: str | None = None) -> JobRun | None: ...


@dataclass
class JobOutcome:
    """What a job function returns: its status (default ok), the version it produced, anything else."""

    status: str = OK
    version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobContext:
    """Handed to a job function: settings, store, and the checkpoint to call before publishing."""

    runner: JobHost
    run: JobRun
    lock: JobLock
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.runner.settings

    @property
    def store(self) -> Store:
        return self.runner.store

    def should_stop(self) -> bool:
        return self.runner.stop_event.is_set() or self.lock.lost.is_set()

    def checkpoint(self) -> None:
        """Raise JobAbandoned if the process is shutting down or the job lost its lock.

        Call it before every step that makes work visible (the pointer flip, promoting a model): past a
        failed checkpoint nothing may be published, since another scheduler may now hold the lock.
        """
        if self.lock.lost.is_set():
            raise JobAbandoned(f"job {self.run.job}: lock lost (expired or taken over); not publishing")
        if self.runner.stop_event.is_set():
            raise JobAbandoned(f"job {self.run.job}: shutdown requested; not publishing")

    def run_job(self, name: str, *, trigger: str, reason: str | None = None) -> JobRun | None:
        """Start another job from this one (drift → train-ranker), under that job's own lock."""
        return self.runner.run(name, trigger=trigger, reason=reason)


JobFn = Callable[[JobContext], "JobOutcome | None"]
