"""Wall and CPU seconds per named stage of a batch job, logged as each stage ends.

Why: on a shared machine wall time alone cannot tell a slow stage from a starved one; CPU seconds
(all threads of the process) can, and a long refresh shows where it is while it runs.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

log = logging.getLogger(__name__)


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class Stopwatch:
    """`with watch.stage("als"): ...` records wall and CPU seconds under that name."""

    def __init__(self, job: str) -> None:
        self.job = job
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu
            log.info("event=stage_done job=%s stage=%s wall_s=%.2f cpu_s=%.2f peak_rss_mb=%.0f", self.job, name,
                     self.wall[name], self.cpu[name], peak_rss_bytes() / 2**20)

    def record(self, wall: Mapping[str, float], cpu: Mapping[str, float] | None = None, *, prefix: str = "") -> None:
        """Add stages timed elsewhere (a sub-job's own stopwatch), named `prefix` + stage."""
        for name, seconds in wall.items():
            self.wall[prefix + name] = self.wall.get(prefix + name, 0.0) + seconds
        for name, seconds in (cpu or {}).items():
            self.cpu[prefix + name] = self.cpu.get(prefix + name, 0.0) + seconds
