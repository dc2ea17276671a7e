"""`python -m jobs.once NAME`: run one job now through the runner (store lock, checkpoints, history).

The console starts jobs this way (api/console/runs.py), in their own process; settings from RECSYS_*.
Exit status 0 when the run ended ok, 1 otherwise (failed, skipped, abandoned).
"""

from __future__ import annotations

import sys

from jobs.definitions import DEFAULT_JOBS
from jobs.runner import JobRunner
from recsys.config import get_settings
from recsys.logging_setup import configure_logging
from recsys.store import store_from_settings
from recsys.store.job_history import OK


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in DEFAULT_JOBS:
        print(f"usage: python -m jobs.once {{{','.join(DEFAULT_JOBS)}}}", file=sys.stderr)
        return 2
    settings = get_settings()
    configure_logging(settings.log_level)
    store = store_from_settings(settings)
    try:
        run = JobRunner(settings, store, DEFAULT_JOBS).run(args[0], trigger="console")
    finally:
        store.close()
    return 0 if run is not None and run.status == OK else 1


if __name__ == "__main__":
    sys.exit(main())
