"""APScheduler 3.x wiring: cron triggers from settings, one JobRunner, graceful SIGTERM.

Every scheduler on the same store fires every tick; the tick claim in the store lets exactly one of them
run it (jobs/locks.py). APScheduler's own guards (coalesce, misfire grace, max_instances=1) only act
inside one process.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from jobs.context import JobFn
from jobs.definitions import DEFAULT_JOBS
from jobs.locks import tick_id
from jobs.runner import JobRunner
from recsys.config import SchedulerConfig, Settings
from recsys.errors import ConfigError
from recsys.store import Store

log = logging.getLogger(__name__)

CRON_FIELDS = {"refresh": "refresh_cron", "train-ranker": "train_ranker_cron", "drift": "drift_cron",
               "ingest": "ingest_cron", "update": "update_cron"}


def parse_cron(expr: str, tz: str) -> CronTrigger:
    """5 fields (minute hour day month weekday) as in crontab, or 6 with seconds first.

    Weekday numbers follow APScheduler 3 (0 = Monday); names (mon-sun) are unambiguous.
    """
    fields = expr.split()
    try:
        if len(fields) == 5:
            return CronTrigger.from_crontab(expr, timezone=tz)
        if len(fields) == 6:
            second, minute, hour, day, month, weekday = fields
            return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                               day_of_week=weekday, timezone=tz)
    except ValueError as exc:
        raise ConfigError(f"bad cron expression {expr!r}: {exc}") from exc
    raise ConfigError(f"bad cron expression {expr!r}: need 5 fields (or 6 with seconds first)")


def job_crons(config: SchedulerConfig) -> dict[str, str]:
    """The enabled jobs and their cron strings (an empty string disables a job)."""
    crons = {name: str(getattr(config, attr)).strip() for name, attr in CRON_FIELDS.items()}
    return {name: expr for name, expr in crons.items() if expr and expr.lower() not in ("off", "none")}


def scheduled_tick(trigger: Any, now: datetime, lookback_seconds: float) -> datetime | None:
    """The latest fire time of `trigger` in (now - lookback, now]: the tick a run that starts now serves.

    Computed from the trigger itself, so two machines name the same tick even when their clocks or
    wake-ups differ by a little.
    """
    fire = trigger.get_next_fire_time(None, now - timedelta(seconds=lookback_seconds))
    last = None
    while fire is not None and fire <= now:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire)
    return last


def _fire(runner: JobRunner, name: str, trigger: Any) -> None:
    now = datetime.now(timezone.utc)
    tick = scheduled_tick(trigger, now, runner.settings.scheduler.misfire_grace_seconds + 1.0)
    runner.run(name, trigger="schedule", tick=tick_id(tick if tick is not None else now))


def build_scheduler(runner: JobRunner, crons: Mapping[str, str] | None = None) -> BackgroundScheduler:
    """A BackgroundScheduler (not started) with one cron job per entry of `crons` (default: settings)."""
    cfg = runner.settings.scheduler
    crons = job_crons(cfg) if crons is None else dict(crons)
    scheduler = BackgroundScheduler(timezone=cfg.timezone, job_defaults={
        "coalesce": True, "misfire_grace_time": cfg.misfire_grace_seconds, "max_instances": 1})
    for name, expr in crons.items():
        if name not in runner.jobs:
            raise ConfigError(f"cron given for unknown job {name!r}")
        trigger = parse_cron(expr, cfg.timezone)
        scheduler.add_job(_fire, trigger=trigger, args=[runner, name, trigger], id=name, name=name)
    return scheduler


def serve(settings: Settings, store: Store, *, jobs: Mapping[str, JobFn] = DEFAULT_JOBS,
          crons: Mapping[str, str] | None = None, stop_event: threading.Event | None = None) -> int:
    """Run the scheduler until SIGTERM/SIGINT (or `stop_event`); returns the process exit code.

    On the first signal no new run starts and the running job gets `shutdown_timeout_seconds` to finish
    or to abandon at its next checkpoint (publishing nothing). A second signal, or the timeout, records
    the running jobs as abandoned, frees their locks and exits at once.
    """
    # APScheduler's per-run INFO lines repeat the runner's key=value ones; keep its warnings.
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
    stop = stop_event or threading.Event()
    force = threading.Event()
    runner = JobRunner(settings, store, jobs, stop_event=stop)
    scheduler = build_scheduler(runner, crons)

    received: list[str] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Only set flags here: logging from a signal handler can interleave with the interrupted code.
        received.append(signal.Signals(signum).name)
        if stop.is_set():
            force.set()
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        scheduler.start()
        for job in scheduler.get_jobs():
            log.info("event=job_scheduled job=%s trigger=%r next_run=%s", job.id, str(job.trigger),
                     job.next_run_time)
        while not stop.wait(0.5):
            pass
        log.info("event=scheduler_stopping signal=%s running=%s", received[0] if received else None,
                 [run.job for run in runner.active])
        scheduler.shutdown(wait=False)
        deadline = time.monotonic() + settings.scheduler.shutdown_timeout_seconds
        while runner.active and not force.is_set() and time.monotonic() < deadline:
            force.wait(0.1)
        if runner.active:
            why = "forced shutdown" if force.is_set() else "shutdown timeout"
            n = runner.abandon_active(f"abandoned: {why} before the job reached a checkpoint")
            log.warning("event=scheduler_forced_exit abandoned=%d reason=%r", n, why)
            logging.shutdown()
            os._exit(0)  # the job thread cannot be interrupted; nothing was published, locks are freed
        log.info("event=scheduler_stopped")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main() -> int:
    """Entry point of `python -m jobs`: settings from the environment, store from RECSYS_STORE_URL."""
    from recsys.config import get_settings
    from recsys.logging_setup import configure_logging
    from recsys.store import store_from_settings

    settings = get_settings()
    configure_logging(settings.log_level)
    store = store_from_settings(settings)
    try:
        return serve(settings, store)
    finally:
        store.close()
