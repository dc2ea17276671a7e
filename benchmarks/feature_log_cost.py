"""Cost of the served-feature log on each store backend once the log is full (100k rows × 20 features).

    PYTHONPATH=. python benchmarks/feature_log_cost.py [--redis redis://127.0.0.1:6379/15]

Prints, per backend: the per-request cost of `log_feature_rows` (100 candidates, rate 0.05, written in
the caller), the request-thread cost of the API's `FeatureLogSink` (same sample, written by its background
thread) and the time `read_feature_log` takes to load the whole log (what the hourly drift job pays).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from recsys.monitoring.feature_log import log_feature_rows, read_feature_log
from recsys.serving.feature_sink import FeatureLogSink
from recsys.store import open_store


def measure(url: str, requests: int = 50) -> str:
    namespace = f"bench-featlog-{uuid.uuid4().hex[:8]}"
    store = open_store(url, namespace=namespace)
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(20)]
    try:
        full = rng.normal(size=(100_000, 20))
        for start in range(0, len(full), 10_000):  # in chunks: one 100k-row RPUSH can outlast the socket timeout
            log_feature_rows(store, "m", "u", names, full[start:start + 10_000], 1.0, rng)
        request = rng.normal(size=(100, 20))
        t = time.perf_counter()
        for _ in range(requests):
            log_feature_rows(store, "m", "u", names, request, 0.05, rng)
        per_request_ms = (time.perf_counter() - t) / requests * 1000
        sink = FeatureLogSink(store, rate=0.05, max_rows=100_000, seed=0)
        calls = requests * 20
        t = time.perf_counter()
        for _ in range(calls):
            sink("u", "m", names, request)
        sink_call_us = (time.perf_counter() - t) / calls * 1e6
        sink.close(timeout=60)
        sink_stats = sink.stats()
        t = time.perf_counter()
        rows = len(read_feature_log(store))
        read_s = time.perf_counter() - t
    finally:
        store.wipe()
        store.close()
    return (f"backend={url.split(':')[0]} rows={rows} log_per_request_ms={per_request_ms:.2f} "
            f"sink_call_us={sink_call_us:.1f} sink_rows_written={sink_stats.rows_written}/"
            f"{sink_stats.rows_sampled} read_all_s={read_s:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(measure(f"embedded://{Path(tmp) / 'bench.sqlite'}"))
    print(measure(args.redis))


if __name__ == "__main__":
    main()
