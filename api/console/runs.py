"""Jobs started from the console run in a child process, never in the API process.

A refresh is minutes of ALS and FAISS work: in the API process it would hold the GIL and the cores the
recommendation path needs. The child is `python -m jobs.once NAME` with the API's own settings passed as
`RECSYS_*` variables, so it writes to the same store and artifacts; it runs through the job runner (store
lock, history), so the run shows in the job history like a scheduled one, and a run of the same job
already going elsewhere makes this one a recorded skip.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading

from recsys.config import Settings

log = logging.getLogger(__name__)

CONSOLE_JOBS = ("refresh", "train-ranker", "ingest")


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as environment variables the child's `Settings()` reads back (nested ones as JSON)."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        key = f"RECSYS_{name.upper()}"
        env[key] = json.dumps(value) if isinstance(value, dict | list) else \
            ("true" if value is True else "false" if value is False else str(value))
    return env


class JobLauncher:
    """Starts console jobs and reaps their processes (no zombies); the history lives in the store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._children: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}
        self._lock = threading.Lock()

    def start(self, job: str) -> int:
        if job not in CONSOLE_JOBS:
            raise ValueError(f"the console runs {', '.join(CONSOLE_JOBS)}, not {job!r}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
        env.update(settings_env(self.settings))
        proc = subprocess.Popen([sys.executable, "-m", "jobs.once", job], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        log.info("event=console_job_started job=%s pid=%s", job, proc.pid)
        with self._lock:
            self._children[proc.pid] = (job, proc)
        self.reap()
        return proc.pid

    def reap(self) -> list[str]:
        """Collect finished children; returns the jobs still running from this process."""
        with self._lock:
            for pid, (job, proc) in list(self._children.items()):
                code = proc.poll()
                if code is not None:
                    del self._children[pid]
                    log.info("event=console_job_finished job=%s pid=%s code=%s", job, pid, code)
            return [job for job, _ in self._children.values()]

    def stop(self) -> None:
        """The API is stopping: the children carry on (the runner's lock and history cover them)."""
        self.reap()
