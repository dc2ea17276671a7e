"""Structured key=value logs for the process edges (CLI, API, scheduler)."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(stream=sys.stderr, level=level.upper(),
                        format="ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s", force=True)
    # faiss announces every loader attempt at INFO; it is noise for users.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
