"""Request figures of the last hour for the console's overview, read from the Prometheus metrics.

Nothing here runs per request: the recommendation endpoints already feed the latency histogram and the
counters in `api/metrics.py`. A sampler thread copies their cumulative values once a minute (a few
hundred numbers), and the overview subtracts the oldest copy of the last hour from the values of the
moment: rate, p50/p99 and fallback share over that window, no Prometheus server needed.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from api.metrics import BUCKETS, Metrics
from recsys.events.sink import LoopSinks

# The recommendation path: what the latency and fallback figures are about.
SERVING_ENDPOINTS = {("/v1/users/{user_id}/recommendations", "GET"), ("/v1/recommendations", "POST")}
WINDOW_SECONDS = 3600.0
SAMPLE_SECONDS = 60.0


@dataclass(frozen=True)
class Snapshot:
    """Cumulative counts at one moment (since the process started)."""

    at: float
    buckets: tuple[float, ...]  # cumulative count per upper bound in BUCKETS, then +Inf
    requests: float
    fallbacks: float
    events: float
    impressions: float


@dataclass(frozen=True)
class WindowStats:
    seconds: float
    requests: float
    rate_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    fallback_share: float | None
    events_rate: float
    impressions_rate: float


def snapshot(metrics: Metrics, loop: LoopSinks | None = None, now: float | None = None) -> Snapshot:
    """Read the cumulative values (the same numbers /metrics prints) of the request metrics only: the
    scrape-time collector, which reads the store, is left alone."""
    bounds = [*BUCKETS, math.inf]
    counts = [0.0] * len(bounds)
    requests = fallbacks = events = 0.0
    for metric in (metrics.latency, metrics.fallbacks, metrics.events):
        for family in metric.collect():
            for s in family.samples:
                serving = (s.labels.get("endpoint"), s.labels.get("method")) in SERVING_ENDPOINTS
                if s.name == "recsys_request_seconds_bucket" and serving:
                    counts[bounds.index(float(s.labels["le"]))] += s.value
                elif s.name == "recsys_request_seconds_count" and serving:
                    requests += s.value
                elif s.name == "recsys_fallbacks_total":
                    fallbacks += s.value
                elif s.name == "recsys_events_total":
                    events += s.value
    impressions = float(loop.impressions.stats().submitted) if loop is not None and loop.impressions else 0.0
    return Snapshot(time.time() if now is None else now, tuple(counts), requests, fallbacks, events, impressions)


def quantile_ms(buckets: tuple[float, ...], q: float) -> float | None:
    """The q-quantile from cumulative bucket counts, interpolated inside its bucket (as Prometheus'
    histogram_quantile does); None without requests."""
    total = buckets[-1]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip([*BUCKETS, math.inf], buckets, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower_bound * 1e3  # above the largest bucket: its bound is all that is known
            inside = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return (lower_bound + (bound - lower_bound) * inside) * 1e3
        lower_bound, lower_count = bound, count
    return None


def window(old: Snapshot, new: Snapshot) -> WindowStats:
    seconds = max(new.at - old.at, 1e-9)
    buckets = tuple(n - o for n, o in zip(new.buckets, old.buckets, strict=True))
    requests = new.requests - old.requests
    fallbacks = new.fallbacks - old.fallbacks
    return WindowStats(seconds, requests, requests / seconds, quantile_ms(buckets, 0.5), quantile_ms(buckets, 0.99),
                       fallbacks / requests if requests > 0 else None, (new.events - old.events) / seconds,
                       (new.impressions - old.impressions) / seconds)


@dataclass
class RequestWindow:
    """Once-a-minute copies of the counters, an hour of them; `start` / `stop` with the app."""

    metrics: Metrics
    loop: LoopSinks | None = None
    interval: float = SAMPLE_SECONDS
    _samples: deque[Snapshot] = field(default_factory=deque)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._samples.append(snapshot(self.metrics, self.loop))

        def loop() -> None:
            while not self._stop.wait(self.interval):
                self.sample()

        self._thread = threading.Thread(target=loop, name="console-request-window", daemon=True)
        self._thread.start()

    def sample(self) -> None:
        now = snapshot(self.metrics, self.loop)
        self._samples.append(now)
        while len(self._samples) > 1 and now.at - self._samples[0].at > WINDOW_SECONDS:
            self._samples.popleft()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def last_hour(self) -> WindowStats:
        """From the oldest copy kept (at most an hour old; the process start before that) to now."""
        now = snapshot(self.metrics, self.loop)
        oldest = self._samples[0] if self._samples else Snapshot(now.at, tuple(0.0 for _ in now.buckets), 0, 0, 0, 0)
        return window(oldest, now)
