"""`recsys refresh` end to end (CLI process: load + ALS + FAISS + bundle + publish) and Redis bytes per user.

    python benchmarks/refresh_bench.py --data ../shared/data/ml-100k --runs 5

Wall time is measured around the whole CLI process (interpreter start and imports included); the
memory per user comes from Redis itself: MEMORY USAGE of every candidate key of the published
version (and of the history keys, reported separately), plus the INFO used_memory delta.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "ml-100k"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    ap.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "refresh.json"))
    args = ap.parse_args()

    client = redis.Redis.from_url(args.redis)
    client.flushdb()  # db 12 belongs to this benchmark
    work = Path(tempfile.mkdtemp(prefix="recsys-refresh-"))
    env = {**os.environ, "RECSYS_ARTIFACTS_DIR": str(work), "RECSYS_STORE_URL": args.redis,
           "RECSYS_VERSION_GRACE_SECONDS": "0", "RECSYS_ARTIFACTS_STORAGE": "files"}  # per-user memory only
    times = []
    for _ in range(args.runs):
        mem_before = client.info("memory")["used_memory"]
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cli", "refresh", "--data", args.data], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    version = client.get("recsys:version").decode()
    user_bytes, users = 0, 0
    for key in client.scan_iter(match=f"recsys:v:{version}:u:*", count=5000):  # layout 3: one value per user
        user_bytes += client.memory_usage(key, samples=0)
        users += 1
    # Drop everything but this version to read the whole-version footprint from INFO.
    for key in client.scan_iter(match="recsys:v:*", count=5000):
        if not key.startswith(f"recsys:v:{version}:".encode()):
            client.unlink(key)
    mem_with = client.info("memory")["used_memory"]
    for key in client.scan_iter(match=f"recsys:v:{version}:*", count=5000):
        client.unlink(key)
    mem_without = client.info("memory")["used_memory"]
    result = {
        "data": args.data, "runs": times, "median_s": statistics.median(times), "min_s": min(times),
        "max_s": max(times), "users": users,
        "user_key_bytes_memory_usage": user_bytes / max(users, 1),
        "version_bytes_per_user_info_used_memory": (mem_with - mem_without) / max(users, 1),
        "mem_before_first_run": mem_before,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
