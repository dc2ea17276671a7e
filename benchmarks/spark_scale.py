"""Spark engine (local[2]) against the implicit engine at 100k and 1M synthetic users: `recsys refresh
--engine spark|local`, one CLI process per run, against a private redis-server.

    nice -n 10 python benchmarks/spark_scale.py --sizes 100000                # both engines
    nice -n 10 python benchmarks/spark_scale.py --sizes 1000000 --engines spark
    python benchmarks/spark_scale.py --table-only

Per run: wall seconds per stage (the refresh's own `event=stage_done` lines), process wall time, peak
RSS sampled from /proc every 0.2 s, split into the driver (the Python process `recsys refresh` runs
in), the JVM (in local mode the Spark driver and its executor are one JVM) and the Python workers the
JVM starts (the executors' Python side: top-N and store writes), plus the whole process tree; Redis
bytes per user (INFO used_memory delta over the published version ÷ users) and the mean candidate
value length. Data sets, seeds and helpers are benchmarks/scale.py's (same synthetic generator,
50k items, seed 7). Results merge into benchmarks/results/spark_scale.json by (engine, users).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import DONE_RE, REPO, RESULTS, STAGE_RE, ensure_data, machine, sample_user_ids, start_private_redis  # noqa: E402

GiB = 2**30


def process_rss() -> dict[int, tuple[int, str, int]]:
    """pid → (ppid, command name, RSS bytes), from /proc."""
    out: dict[int, tuple[int, str, int]] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                text = fh.read()
            name = text[text.index("(") + 1:text.rindex(")")]
            fields = text.rsplit(")", 1)[1].split()
            out[int(entry)] = (int(fields[1]), name, int(fields[21]) * page)
        except (OSError, ValueError, IndexError):
            continue
    return out


def rss_split(root: int) -> dict[str, int]:
    """RSS of the driver (root), the JVM(s) below it, the Python workers below the JVM, and the tree."""
    procs = process_rss()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    split = {"driver": procs.get(root, (0, "", 0))[2], "jvm": 0, "workers": 0, "tree": 0}
    stack = [(root, False)]
    while stack:
        pid, under_jvm = stack.pop()
        _, name, rss = procs.get(pid, (0, "", 0))
        split["tree"] += rss
        if pid != root:
            if name == "java":
                split["jvm"] += rss
            elif under_jvm:
                split["workers"] += rss
        stack.extend((c, under_jvm or name == "java") for c in children.get(pid, []))
    return split


def run(engine: str, users: int, data: Path, url: str, master: str, driver_memory: str, sample: int) -> dict:
    client = redis.Redis.from_url(url)
    client.flushdb()
    mem_before = int(client.info("memory")["used_memory"])
    work = Path(tempfile.mkdtemp(prefix=f"recsys-spark-scale-{engine}-"))
    log_path = work / "refresh.log"
    env = {**os.environ, "RECSYS_ARTIFACTS_DIR": str(work / "artifacts"), "RECSYS_STORE_URL": url,
           "RECSYS_VERSION_GRACE_SECONDS": "0", "RECSYS_LOG_LEVEL": "INFO", "RECSYS_ARTIFACTS_STORAGE": "files",
           "RECSYS_SPARK__MASTER": master, "RECSYS_SPARK__DRIVER_MEMORY": driver_memory,
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "cli", "refresh", "--data", str(data), "--engine", engine]
    load_before = os.getloadavg()
    started = time.perf_counter()
    peak = {"driver": 0, "jvm": 0, "workers": 0, "tree": 0}
    with log_path.open("w") as log_fh:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log_fh, cwd=REPO)
        done = threading.Event()

        def sampler() -> None:
            while not done.is_set():
                for k, v in rss_split(proc.pid).items():
                    peak[k] = max(peak[k], v)
                done.wait(0.2)

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        thread.join()
    wall = time.perf_counter() - started
    text = log_path.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{engine} refresh failed for {data}; log: {log_path}\n{text[-3000:]}")
    stages = {s: float(w) for _, s, w, _ in STAGE_RE.findall(text)}
    version = DONE_RE.search(text).group(1)  # type: ignore[union-attr]
    mem_after = int(client.info("memory")["used_memory"])
    ids = sample_user_ids(data, sample, seed=1)
    # Through the store's own reader: the key layout is the store package's business (keys.py).
    from recsys.store import open_store

    store = open_store(url)
    cand_len = [len(c or b"") for c, _ in store.read_user_blobs(version, ids)]
    store.close()
    row = {"engine": engine, "users": users, "master": master if engine == "spark" else "-",
           "interactions": int(pl.scan_parquet(data / "interactions.parquet").select(pl.len()).collect().item()),
           "stages": stages, "stage_wall_s": round(sum(stages.values()), 1), "process_wall_s": round(wall, 1),
           "process_cpu_s_driver": round(usage.ru_utime + usage.ru_stime, 1),
           "peak_rss_bytes": peak, "ru_maxrss_driver_bytes": usage.ru_maxrss * 1024,
           "redis_bytes_per_user_info": round((mem_after - mem_before) / users, 1),
           "candidate_value_bytes": round(float(np.mean(cand_len)), 1),
           "redis_keys": int(client.dbsize()),
           "loadavg_before": [round(x, 2) for x in load_before],
           "loadavg_after": [round(x, 2) for x in os.getloadavg()],
           "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "log": str(log_path)}
    client.flushdb()
    return row


def table(rows: list[dict]) -> str:
    stages: list[str] = []
    for r in rows:
        stages += [s for s in r["stages"] if s not in stages]
    head = ("| engine | users | " + " | ".join(stages) + " | refresh total | process wall | peak RSS driver / JVM / "
            "workers / tree (GiB) | Redis B/user | cand. value B | load avg |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in sorted(rows, key=lambda r: (r["users"], r["engine"])):
        p = r["peak_rss_bytes"]
        cells = [r["engine"] + (f" {r['master']}" if r["engine"] == "spark" else ""), f"{r['users']:,}"]
        cells += [f"{r['stages'][s]:.1f}" if s in r["stages"] else "–" for s in stages]
        cells += [f"**{r['stage_wall_s']:.0f} s**", f"{r['process_wall_s']:.0f} s",
                  " / ".join(f"{p[k] / GiB:.2f}" for k in ("driver", "jvm", "workers", "tree")),
                  f"{r['redis_bytes_per_user_info']:.0f}",
                  "–" if r["candidate_value_bytes"] is None else f"{r['candidate_value_bytes']:.0f}",
                  f"{r['loadavg_before'][0]:.1f}–{r['loadavg_after'][0]:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--engines", default="local,spark")
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--data-root", default=str(Path(tempfile.gettempdir()) / "recsys-scale"))
    ap.add_argument("--sample", type=int, default=1000)
    ap.add_argument("--json", default=str(RESULTS / "spark_scale.json"))
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    path = Path(args.json)
    result = json.loads(path.read_text()) if path.exists() else {"runs": []}
    if not args.table_only:
        server, url = start_private_redis(Path(tempfile.mkdtemp(prefix="recsys-spark-scale-redis-")))
        try:
            for users in (int(s) for s in args.sizes.split(",")):
                data = ensure_data(users, args.items, args.seed, Path(args.data_root), None)
                for engine in args.engines.split(","):
                    row = run(engine, users, data, url, args.master, args.driver_memory, args.sample)
                    print(json.dumps(row), flush=True)
                    result["runs"] = [r for r in result["runs"]
                                      if (r["engine"], r["users"]) != (engine, users)] + [row]
                    result["machine"] = machine()
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps(result, indent=2))
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(table(result["runs"]))


if __name__ == "__main__":
    main()
