"""Load run through a Redis outage and a republish: every recommendation a 200, no 5xx, recovery measured.

`recsys serve` runs on a private redis-server (its own port, no persistence) while a separate process
sends open-loop load on loopback (default 100 requests/s for 60 s): 80 % GET recommendations,
10 % POST /v1/recommendations with an inline session, 10 % POST /v1/events. Timeline:

    -3 s     warm-up load (not counted)
    0 s      steady state
    15 s     Redis frozen (SIGSTOP): the port is open, nothing answers (socket timeouts)
    22.5 s   Redis killed (SIGKILL): connections refused
    30 s     Redis restarted, empty; `recsys refresh` republishes (a new version)
    60 s     end

Every response is recorded with its scheduled time, status, latency (from the scheduled send time,
so queueing is counted) and, for recommendations, `fallback` and `candidates_version`. The script
checks: recommendation requests are all 200 (fallback marked while Redis is out), no 5xx other
than the documented 503 of POST /v1/events while the store is down, no connection errors, and after
the republish every response is personalised again (fallback null, the new version). Results go to
benchmarks/results/chaos_load.json. `--breaker-cooldown 0` runs the same without the circuit breaker.

    python benchmarks/chaos_load.py --rate 100 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from latency import free_port, post_sessions, prepare, start_server  # noqa: E402
from loadgen import ALLOWED_HOSTS, ConnectionPool  # noqa: E402

from tests.redis_server import PrivateRedis  # noqa: E402

WARMUP_S = 3.0


def _requests(users: list[str], items: list[str], n: int, seed: int) -> list[tuple[str, str, str, bytes]]:
    """(kind, method, path, body) for each of n requests, seeded."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        u, x = rng.choice(users), rng.random()
        if x < 0.8:
            out.append(("recommend", "GET", f"/v1/users/{u}/recommendations?k=10", b""))
        elif x < 0.9:
            session = [{"item_id": rng.choice(items), "event": "click"} for _ in range(3)]
            body = json.dumps({"user_id": u, "k": 10, "session": session}).encode()
            out.append(("recommend_inline", "POST", "/v1/recommendations", body))
        else:
            body = json.dumps({"user_id": u, "item_id": rng.choice(items), "event": "view"}).encode()
            out.append(("event", "POST", "/v1/events", body))
    return out


def _load(port: int, reqs: list[tuple[str, str, str, bytes]], rate: float, max_connections: int,
          out: mp.Queue) -> None:
    """Open-loop sender in its own process; latency counted from each request's scheduled time.

    Sends its start time first (once imports are done, so a slow process start is not counted as
    latency), then the records.
    """
    host = "127.0.0.1"
    assert host in ALLOWED_HOSTS
    warmup = int(rate * WARMUP_S)  # the same load for WARMUP_S before t=0: connections open, caches warm
    reqs = reqs[:warmup] + reqs
    start_at = time.time() + 0.5 + WARMUP_S
    out.put(start_at)

    async def main() -> list[dict]:
        pool = ConnectionPool(host, port, max_connections)
        records: list[dict] = []

        async def one(i: int) -> None:
            kind, method, path, body = reqs[i]
            scheduled = start_at + (i - warmup) / rate
            delay = scheduled - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            conn = await pool.get()
            rec: dict = {"t": round(scheduled - start_at, 4), "kind": kind}
            try:
                status, payload = await asyncio.wait_for(conn.request(method, path, body), timeout=30)
                rec.update(status=status, ms=round((time.time() - scheduled) * 1e3, 2))
                if kind != "event" and status == 200:
                    data = json.loads(payload)
                    rec.update(fallback=data["fallback"], version=data["candidates_version"], n=len(data["items"]))
                pool.put(conn)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError) as exc:
                rec.update(status=None, error=type(exc).__name__, ms=round((time.time() - scheduled) * 1e3, 2))
                pool.discard(conn)
            records.append(rec)

        await asyncio.gather(*(one(i) for i in range(len(reqs))))
        pool.close()
        return [r for r in records if r["t"] >= 0]

    out.put(asyncio.run(main()))


def _phase(t: float, marks: dict[str, float]) -> str:
    if t < marks["freeze"]:
        return "1_steady"
    if t < marks["kill"]:
        return "2_redis_frozen"
    if t < marks["restart"]:
        return "3_redis_down"
    if t < marks["republished"]:
        return "4_restarted_empty_until_republish"
    return "5_after_republish"


def _summary(records: list[dict]) -> dict:
    statuses: dict[str, int] = {}
    fallbacks: dict[str, int] = {}
    for r in records:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
        if r["kind"] != "event" and r["status"] == 200:
            key = str(r.get("fallback"))
            fallbacks[key] = fallbacks.get(key, 0) + 1
    lat = np.asarray([r["ms"] for r in records]) if records else np.zeros(1)
    return {"requests": len(records), "statuses": statuses, "fallbacks": fallbacks,
            "p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2),
            "max_ms": round(float(lat.max()), 2)}


def _timeline(records: list[dict]) -> list[dict]:
    """Per second of schedule: requests, p50/p99 latency, recommendation fallbacks and 503s."""
    out = []
    for sec in range(int(max(r["t"] for r in records)) + 1):
        rs = [r for r in records if sec <= r["t"] < sec + 1]
        if not rs:
            continue
        lat = np.asarray([r["ms"] for r in rs])
        out.append({"s": sec, "n": len(rs), "p50_ms": round(float(np.percentile(lat, 50)), 1),
                    "p99_ms": round(float(np.percentile(lat, 99)), 1),
                    "fallbacks": sum(r.get("fallback") is not None for r in rs if r["kind"] != "event"),
                    "503": sum(r["status"] == 503 for r in rs)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--freeze-at", type=float, default=15.0)
    ap.add_argument("--kill-at", type=float, default=22.5)
    ap.add_argument("--restart-at", type=float, default=30.0)
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--items", type=int, default=500)
    ap.add_argument("--breaker-cooldown", type=float, default=1.0, help="seconds; 0 disables the circuit breaker")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "chaos_load.json"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="recsys-chaos-"))
    redis = PrivateRedis(work / "redis")
    redis.start()
    env = {**os.environ, "RECSYS_ARTIFACTS_DIR": str(work / "artifacts"), "RECSYS_STORE_URL": redis.url,
           "RECSYS_LOG_LEVEL": "WARNING", "RECSYS_RELOAD_INTERVAL_SECONDS": "1",
           "RECSYS_STORE_BREAKER_COOLDOWN_SECONDS": str(args.breaker_cooldown),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    data = work / "synth"
    subprocess.run([sys.executable, "-m", "cli", "data", "synth", "--users", str(args.users), "--items",
                    str(args.items), "--seed", str(args.seed), "--out", str(data)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    prepare(str(data), env)
    import polars as pl

    inter = pl.read_parquet(data / "interactions.parquet")
    users = sorted(str(u) for u in inter["user_id"].unique().to_list())
    items = sorted(str(i) for i in inter["item_id"].unique().to_list())
    rng = np.random.default_rng(args.seed)
    sample = [str(u) for u in rng.choice(users, size=min(500, len(users)), replace=False)]

    port = free_port()
    server = start_server(env, port)
    marks: dict[str, float] = {}
    refresh_out: dict = {}
    try:
        post_sessions(port, sample[:200], items, args.seed)
        version_before = json.loads(subprocess.run(
            [sys.executable, "-m", "cli", "version"], env=env, capture_output=True, text=True,
            check=True).stdout)["current"]
        n = int(args.rate * args.seconds)
        reqs = _requests(sample, items, n, args.seed)
        ctx = mp.get_context("spawn")
        q: mp.Queue = ctx.Queue()
        loader = ctx.Process(target=_load, args=(port, reqs, args.rate, 64, q))
        loader.start()
        start_at = q.get(timeout=120)

        def wait_until(t: float) -> None:
            time.sleep(max(0.0, start_at + t - time.time()))

        wait_until(args.freeze_at)
        redis.freeze()
        marks["freeze"] = time.time() - start_at
        wait_until(args.kill_at)
        redis.kill()
        marks["kill"] = time.time() - start_at
        wait_until(args.restart_at)
        marks["restart_begin"] = time.time() - start_at
        redis.start()  # same port, empty
        marks["restart"] = time.time() - start_at
        t = time.time()
        proc = subprocess.run([sys.executable, "-m", "cli", "refresh", "--data", str(data)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        marks["republished"] = time.time() - start_at  # the refresh process has exited
        refresh_out = {"exit_code": proc.returncode, "seconds": round(time.time() - t, 2),
                       "stderr_tail": proc.stderr[-500:]}
        records = q.get(timeout=args.seconds * 3 + 120)
        loader.join(30)
        version_after = json.loads(subprocess.run(
            [sys.executable, "-m", "cli", "version"], env=env, capture_output=True, text=True,
            check=True).stdout)["current"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
        redis.stop()

    phases: dict[str, list[dict]] = {}
    for r in records:
        phases.setdefault(_phase(r["t"], marks), []).append(r)
    recs = [r for r in records if r["kind"] != "event"]
    events = [r for r in records if r["kind"] == "event"]
    personalised = [r for r in recs if r["status"] == 200 and r.get("fallback") is None
                    and r.get("version") == version_after]
    first_back = min((r["t"] for r in personalised if r["t"] >= marks["restart"]), default=None)
    settled = [r for r in recs if r["t"] >= marks["republished"] + 3.0]  # reload interval 1 s, plus margin
    result = {
        "config": {"rate": args.rate, "seconds": args.seconds, "users": len(users), "items": len(items),
                   "breaker_cooldown_s": args.breaker_cooldown, "socket_timeout_s": 0.5,
                   "mix": "80% GET recommendations, 10% POST recommendations (inline session), 10% POST events"},
        "marks_s": {k: round(v, 2) for k, v in marks.items()},
        "version_before": version_before, "version_after": version_after,
        "refresh": refresh_out,
        "total": _summary(records),
        "recommendations": _summary(recs),
        "events": _summary(events),
        "phases": {name: {"all": _summary(rs), "recommendations": _summary([r for r in rs if r["kind"] != "event"]),
                          "events": _summary([r for r in rs if r["kind"] == "event"])}
                   for name, rs in sorted(phases.items())},
        "recovery": {"first_personalised_new_version_s": first_back,
                     # restart → refresh (load, ALS, FAISS, publish) → the server's reload poll (1 s)
                     "after_restart_s": round(first_back - marks["restart"], 2) if first_back else None,
                     "settled_requests": len(settled),
                     "settled_personalised": sum(r.get("fallback") is None and r.get("version") == version_after
                                                 for r in settled)},
    }
    checks = {
        "recommendations_all_200": all(r["status"] == 200 for r in recs),
        "no_5xx_except_events_503": all(r["status"] is not None and (r["status"] < 500 or (
            r["kind"] == "event" and r["status"] == 503)) for r in records),
        "events_202_or_503": all(r["status"] in (202, 503) for r in events),
        "no_connection_errors": all(r["status"] is not None for r in records),
        # Answered while Redis was out (from one second after the freeze until it started again).
        "fallback_marked_while_redis_out": all(
            r.get("fallback") == "store_unavailable" for r in recs
            if r["t"] >= marks["freeze"] + 1.0 and r["t"] + r["ms"] / 1e3 < marks["restart_begin"]),
        "new_version_published": version_after != version_before and refresh_out.get("exit_code") == 0,
        "personalised_after_recovery": bool(settled) and all(
            r.get("fallback") is None and r.get("version") == version_after for r in settled),
    }
    result["checks"] = checks
    result["timeline"] = _timeline(records)
    result["ok"] = all(checks.values())
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print("| phase | requests | statuses | recommendation fallbacks | p50 ms | p99 ms |\n|---|---|---|---|---|---|")
    for name, p in result["phases"].items():
        a, rc = p["all"], p["recommendations"]
        print(f"| {name} | {a['requests']} | {a['statuses']} | {rc['fallbacks']} | {a['p50_ms']} | {a['p99_ms']} |")
    print(json.dumps({"marks_s": result["marks_s"], "recovery": result["recovery"], "checks": checks}, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
