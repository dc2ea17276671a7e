"""Redis Cluster failover under load: a master is killed, its replica takes over, serving never fails.

A private local Redis Cluster (3 masters + 3 replicas, loopback, node timeout 2 s) holds the candidates,
sessions and artifacts; `recsys serve` runs on it while a separate process sends open-loop load (default
200 requests/s for 40 s: 80 % GET recommendations, 10 % POST recommendations with an inline session,
10 % POST events). At `--kill-at` seconds one master is SIGKILLed; the cluster promotes its replica
after the node timeout. Recorded per request: status, latency from the scheduled send time, `fallback`.

Checks: no 5xx (events may answer 202 buffered), no connection errors; recommendations answered while
the slot had no master are marked `store_unavailable`; every recommendation from `--settle` seconds
after the promotion on is personalised again. Figures: requests, statuses, the share of fallbacks
during the failover window, seconds from the kill to the promotion and to personalised-again.

    python benchmarks/failover.py --rate 200 --seconds 40 --kill-at 10
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
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
from chaos_load import _load, _requests, _summary, _timeline  # noqa: E402
from latency import free_port, post_sessions, prepare, start_server  # noqa: E402

from tests.redis_cluster import LocalRedisCluster, cluster_ok  # noqa: E402


def _promoted(cluster: LocalRedisCluster, dead: int, timeout_s: float = 60.0) -> float:
    """Wait until the cluster is ok again with three masters, none of them the dead one; returns when."""
    deadline = time.monotonic() + timeout_s
    alive = [p for p in cluster.ports if p != dead]
    while time.monotonic() < deadline:
        try:
            if cluster_ok(alive[0]) and dead not in cluster.masters() and len(cluster.masters()) == 3:
                return time.time()
        except Exception:  # a node mid-election may refuse CLUSTER NODES for a moment
            pass
        time.sleep(0.05)
    raise RuntimeError("the replica was never promoted")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--kill-at", type=float, default=10.0)
    ap.add_argument("--settle", type=float, default=3.0, help="seconds after the promotion before every "
                    "answer must be personalised (client topology refresh + reload poll)")
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--items", type=int, default=500)
    ap.add_argument("--breaker-cooldown", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "failover.json"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="recsys-failover-"))
    cluster = LocalRedisCluster(work / "cluster")
    cluster.start()
    env = {**os.environ, "RECSYS_ARTIFACTS_DIR": str(work / "artifacts"), "RECSYS_STORE_URL": cluster.url,
           "RECSYS_LOG_LEVEL": "WARNING", "RECSYS_RELOAD_INTERVAL_SECONDS": "1",
           "RECSYS_STORE_BREAKER_COOLDOWN_SECONDS": str(args.breaker_cooldown),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    server = None
    try:
        data = work / "synth"
        subprocess.run([sys.executable, "-m", "cli", "data", "synth", "--users", str(args.users), "--items",
                        str(args.items), "--seed", str(args.seed), "--out", str(data)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        prepare(str(data), env)  # refresh + train-ranker: candidates, sessions and artifacts in the cluster
        import polars as pl

        inter = pl.read_parquet(data / "interactions.parquet")
        users = sorted(str(u) for u in inter["user_id"].unique().to_list())
        items = sorted(str(i) for i in inter["item_id"].unique().to_list())
        rng = np.random.default_rng(args.seed)
        sample = [str(u) for u in rng.choice(users, size=min(500, len(users)), replace=False)]
        port = free_port()
        server = start_server(env, port)
        post_sessions(port, sample[:200], items, args.seed)
        reqs = _requests(sample, items, int(args.rate * args.seconds), args.seed)
        ctx = mp.get_context("spawn")
        q: mp.Queue = ctx.Queue()
        loader = ctx.Process(target=_load, args=(port, reqs, args.rate, 64, q))
        loader.start()
        start_at = q.get(timeout=120)
        time.sleep(max(0.0, start_at + args.kill_at - time.time()))
        dead = cluster.masters()[0]
        cluster.kill_node(dead)
        killed = time.time() - start_at
        promoted = _promoted(cluster, dead) - start_at
        records = q.get(timeout=args.seconds * 3 + 120)
        loader.join(30)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(20)
        cluster.stop()

    recs = [r for r in records if r["kind"] != "event"]
    events = [r for r in records if r["kind"] == "event"]
    window = [r for r in recs if killed <= r["t"] < promoted]
    after = [r for r in recs if r["t"] >= killed]
    unpersonalised = [r["t"] for r in after if r["status"] != 200 or r.get("fallback") is not None]
    back = max(unpersonalised) if unpersonalised else killed
    settled = [r for r in recs if r["t"] >= promoted + args.settle]
    result = {
        "config": {"rate": args.rate, "seconds": args.seconds, "users": len(users), "items": len(items),
                   "nodes": "3 masters + 3 replicas, cluster-node-timeout 2000 ms",
                   "breaker_cooldown_s": args.breaker_cooldown, "killed_master_port": dead,
                   "mix": "80% GET recommendations, 10% POST recommendations (inline session), 10% POST events"},
        "marks_s": {"master_killed": round(killed, 2), "replica_promoted": round(promoted, 2)},
        "total": _summary(records), "recommendations": _summary(recs), "events": _summary(events),
        "failover_window": {**_summary(window),
                            "fallback_share": round(sum(r.get("fallback") is not None for r in window)
                                                    / max(len(window), 1), 3)},
        "recovery": {"promotion_after_kill_s": round(promoted - killed, 2),
                     "personalised_again_after_kill_s": round(back - killed, 2),
                     "last_fallback_at_s": round(back, 2)},
    }
    checks = {
        "no_5xx": all(r["status"] is not None and r["status"] < 500 for r in records),
        "no_connection_errors": all(r["status"] is not None for r in records),
        "fallbacks_are_marked_store_unavailable": all(r.get("fallback") in (None, "store_unavailable")
                                                      for r in after if r["status"] == 200),
        "personalised_after_failover": bool(settled) and all(r.get("fallback") is None for r in settled),
    }
    result["checks"] = checks
    result["timeline"] = _timeline(records)
    result["ok"] = all(checks.values())
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("marks_s", "total", "failover_window", "recovery", "checks")},
                     indent=2))
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
