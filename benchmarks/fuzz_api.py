"""Schemathesis against the live API, loopback only: no 5xx, every error a documented 4xx (or 503).

Builds a small synthetic service (refresh + train-ranker) on a private redis-server, starts
`recsys serve`, and runs the schemathesis CLI with every check, in two runs:

1. `healthy`: Redis up. Every check, including not_a_server_error.
2. `redis_down`: the private Redis stopped. 503 is then the designed answer of the store-backed
   operations (events, candidates), so not_a_server_error is left out and the script checks instead
   that every 5xx the server counted is a 503 (status_code_conformance still requires it documented).

Status counts come from the server's own /metrics (recsys_requests_total), read before and after
each run. Results go to benchmarks/results/fuzz.json.

    python benchmarks/fuzz_api.py --max-examples 200
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from latency import free_port, prepare, start_server  # noqa: E402

from tests.redis_server import PrivateRedis  # noqa: E402

TOKEN = "fuzz-admin-token"
_METRIC = re.compile(r'^recsys_requests_total\{endpoint="([^"]*)",method="([^"]*)",status="(\d+)"\} ([0-9.e+]+)$')


def status_counts(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = _METRIC.match(line)
        if m and m.group(1) != "/metrics":  # our own scrapes are not fuzz traffic
            out[m.group(3)] = out.get(m.group(3), 0) + int(float(m.group(4)))
    return out


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in sorted(after) if after[k] - before.get(k, 0)}


def run_schemathesis(port: int, name: str, work: Path, max_examples: int, seed: int, workers: int,
                     exclude_checks: list[str]) -> dict:
    report = work / f"schemathesis-{name}.json"
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"http://127.0.0.1:{port}/openapi.json",
           "--checks", "all", "--max-examples", str(max_examples), "--seed", str(seed), "--workers", str(workers),
           "-H", f"Authorization: Bearer {TOKEN}", "--report", "json", "--report-json-path", str(report),
           "--request-timeout", "10"]
    if exclude_checks:
        cmd += ["--exclude-checks", ",".join(exclude_checks)]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - t
    (work / f"schemathesis-{name}.txt").write_text(proc.stdout + proc.stderr)
    rep = json.loads(report.read_text())
    return {"name": name, "exit_code": proc.returncode, "seconds": round(seconds, 1),
            "max_examples_per_operation": max_examples, "seed": seed, "excluded_checks": exclude_checks,
            "operations_tested": rep["operations"]["tested"], "test_cases": rep["test_cases"]["generated"],
            "cases_with_failures": rep["test_cases"]["with_failures"],
            "unique_failures": rep["test_cases"]["unique_failures"], "errors": len(rep["errors"]),
            "phases": {k: v["status"] for k, v in rep["phases"].items()},
            "failures": [{k: f.get(k) for k in ("operation", "title", "code", "message")}
                         for f in rep["failures"]][:20],
            "schemathesis_version": rep["schemathesis_version"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-examples", type=int, default=200, help="per operation, healthy run")
    ap.add_argument("--down-examples", type=int, default=50, help="per operation, Redis-down run")
    ap.add_argument("--seed", type=int, default=1)
    # More than one worker trips a CPython 3.11 ast.parse race inside hypothesis ("AST constructor recursion
    # depth mismatch"), an error of the tool, not of the API.
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "fuzz.json"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="recsys-fuzz-"))
    redis = PrivateRedis(work / "redis")
    redis.start()
    env = {**os.environ, "RECSYS_ARTIFACTS_DIR": str(work / "artifacts"), "RECSYS_STORE_URL": redis.url,
           "RECSYS_LOG_LEVEL": "WARNING", "RECSYS_ADMIN_TOKEN": TOKEN, "RECSYS_RELOAD_INTERVAL_SECONDS": "2",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    server = None
    try:
        data = work / "synth"
        subprocess.run([sys.executable, "-m", "cli", "data", "synth", "--users", str(args.users), "--items",
                        str(args.items), "--seed", str(args.seed), "--out", str(data)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        prepare(str(data), env)
        port = free_port()
        server = start_server(env, port)
        runs = []
        before = status_counts(port)
        run = run_schemathesis(port, "healthy", work, args.max_examples, args.seed, args.workers, [])
        after = status_counts(port)
        run["statuses"] = diff(after, before)
        runs.append(run)
        redis.stop()
        before = after
        run = run_schemathesis(port, "redis_down", work, args.down_examples, args.seed + 1, args.workers,
                               ["not_a_server_error"])
        run["statuses"] = diff(status_counts(port), before)
        runs.append(run)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(20)
        redis.stop()
    for r in runs:
        r["requests"] = sum(r["statuses"].values())
        r["5xx"] = sum(v for k, v in r["statuses"].items() if k.startswith("5"))
        r["5xx_other_than_503"] = sum(v for k, v in r["statuses"].items() if k.startswith("5") and k != "503")
    result = {"runs": runs, "config": {"users": args.users, "items": args.items, "store": "private redis-server",
                                       "workers": args.workers}}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print("| run | cases | requests | statuses | 5xx | unique failures |\n|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['name']} | {r['test_cases']} | {r['requests']} | "
              f"{', '.join(f'{k}: {v}' for k, v in r['statuses'].items())} | {r['5xx']} | {r['unique_failures']} |")
    ok = all(r["unique_failures"] == 0 and r["errors"] == 0 and r["5xx_other_than_503"] == 0 for r in runs)
    ok = ok and runs[0]["5xx"] == 0
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"FAILED: schemathesis output kept in {work}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
