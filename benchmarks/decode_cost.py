"""Cost of checking stored values on the request path: decode with and without the range checks.

    python benchmarks/decode_cost.py [--repeat 7] [--number 20000]

One user's value (100 candidates, a 200-item history, a 32-factor user vector: store layout 3) and a
10-event session, decoded the way `Store.read_user` does it, at ml-100k's catalogue (1,682 items: 11-bit
indices) and at 50,000 items (16-bit); plus the ALS scores the cached source recomputes from the vector
(layout 2 stored them). Min over repeats, CPU µs per call. CPU-bound and in-process: noisy on a busy host.
Layout 2 (two values per user, float16 scores) measured 9.4 + 5.0 µs for candidates + history with
the index range checks: README "Store layout 3" has the before/after run.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recsys.candidates.sources import CachedList  # noqa: E402
from recsys.store.codec import decode_user, encode_user, index_width  # noqa: E402
from recsys.store.sessions import SessionEvent, decode_session  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--number", type=int, default=20000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    session = [SessionEvent(f"i{i}", "click", 1.7e9 + i).encode() for i in range(10)]
    cases = {}
    for n_items in (1682, 50_000):
        width = index_width(n_items)
        value = encode_user(rng.choice(n_items, 100, replace=False), 100, rng.normal(size=32),
                            rng.choice(n_items, 200, replace=False), width=width)
        cases[f"user value, {width}-bit (header, finite)"] = lambda v=value: decode_user(v)
        cases[f"user value, {width}-bit + index range"] = lambda v=value, n=n_items: decode_user(v, n)
    decoded = decode_user(value)
    cached = CachedList(decoded.candidates, decoded.user_vector, decoded.n_primary)
    factors = rng.normal(size=(50_000, 32)).astype(np.float32)
    cases["ALS scores from the vector (100 x 32)"] = lambda: cached.scores(factors)
    cases["session, 10 entries, checked"] = lambda: decode_session(session)
    for name, fn in cases.items():
        # CPU time, not wall time: on a shared, saturated host preemption dominates wall-clock timings.
        best = min(timeit.repeat(fn, number=args.number, repeat=args.repeat, timer=time.process_time)) \
            / args.number * 1e6
        print(f"{name:<40} {best:7.2f} µs")


if __name__ == "__main__":
    main()
