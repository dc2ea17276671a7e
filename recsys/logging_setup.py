"""Structured key=value logs for the process edges (CLI, API, scheduler)."""

from __future__ import annotations

import logging
import sys
import time


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(stream=sys.stderr, level=level.upper(),
                        format="ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s", force=True)
    # faiss announces every loader attempt at INFO; it is noise for users.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)


class Throttle:
    """True at most once per `interval_s` (monotonic clock): background writers log a failing store once a
    minute and count the rest, so an outage does not flood the log from every queued batch."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last = float("-inf")

    def ready(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return False
        self._last = now
        return True
