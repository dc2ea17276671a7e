"""A scheduler process for the shutdown tests: `python scheduler_child.py STORE_URL NAMESPACE MODE FLAG_FILE`.

Runs `jobs.scheduler.serve` (the real signal handling of `recsys schedule`) with one job, "publish",
that stages a candidate version, signals it is under way by creating FLAG_FILE, then works for up to
20 s before flipping the pointer. MODE "cooperative" watches ctx.should_stop() while working (like a
job between stages); "stubborn" ignores it (like a job deep inside ALS training).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from jobs.context import JobContext, JobOutcome
from jobs.scheduler import serve
from recsys.config import SchedulerConfig, Settings
from recsys.logging_setup import configure_logging
from recsys.store import open_store


def main() -> int:
    url, namespace, mode, flag = sys.argv[1:5]
    configure_logging("INFO")
    store = open_store(url, namespace=namespace)
    settings = Settings(store_url=url, scheduler=SchedulerConfig(
        lock_ttl_seconds=1.5, misfire_grace_seconds=5, shutdown_timeout_seconds=1.0))

    def publish(ctx: JobContext) -> JobOutcome:
        writer = ctx.store.candidates.begin()
        writer.write_items(["a", "b"])
        writer.write_meta({"created_at": time.time()})
        Path(flag).write_text(writer.version)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (mode == "cooperative" and ctx.should_stop()):
            time.sleep(0.05)
        try:
            ctx.checkpoint()
        except BaseException:
            ctx.store.candidates.abandon(writer.version)
            raise
        ctx.store.candidates.publish(writer.version)
        return JobOutcome(version=writer.version)

    return serve(settings, store, jobs={"publish": publish}, crons={"publish": "* * * * * *"})


if __name__ == "__main__":
    sys.exit(main())
