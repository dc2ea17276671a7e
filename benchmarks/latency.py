"""Latency benchmark: uvicorn in one process, the load generator in another, loopback only.

Measures client-side p50/p99 of GET /v1/users/{id}/recommendations?k=10 (100 candidates, a
3-event live session per user) and of GET /v1/users/{id}/candidates at the same fixed rate, in
alternating blocks of one run so that both see the same machine conditions. `client_lag_p99_ms` is
how late the load generator itself started requests (already included in the latencies).

    python benchmarks/latency.py --data ../shared/data/ml-100k --rate 200 --seconds 20

`--impressions` instead compares GET recommendations on two servers side by side on the same store,
one logging every served list to the impression log (the default) and one with
RECSYS_LOOP__LOG_IMPRESSIONS=false, in alternating blocks of one run:

    python benchmarks/latency.py --impressions --rate 200 --seconds 20   # -> results/latency_impressions.json

`--experiments` compares GET recommendations on three servers side by side (alternating blocks of one run),
each on its own store namespace: no experiment; a running two-variant A/B experiment over all users (both
variants the reranker, so the difference is the cost of assignment and labelling alone); a running
interleaving experiment over all users (reranker vs ALS order: one predict, a second sort, the team draft):

    python benchmarks/latency.py --experiments --rate 200 --seconds 20   # -> results/latency_experiments.json

`--explain` compares, on one server in alternating blocks of one run, GET recommendations as served by
default and with `explain=true` (LightGBM pred_contrib on the 10 returned rows):

    python benchmarks/latency.py --explain --rate 200 --seconds 20       # -> results/latency_explain.json
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
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import run_phase  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(data: str, env: dict[str, str]) -> None:
    """refresh + train-ranker with the real CLI, into a private artifacts dir and store namespace."""
    subprocess.run([sys.executable, "-m", "cli", "refresh", "--data", data], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "cli", "train-ranker", "--data", data, "--force"], env=env,
                   check=True, stdout=subprocess.DEVNULL)


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--host", "127.0.0.1", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180  # a loaded shared machine can take a minute to import and load
    last: object = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                last = json.loads(r.read())
                if last["status"] == "ready":  # type: ignore[index]
                    return proc
        except urllib.error.HTTPError as exc:
            last = exc.read()[:500]
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not become ready: last /readyz answer {last!r}")


def post_sessions(port: int, users: list[str], items: list[str], seed: int) -> None:
    rng = random.Random(seed)
    now = time.time()
    for u in users:
        body = [{"user_id": u, "item_id": rng.choice(items), "event": "click", "timestamp": now - 30 + j}
                for j in range(3)]
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/events", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).read()


def _client(port: int, users: list[str], rate: float, seconds: float, blocks: int, out: mp.Queue) -> None:
    async def main() -> dict[str, dict]:
        results: dict[str, list] = {"recommendations": [], "candidates": []}
        warm = [f"/v1/users/{u}/recommendations?k=10" for u in users[:50]]
        await run_phase("127.0.0.1", port, "warmup", warm, rate, 2.0)
        for _ in range(blocks):
            for name, tmpl in (("recommendations", "/v1/users/{}/recommendations?k=10"),
                               ("candidates", "/v1/users/{}/candidates?k=100")):
                phase = await run_phase("127.0.0.1", port, name, [tmpl.format(u) for u in users], rate,
                                        seconds / blocks)
                results[name].append(phase)
        summary = {}
        for name, phases in results.items():
            lat = [x for p in phases for x in p.latencies_ms]
            statuses: dict[int, int] = {}
            for p in phases:
                for k, v in p.statuses.items():
                    statuses[k] = statuses.get(k, 0) + v
            summary[name] = {"requests": len(lat) + sum(p.errors for p in phases),
                             "errors": sum(p.errors for p in phases), "statuses": statuses,
                             "p50_ms": float(np.percentile(lat, 50)), "p90_ms": float(np.percentile(lat, 90)),
                             "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(np.max(lat)),
                             # How late the client itself started requests (included in the latencies).
                             "client_lag_p99_ms": float(np.percentile([x for p in phases for x in p.lags_ms or [0.0]],
                                                                      99))}
        return summary

    out.put(asyncio.run(main()))


def _summary(phases: list[Any]) -> dict[str, Any]:
    lat = [x for p in phases for x in p.latencies_ms]
    statuses: dict[int, int] = {}
    for p in phases:
        for k, v in p.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    return {"requests": len(lat) + sum(p.errors for p in phases), "errors": sum(p.errors for p in phases),
            "statuses": statuses, "p50_ms": float(np.percentile(lat, 50)), "p90_ms": float(np.percentile(lat, 90)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(np.max(lat)),
            "client_lag_p99_ms": float(np.percentile([x for p in phases for x in p.lags_ms or [0.0]], 99)),
            "block_p50_ms": [float(np.percentile(p.latencies_ms, 50)) for p in phases if p.latencies_ms]}


def _client_ab(ports: dict[str, int], users: list[str], rate: float, seconds: float, blocks: int,
               out: mp.Queue) -> None:
    """GET recommendations against each server in turn, `blocks` alternating blocks each."""
    async def main() -> dict[str, dict]:
        paths = [f"/v1/users/{u}/recommendations?k=10" for u in users]
        for port in ports.values():
            await run_phase("127.0.0.1", port, "warmup", paths[:50], rate, 2.0)
        results: dict[str, list] = {name: [] for name in ports}
        for b in range(blocks):
            order = list(ports.items()) if b % 2 == 0 else list(reversed(ports.items()))
            for name, port in order:
                results[name].append(await run_phase("127.0.0.1", port, name, paths, rate, seconds / blocks))
        return {name: _summary(phases) for name, phases in results.items()}

    out.put(asyncio.run(main()))


def _client_explain(port: int, users: list[str], rate: float, seconds: float, blocks: int, out: mp.Queue) -> None:
    """GET recommendations, default and explain=true, in alternating blocks against one server."""
    async def main() -> dict[str, dict]:
        paths = {"default": [f"/v1/users/{u}/recommendations?k=10" for u in users],
                 "explain": [f"/v1/users/{u}/recommendations?k=10&explain=true" for u in users]}
        await run_phase("127.0.0.1", port, "warmup", paths["explain"][:50], rate, 2.0)
        results: dict[str, list] = {name: [] for name in paths}
        for b in range(blocks):
            for name in (("default", "explain") if b % 2 == 0 else ("explain", "default")):
                results[name].append(await run_phase("127.0.0.1", port, name, paths[name], rate, seconds / blocks))
        return {name: _summary(phases) for name, phases in results.items()}

    out.put(asyncio.run(main()))


def compare_explain(args: argparse.Namespace, env: dict[str, str], users: list[str], items: list[str]) -> dict:
    """One server; default vs explain=true in alternating blocks; returns both summaries."""
    port = free_port()
    server = start_server(env, port)
    try:
        post_sessions(port, users, items, args.seed)
        result = run_client(_client_explain, (port, users, args.rate, args.seconds, args.blocks),
                            timeout=args.seconds * 3 + 120)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
    result["p50_ratio_explain_default"] = result["explain"]["p50_ms"] / result["default"]["p50_ms"]
    return result


def compare_impressions(args: argparse.Namespace, env: dict[str, str], users: list[str], items: list[str]) -> dict:
    """Two servers, impression logging on / off, same store, alternating blocks; returns both summaries."""
    ports = {"impressions_on": free_port(), "impressions_off": free_port()}
    servers = [start_server(env, ports["impressions_on"]),
               start_server({**env, "RECSYS_LOOP__LOG_IMPRESSIONS": "false"}, ports["impressions_off"])]
    try:
        post_sessions(ports["impressions_on"], users, items, args.seed)
        result = run_client(_client_ab, (ports, users, args.rate, args.seconds, args.blocks),
                            timeout=args.seconds * 3 + 120)
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['impressions_on']}/metrics", timeout=5) as r:
            result["impressions_on"]["log_metrics"] = [line for line in r.read().decode().splitlines()
                                                       if line.startswith("recsys_log_records_total")]
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
            server.wait(20)
    on, off = result["impressions_on"], result["impressions_off"]
    result["p50_ratio_on_off"] = on["p50_ms"] / off["p50_ms"]
    return result


EXPERIMENT_SERVERS: dict[str, dict[str, Any] | None] = {
    "no_experiment": None,
    "ab_two_variants": {"name": "latency-ab", "kind": "ab",
                        "variants": [{"name": "control", "share": 0.5, "ranker": "model"},
                                     {"name": "treatment", "share": 0.5, "ranker": "model"}]},
    "interleaving": {"name": "latency-tdi", "kind": "interleaving",
                     "variants": [{"name": "als", "share": 0.5, "ranker": "als"},
                                  {"name": "ranker", "share": 0.5, "ranker": "model"}]},
}
ADMIN_TOKEN = "latency-admin-token"


def compare_experiments(args: argparse.Namespace, env: dict[str, str], work: Path, users: list[str],
                        items: list[str]) -> dict:
    """Three servers (no experiment / A/B / interleaving), each on its own namespace, alternating blocks."""
    ports = {name: free_port() for name in EXPERIMENT_SERVERS}
    servers = []
    try:
        for name, definition in EXPERIMENT_SERVERS.items():
            own = {**env, "RECSYS_STORE_NAMESPACE": f"{env['RECSYS_STORE_NAMESPACE']}{name}",
                   "RECSYS_ARTIFACTS_DIR": str(work / name), "RECSYS_ADMIN_TOKEN": ADMIN_TOKEN}
            prepare(args.data, own)
            servers.append(start_server(own, ports[name]))
            if definition is not None:
                req = urllib.request.Request(f"http://127.0.0.1:{ports[name]}/v1/admin/experiments",
                                             data=json.dumps(definition).encode(), method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "Authorization": f"Bearer {ADMIN_TOKEN}"})
                urllib.request.urlopen(req, timeout=10).read()
            post_sessions(ports[name], users, items, args.seed)
        result = run_client(_client_ab, (ports, users, args.rate, args.seconds, args.blocks),
                            timeout=len(ports) * args.seconds * 3 + 120)
        for name, port in ports.items():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                result[name]["experiment_metrics"] = [line for line in r.read().decode().splitlines()
                                                      if line.startswith("recsys_experiment_impressions_total")]
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
            server.wait(20)
    base = result["no_experiment"]
    for name in ("ab_two_variants", "interleaving"):
        result[f"{name}_p99_overhead_ms"] = result[name]["p99_ms"] - base["p99_ms"]
        result[f"{name}_p50_overhead_ms"] = result[name]["p50_ms"] - base["p50_ms"]
    return result


def run_client(target: Callable[..., None], args: tuple[Any, ...], timeout: float) -> Any:
    """Run a load generator in its own (spawned) process; `target(*args, queue)` puts its result on the queue."""
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    result = q.get(timeout=timeout)
    p.join(30)
    return result


def measure(port: int, users: list[str], rate: float, seconds: float, blocks: int = 4) -> dict[str, dict]:
    """Run the load generator in a separate process against the running server."""
    return run_client(_client, (port, users, rate, seconds, blocks), timeout=seconds * 3 + 120)


def write_comparison(args: argparse.Namespace, result: dict[str, Any], n_users: int, label: str,
                     names: Sequence[str]) -> None:
    """The side-by-side modes' output: the JSON (with the run's configuration) and one table row per arm."""
    result["config"] = {"rate": args.rate, "seconds": args.seconds, "blocks": args.blocks, "store": args.store,
                        "data": args.data, "users": n_users}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"| {label} | requests | errors | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|")
    for name in names:
        r = result[name]
        print(f"| {name} | {r['requests']} | {r['errors']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['max_ms']:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "ml-100k"))
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=20.0, help="per endpoint, split in alternating blocks")
    ap.add_argument("--store", default="redis://127.0.0.1:6379/13")
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", default=None, help="default benchmarks/results/latency.json "
                    "(latency_impressions.json with --impressions)")
    ap.add_argument("--impressions", action="store_true", help="compare impression logging on / off instead")
    ap.add_argument("--experiments", action="store_true", help="compare no experiment / a two-variant A/B / "
                    "interleaving instead (three servers)")
    ap.add_argument("--explain", action="store_true", help="compare GET recommendations default / explain=true")
    ap.add_argument("--blocks", type=int, default=4, help="alternating blocks per server (--impressions, "
                    "--experiments)")
    args = ap.parse_args()
    args.json = args.json or str(REPO / "benchmarks" / "results" /
                                 ("latency_impressions.json" if args.impressions else
                                  "latency_experiments.json" if args.experiments else
                                  "latency_explain.json" if args.explain else "latency.json"))

    work = Path(tempfile.mkdtemp(prefix="recsys-latency-"))
    ns = f"bench{os.getpid()}"
    env = {**os.environ, "RECSYS_ARTIFACTS_DIR": str(work / "artifacts"), "RECSYS_STORE_URL": args.store,
           "RECSYS_LOG_LEVEL": "WARNING",
           "RECSYS_RELOAD_INTERVAL_SECONDS": os.environ.get("RECSYS_RELOAD_INTERVAL_SECONDS", "5"),
           "RECSYS_STORE_NAMESPACE": ns}
    if not args.experiments:  # --experiments prepares one namespace per server
        prepare(args.data, env)
    from recsys.data.loaders import load_dataset

    ds = load_dataset(args.data)
    rng = np.random.default_rng(args.seed)
    all_users = sorted(ds.interactions["user_id"].unique().to_list())
    users = [str(u) for u in rng.choice(all_users, size=min(args.users, len(all_users)), replace=False)]
    items = sorted(ds.interactions["item_id"].unique().to_list())
    if args.explain:
        try:
            result = compare_explain(args, env, users, items)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            from recsys.store import open_store

            open_store(args.store, namespace=ns).wipe()
        write_comparison(args, result, len(users), "request", ("default", "explain"))
        print(f"p50 explain / default = {result['p50_ratio_explain_default']:.3f}")
        return
    if args.experiments:
        try:
            result = compare_experiments(args, env, work, users, items)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            from recsys.store import open_store

            for name in EXPERIMENT_SERVERS:
                open_store(args.store, namespace=f"{ns}{name}").wipe()
        write_comparison(args, result, len(users), "server", EXPERIMENT_SERVERS)
        print(f"p99 overhead vs no experiment: A/B {result['ab_two_variants_p99_overhead_ms']:+.2f} ms, "
              f"interleaving {result['interleaving_p99_overhead_ms']:+.2f} ms")
        return
    if args.impressions:
        try:
            result = compare_impressions(args, env, users, items)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            from recsys.store import open_store

            open_store(args.store, namespace=ns).wipe()
        write_comparison(args, result, len(users), "server", ("impressions_on", "impressions_off"))
        print(f"p50 on / off = {result['p50_ratio_on_off']:.3f}; {result['impressions_on']['log_metrics']}")
        return
    port = free_port()
    server = start_server(env, port)
    try:
        post_sessions(port, users, items, args.seed)
        result = measure(port, users, args.rate, args.seconds)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
        shutil.rmtree(work, ignore_errors=True)
        from recsys.store import open_store

        open_store(args.store, namespace=ns).wipe()
    rec, cand = result["recommendations"], result["candidates"]
    result["ratio_p50"] = rec["p50_ms"] / cand["p50_ms"]
    result["config"] = {"rate": args.rate, "seconds": args.seconds, "store": args.store, "data": args.data,
                        "users": len(users)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print("| endpoint | requests | errors | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|")
    for name in ("recommendations", "candidates"):
        r = result[name]
        print(f"| {name} | {r['requests']} | {r['errors']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['max_ms']:.2f} |")
    print(f"recommendations p50 / candidates p50 = {result['ratio_p50']:.2f}; client start lateness p99: "
          f"{rec['client_lag_p99_ms']:.2f} / {cand['client_lag_p99_ms']:.2f} ms")


if __name__ == "__main__":
    main()
