"""What impression logging adds to one request, in-process: `LoopSinks.record_recommendation` (encode one
impression of a top-10, append it to the writer's queue) timed over repeated calls, with the writer
thread appending to a real store meanwhile (so GIL contention with it is included).

    python benchmarks/impression_cost.py [--store redis://127.0.0.1:6379/8]

The HTTP comparison (two servers, impression logging on / off, alternating blocks) is
`python benchmarks/latency.py --impressions`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.events.sink import LogSink, LoopSinks  # noqa: E402
from recsys.serving.service import Recommendations, ScoredItem  # noqa: E402
from recsys.store import IMPRESSIONS, open_store  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default="embedded://:memory:")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    ns = f"impcost{os.getpid()}"
    store = open_store(args.store, namespace=ns)
    sinks = LoopSinks(None, LogSink(store, IMPRESSIONS))
    rec = Recommendations("u1", [ScoredItem(f"i{k}", 0.5 - k * 0.01, k + 1) for k in range(10)], "m1", "v1", None,
                          rec_id="ab" * 16, served_at=time.time())
    per_call_us = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        for _ in range(args.calls):
            sinks.record_recommendation(rec)
        per_call_us.append((time.perf_counter() - t0) / args.calls * 1e6)
    assert sinks.flush(30)
    sinks.close()
    store.wipe()
    out = {"store": args.store, "per_call_us": [round(x, 2) for x in per_call_us],
           "median_us": round(statistics.median(per_call_us), 2), "load_average": os.getloadavg()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
