"""Cost of checking stored values on the request path: decode with and without the range checks.

    python benchmarks/decode_cost.py [--repeat 7] [--number 20000]

One user's candidate blob (100 candidates), history blob (200 items) and a 10-event session, decoded the
way `Store.read_user` does it; min over repeats, µs per call. CPU-bound and in-process: noisy on a busy host.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recsys.store.codec import decode_candidates, decode_indices, encode_candidates, encode_indices  # noqa: E402
from recsys.store.sessions import SessionEvent, decode_session  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--number", type=int, default=20000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n_items = 1682
    candidates = encode_candidates(rng.choice(n_items, 100, replace=False), rng.random(100).astype(np.float32))
    history = encode_indices(rng.choice(n_items, 200, replace=False))
    session = [SessionEvent(f"i{i}", "click", 1.7e9 + i).encode() for i in range(10)]
    cases = {
        "candidates (header, finite scores)": lambda: decode_candidates(candidates),
        "candidates + index range": lambda: decode_candidates(candidates, n_items),
        "history (header)": lambda: decode_indices(history),
        "history + index range": lambda: decode_indices(history, n_items),
        "session, 10 entries, checked": lambda: decode_session(session),
    }
    for name, fn in cases.items():
        best = min(timeit.repeat(fn, number=args.number, repeat=args.repeat)) / args.number * 1e6
        print(f"{name:<36} {best:7.2f} µs")


if __name__ == "__main__":
    main()
