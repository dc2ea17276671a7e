"""SIGKILL `recsys refresh` at random moments, many times: the serving version must stay complete.

Each round starts the real CLI (`python -m cli refresh`) on a synthetic data set and kills
its process group with SIGKILL. Kill moments alternate between
  * `uniform`: anywhere in a full refresh (load, ALS, FAISS, bundle write, publish), and
  * `publish`: once the refresh has registered its staging version in the store (the write of
    every user's keys, the meta, the pointer flip, the garbage collection), after a random delay
    within the measured length of that phase: the window where a crash could leave a partial version.
After every kill the published version is checked from the outside (recsys.store.integrity): every
user's candidates and history present and decodable, meta and items consistent, bundle loads with
its checksums. Then one more refresh must succeed, and no version's keys may be left unlisted (a
leak nobody would collect). Results go to benchmarks/results/kill_refresh.json.

Uses one Redis database of its own (default db 10) and FLUSHES IT first; never db 0.

    python benchmarks/kill_refresh.py --kills 30 --users 20000 --items 2000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import polars as pl
import redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from recsys.artifacts import ArtifactRegistry  # noqa: E402
from recsys.engines.verify import verify_published  # noqa: E402
from recsys.store import Store, open_store  # noqa: E402
from recsys.store.integrity import orphaned_versions  # noqa: E402

NAMESPACE = "killtest"


def refresh_cmd(data: Path) -> list[str]:
    return [sys.executable, "-m", "cli", "refresh", "--data", str(data)]


def staging_versions(store: Store) -> set[str]:
    return {str(v["version"]) for v in store.candidates.versions()}


def run_full(data: Path, env: dict[str, str], store: Store) -> tuple[float, float]:
    """One refresh to the end: its total seconds and how long its publish phase lasted."""
    known = staging_versions(store)
    t0 = time.perf_counter()
    proc = subprocess.Popen(refresh_cmd(data), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t_begin = None
    while proc.poll() is None:
        if t_begin is None and staging_versions(store) - known:
            t_begin = time.perf_counter()
        time.sleep(0.005)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"refresh failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return total, total - (t_begin - t0 if t_begin is not None else total)


def one_kill(data: Path, env: dict[str, str], store: Store, mode: str, full_s: float,
             publish_s: float, rng: random.Random) -> dict:
    before = store.candidates.current_version()
    known = staging_versions(store)
    proc = subprocess.Popen(refresh_cmd(data), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    t0 = time.perf_counter()
    if mode == "uniform":
        delay = rng.uniform(0.0, full_s)
        while proc.poll() is None and time.perf_counter() - t0 < delay:
            time.sleep(0.002)
    else:
        while proc.poll() is None and not staging_versions(store) - known:
            time.sleep(0.002)
        delay = rng.uniform(0.0, publish_s * 1.2)
        t1 = time.perf_counter()
        while proc.poll() is None and time.perf_counter() - t1 < delay:
            time.sleep(0.001)
    at = time.perf_counter() - t0
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    after = store.candidates.current_version()
    new_staging = staging_versions(store) - known
    if not killed:
        stage = "finished_first"
    elif after != before:
        stage = "after_pointer_flip"
    elif new_staging:
        stage = "during_publish_write"
    else:
        stage = "before_publish"
    return {"mode": mode, "at_s": round(at, 3), "killed": killed, "stage": stage, "version_before": before,
            "version_after": after}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--data", type=Path, default=None, help="use this data set instead of a synthetic one")
    ap.add_argument("--store", default="redis://127.0.0.1:6379/10",
                    help="a Redis db of its own: it is FLUSHED first (db 0 refused)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "kill_refresh.json"))
    args = ap.parse_args()
    db = redis.Redis.from_url(args.store)
    if int(db.connection_pool.connection_kwargs.get("db", 0)) == 0:
        sys.exit("refusing to flush db 0: pass --store redis://host:port/N with a dedicated N")
    db.flushdb()

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="recsys-kill-"))
    env = {**os.environ, "RECSYS_STORE_URL": args.store, "RECSYS_STORE_NAMESPACE": NAMESPACE,
           "RECSYS_ARTIFACTS_DIR": str(work / "artifacts"), "RECSYS_LOG_LEVEL": "WARNING",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    data = args.data
    if data is None:
        data = work / "synth"
        subprocess.run([sys.executable, "-m", "cli", "data", "synth", "--users", str(args.users), "--items",
                        str(args.items), "--seed", str(args.seed), "--out", str(data)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
    inter = pl.read_parquet(data / "interactions.parquet") if data.is_dir() else pl.read_parquet(data)
    users = sorted(str(u) for u in inter["user_id"].unique().to_list())
    store = open_store(args.store, namespace=NAMESPACE)
    registry = ArtifactRegistry(store.artifacts)  # redis:// keeps the bundles in the store too

    full_s, publish_s = run_full(data, env, store)
    first = verify_published(store, registry, users)
    assert first.ok, first.problems
    print(f"full refresh {full_s:.1f}s (publish phase {publish_s:.2f}s), {len(users)} users, version {first.version}")

    rounds = []
    t_start = time.perf_counter()
    for i in range(args.kills):
        mode = "uniform" if i % 2 == 0 else "publish"
        r = one_kill(data, env, store, mode, full_s, publish_s, rng)
        t = time.perf_counter()
        check = verify_published(store, registry, users)
        r.update({"check_seconds": round(time.perf_counter() - t, 2), "complete": check.ok,
                  "users_ok": check.users_ok, "problems": check.problems[:5]})
        rounds.append(r)
        print(f"kill {i + 1:2d}/{args.kills} {mode:7s} at {r['at_s']:6.2f}s  {r['stage']:22s} "
              f"serving {check.version}  complete={check.ok} users_ok={check.users_ok}")

    t = time.perf_counter()
    final_proc = subprocess.run(refresh_cmd(data), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    final_s = time.perf_counter() - t
    final = verify_published(store, registry, users)
    keys = [k.decode() for k in db.scan_iter(match=f"{NAMESPACE}:v:*", count=10000)]
    orphans = orphaned_versions(store, keys)
    staging_left = [v for v in store.candidates.versions() if v["state"] == "staging" and v["version"] != final.version]
    bundles_left = registry.bundle_versions()

    stages = Counter(r["stage"] for r in rounds)
    landed = [r for r in rounds if r["killed"]]
    result = {
        "config": {"kills": args.kills, "users": len(users), "items": args.items, "interactions": inter.height,
                   "store": args.store, "seed": args.seed, "full_refresh_s": round(full_s, 2),
                   "publish_phase_s": round(publish_s, 2)},
        "kills_landed": len(landed),
        "refresh_finished_before_kill": stages.get("finished_first", 0),
        "stages": dict(stages),
        "versions_checked": len(rounds),
        "complete_after_every_kill": all(r["complete"] for r in rounds),
        "incomplete_versions": sum(not r["complete"] for r in rounds),
        "users_checked_per_round": len(users),
        "final_refresh": {"exit_code": final_proc.returncode, "seconds": round(final_s, 2),
                          "complete": final.ok, "version": final.version, "problems": final.problems[:5]},
        "orphaned_versions": sorted(orphans),
        "staging_versions_left": len(staging_left),
        "bundle_dirs_left": len(bundles_left),
        "kill_loop_seconds": round(time.perf_counter() - t_start, 1),
        "rounds": rounds,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=2))
    db.flushdb()
    shutil.rmtree(work, ignore_errors=True)
    ok = result["complete_after_every_kill"] and final.ok and final_proc.returncode == 0 and not orphans
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
