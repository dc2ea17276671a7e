"""The console's last-hour figures from the Prometheus metrics: quantiles from buckets, window differences."""

from __future__ import annotations

import pytest

from api.console.stats import RequestWindow, quantile_ms, snapshot, window
from api.metrics import BUCKETS, Metrics

REC = ("/v1/users/{user_id}/recommendations", "GET")


def test_quantile_interpolates_inside_the_bucket() -> None:
    # 100 requests, all in the (1 ms, 2 ms] bucket: the median sits halfway through it
    counts = tuple(0.0 if b <= 0.001 else 100.0 for b in BUCKETS) + (100.0,)
    assert quantile_ms(counts, 0.5) == pytest.approx(1.5)
    assert quantile_ms(counts, 0.99) == pytest.approx(1.99)
    assert quantile_ms(tuple(0.0 for _ in range(len(BUCKETS) + 1)), 0.5) is None


def test_window_counts_only_the_recommendation_path_between_two_snapshots() -> None:
    m = Metrics()
    m.latency.labels(*REC).observe(0.0008)
    old = snapshot(m, now=100.0)
    for _ in range(9):
        m.latency.labels(*REC).observe(0.004)  # (3 ms, 5 ms]
    m.latency.labels(*REC).observe(0.3)  # (0.25 s, 0.5 s]
    m.latency.labels("/console/view/overview", "GET").observe(2.0)  # not the serving path: ignored
    m.fallbacks.labels("unknown_user").inc(2)
    m.events.inc(30)
    stats = window(old, snapshot(m, now=110.0))
    assert stats.requests == 10 and stats.rate_per_s == pytest.approx(1.0)
    assert stats.fallback_share == pytest.approx(0.2)
    assert stats.events_rate == pytest.approx(3.0)
    assert stats.p50_ms is not None and 3.0 < stats.p50_ms <= 5.0
    assert stats.p99_ms is not None and 250.0 < stats.p99_ms <= 500.0


def test_the_window_keeps_an_hour_of_samples() -> None:
    m = Metrics()
    w = RequestWindow(m, interval=3600.0)
    w.start()
    try:
        m.latency.labels(*REC).observe(0.001)
        w.sample()
        assert w.last_hour().requests == 1  # from the first copy (start), not from the latest
    finally:
        w.stop()
