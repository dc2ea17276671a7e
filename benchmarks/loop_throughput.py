"""Throughput of the loop's batch steps, one process each, on Redis and on the embedded store.

- ingest: N events appended to the event log beforehand (not timed), then one `run_ingest` (decode,
  validate, write Parquet partitions, commit, acknowledge, trim) is timed: events per second.
- update: a refresh on synthetic data publishes a version; U users (half known to it, half new) get 5
  events each through the log; after an ingest, one `run_update` (fold-in, FAISS search, encode, one
  batch write per 2000 users) is timed: users per second.

    python benchmarks/loop_throughput.py                      # both backends, 200k events, 5k users
    python benchmarks/loop_throughput.py --events 100000 --backends embedded
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.config import Settings  # noqa: E402
from recsys.data.lake import Lake  # noqa: E402
from recsys.data.loaders import Dataset  # noqa: E402
from recsys.data.synthetic import generate  # noqa: E402
from recsys.engines.local import run_refresh  # noqa: E402
from recsys.events.ingest import run_ingest  # noqa: E402
from recsys.events.records import encode_event  # noqa: E402
from recsys.events.update import Updater  # noqa: E402
from recsys.store import EVENTS, Store, open_store  # noqa: E402


def append_events(store: Store, rows: list[tuple[str, str, float]], chunk: int = 5000) -> None:
    for start in range(0, len(rows), chunk):
        store.event_log.append(EVENTS, [encode_event(u, i, "click", t) for u, i, t in rows[start:start + chunk]])


def bench_ingest(store: Store, settings: Settings, n: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    now = time.time()
    users = rng.integers(0, 50_000, n)
    items = rng.integers(0, 5_000, n)
    rows = [(f"u{u}", f"i{i}", now - 3600 + k * 1e-3) for k, (u, i) in enumerate(zip(users, items, strict=True))]
    append_events(store, rows)
    t0 = time.perf_counter()
    result = run_ingest(settings, store)
    seconds = time.perf_counter() - t0
    assert result.streams[EVENTS].written == n, result
    return {"events": n, "seconds": round(seconds, 3), "events_per_second": round(n / seconds),
            "files": result.streams[EVENTS].files}


def bench_update(store: Store, settings: Settings, users: int, seed: int) -> dict[str, float]:
    inter, items = generate(20_000, 2_000, seed=seed, mean_events=30.0)
    run_refresh(settings, store, Dataset(inter, items, "synthetic", "synthetic"))
    known = inter["user_id"].unique().sort().to_list()[: users // 2]
    new = [f"new{k}" for k in range(users - len(known))]
    rng = np.random.default_rng(seed)
    item_ids = items["item_id"].to_list()
    now = time.time()
    rows = [(u, item_ids[int(j)], now - 600 + k) for u in known + new
            for k, j in enumerate(rng.integers(0, len(item_ids), 5))]
    append_events(store, rows)
    run_ingest(settings, store)
    updater = Updater(settings, store)
    updater._item_side(store.candidates.require_version())  # bundle load is once per version: not timed
    t0 = time.perf_counter()
    result = updater.run()
    seconds = time.perf_counter() - t0
    assert result.users == users and result.new_users == len(new), result
    return {"users": users, "new_users": len(new), "events": len(rows), "seconds": round(seconds, 3),
            "users_per_second": round(users / seconds)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--users", type=int, default=5_000)
    ap.add_argument("--backends", nargs="+", default=["redis", "embedded"])
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/8")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "loop_throughput.json"))
    args = ap.parse_args()
    out: dict[str, object] = {"config": vars(args)}
    for backend in args.backends:
        work = Path(tempfile.mkdtemp(prefix="recsys-loop-bench-"))
        url = args.redis if backend == "redis" else f"embedded://{work / 'store.sqlite'}"
        ns = f"loopbench{os.getpid()}"
        settings = Settings(artifacts_dir=work / "artifacts", lake_dir=work / "lake", store_url=url,
                            store_namespace=ns)
        store = open_store(url, namespace=ns)
        try:
            ingest = bench_ingest(store, settings, args.events, args.seed)
            shutil.rmtree(work / "lake")
            assert Lake(work / "lake").read_events().height == 0
            update = bench_update(store, settings, args.users, args.seed)
        finally:
            store.wipe()
            store.close()
            shutil.rmtree(work, ignore_errors=True)
        out[backend] = {"ingest": ingest, "update": update}
        print(f"{backend}: ingest {ingest['events_per_second']:,} events/s ({ingest['events']:,} in "
              f"{ingest['seconds']} s); update {update['users_per_second']:,} users/s ({update['users']:,} users, "
              f"{update['new_users']:,} new, in {update['seconds']} s)", flush=True)
    out["load_average"] = os.getloadavg()
    Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
