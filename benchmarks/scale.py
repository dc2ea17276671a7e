"""Scale benchmark: `recsys refresh` on synthetic data at 10k, 100k and 1M users, one CLI process each.

    python benchmarks/scale.py                         # all sizes (generates missing data sets)
    python benchmarks/scale.py --sizes 1000000 --data-1m /tmp/synth-1m   # one size, merged into the JSON
    python benchmarks/scale.py --plot-only             # redraw the plot and table from the JSON
    python benchmarks/scale.py --data /work/shared/data/ml-100k   # any data set: bytes per user (JSON "datasets")

Per size: wall and CPU seconds per stage (from the refresh's own `event=stage_done` log lines), the
process's wall time (interpreter start and imports included), peak RSS of the process tree (sampled
from /proc every 0.1 s, and the kernel's ru_maxrss of the child, whichever is larger), Redis bytes
per user from Redis itself (INFO used_memory delta over the published version ÷ the version's users,
and MEMORY USAGE of a seeded sample of users' keys: one value per user since store layout 3), and the
load average around the run (the
machine is shared: CPU seconds are the contention-free measure, wall seconds what a user waits).

Redis: by default a private `redis-server` on a free loopback port, started and stopped here, so that
INFO used_memory counts this benchmark's keys only (other developers write to the shared server
while it runs). `--redis redis://127.0.0.1:6379/11` uses a db of an existing server instead: that db
belongs to this benchmark and is flushed before each run; its used_memory delta is then only
approximate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from recsys.store.keys import Keys  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
STAGE_RE = re.compile(r"event=stage_done job=(\w+) stage=(\w+) wall_s=([\d.]+) cpu_s=([\d.]+)")
DONE_RE = re.compile(r"event=refresh_done version=(\S+)")
SIZES = (10_000, 100_000, 1_000_000)


def tree_rss_bytes(root: int) -> int:
    """RSS of `root` and all its descendants, from /proc (no psutil)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def start_private_redis(work: Path) -> tuple[subprocess.Popen, str]:
    """A throw-away redis-server (no persistence) on a free loopback port."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server not found: install it or pass --redis redis://HOST:PORT/DB")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    work.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            if client.ping():
                return proc, url
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.terminate()
    raise SystemExit("private redis-server did not start")


def ensure_data(users: int, items: int, seed: int, root: Path, override: str | None) -> Path:
    if override:
        return Path(override)
    out = root / f"synth-{users}"
    if not (out / "interactions.parquet").exists():
        subprocess.run([sys.executable, "-m", "cli", "data", "synth", "--users", str(users), "--items",
                        str(items), "--seed", str(seed), "--out", str(out)], check=True, cwd=REPO)
    return out


def sample_user_keys(client: redis.Redis, version: str, n: int, seed: int) -> tuple[list[str], int]:
    """A seeded sample of the version's per-user keys (sorted SCAN, then a seeded choice), and how many
    there are (one per user since store layout 3; two before: candidates and history)."""
    keys = sorted(k.decode() for k in client.scan_iter(match=Keys().version_prefix(version) + "*", count=10_000))
    keys = [k for k in keys if "{u" in k]  # user keys carry the hash tag {u<user>}
    rng = np.random.default_rng(seed)
    return [keys[i] for i in sorted(rng.choice(len(keys), size=min(n, len(keys)), replace=False).tolist())], len(keys)


def run_size(data: Path, url: str, index: str | None, sample: int) -> dict:
    client = redis.Redis.from_url(url)
    client.flushdb()  # this db belongs to the benchmark
    mem_before = int(client.info("memory")["used_memory"])
    work = Path(tempfile.mkdtemp(prefix="recsys-scale-"))
    log_path = work / "refresh.log"
    env = {**os.environ, "RECSYS_ARTIFACTS_DIR": str(work / "artifacts"), "RECSYS_STORE_URL": url,
           "RECSYS_VERSION_GRACE_SECONDS": "0", "RECSYS_LOG_LEVEL": "INFO",
           # Per-user memory is the figure here: the item-side bundle stays on disk (in the store it adds
           # its size once per kept version, independent of the number of users; see docs/scale-out.md).
           "RECSYS_ARTIFACTS_STORAGE": "files",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "cli", "refresh", "--data", str(data)]
    if index:
        cmd += ["--index", index]
    load_before = os.getloadavg()
    started = time.perf_counter()
    with log_path.open("w") as log_fh:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log_fh, cwd=REPO)
        peak = [0]
        done = threading.Event()

        def sample_rss() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss_bytes(proc.pid))
                done.wait(0.1)

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    wall = time.perf_counter() - started
    load_after = os.getloadavg()
    text = log_path.read_text()
    if proc.returncode != 0:
        raise SystemExit(f"refresh failed ({proc.returncode}) for {data}; log: {log_path}\n{text[-3000:]}")
    stages: dict[str, dict[str, float]] = {}
    for _, stage, wall_s, cpu_s in STAGE_RE.findall(text):
        stages[stage] = {"wall_s": float(wall_s), "cpu_s": float(cpu_s)}
    version = DONE_RE.search(text).group(1)  # type: ignore[union-attr]
    mem_after = int(client.info("memory")["used_memory"])
    n_keys = int(client.dbsize())
    meta = json.loads(client.get(Keys().meta(version)) or b"{}")
    users = int(meta["users"])
    user_keys, n_user_keys = sample_user_keys(client, version, sample, seed=1)
    key_usage = [client.memory_usage(k, samples=0) or 0 for k in user_keys]
    value_len = [client.strlen(k) for k in user_keys]
    row = {
        "users": users, "items": int(meta["items"]), "interactions": int(meta.get("interactions", 0)),
        "data": str(data), "layout": meta.get("layout"),
        "index": index or "auto",
        "stages": stages,
        "stage_wall_s": round(sum(s["wall_s"] for s in stages.values()), 2),
        "stage_cpu_s": round(sum(s["cpu_s"] for s in stages.values()), 2),
        "process_wall_s": round(wall, 2),
        "process_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_bytes": max(peak[0], usage.ru_maxrss * 1024),
        "peak_rss_sampled_bytes": peak[0],
        "ru_maxrss_bytes": usage.ru_maxrss * 1024,
        "redis_keys": n_keys,
        "redis_used_memory_delta_bytes": mem_after - mem_before,
        "redis_bytes_per_user_info": round((mem_after - mem_before) / users, 1),
        "redis_user_key_bytes_memory_usage": round(float(np.mean(key_usage)), 1),
        "user_value_bytes": round(float(np.mean(value_len)), 1),
        "user_keys_per_user": round(n_user_keys / users, 2),
        "memory_usage_sample_users": len(user_keys),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "log": str(log_path),
    }
    client.flushdb()
    return row


def machine() -> dict:
    mem = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    return {"cpus": os.cpu_count(), "memory_bytes": mem, "python": platform.python_version(),
            "platform": platform.platform(), "commit": commit.stdout.strip()}


GiB = 2**30


def markdown_table(rows: list[dict]) -> str:
    stages = ["load", "code", "matrix", "als", "faiss", "covisit", "itemknn", "bundle", "bundle_write", "publish"]
    head = ("| users | interactions | " + " | ".join(stages) + " | refresh total | process wall (CPU) | "
            "peak RSS | Redis B/user (INFO) | user key B | load avg |")
    sep = "|" + "---|" * (head.count("|") - 1)
    lines = [head, sep]
    for r in rows:
        key_bytes = r.get("redis_user_key_bytes_memory_usage", r.get("redis_candidate_key_bytes_memory_usage", 0))
        cells = [f"{r['users']:,}", f"{r['interactions'] / 1e6:.1f} M"]
        cells += [f"{r['stages'].get(s, {}).get('wall_s', 0):.1f}" for s in stages]
        cells += [f"**{r['stage_wall_s']:.0f} s**", f"{r['process_wall_s']:.0f} s ({r['process_cpu_s']:.0f} s)",
                  f"{r['peak_rss_bytes'] / GiB:.2f} GiB", f"{r['redis_bytes_per_user_info']:.0f}",
                  f"{key_bytes:.0f}",
                  f"{r['loadavg_before'][0]:.1f}–{r['loadavg_after'][0]:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["users"])
    users = np.array([r["users"] for r in rows], dtype=float)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    stages = ["load", "code", "als", "faiss", "covisit", "itemknn", "publish"]
    for s in stages:
        ax1.plot(users, [r["stages"].get(s, {}).get("wall_s", np.nan) for r in rows], marker="o", label=s)
    ax1.plot(users, [r["stage_wall_s"] for r in rows], marker="s", color="black", linewidth=2, label="total")
    ax1.plot(users, [r["stage_cpu_s"] for r in rows], marker="s", color="black", linestyle=":", label="total CPU")
    ax1.axhline(600, color="red", linestyle="--", linewidth=1)
    ax1.text(users[0], 640, "target: 10 min", color="red", fontsize=8)
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("users (50 interactions each, 50k items)")
    ax1.set_ylabel("seconds (wall)")
    ax1.set_title("refresh time per stage")
    ax1.legend(fontsize=7, ncol=2)
    ax1.grid(True, which="both", alpha=0.3)
    ax2.plot(users, [r["peak_rss_bytes"] / GiB for r in rows], marker="o", label="peak RSS (GiB)")
    ax2.plot(users, [r["redis_used_memory_delta_bytes"] / GiB for r in rows], marker="o",
             label="Redis used_memory (GiB)")
    ax2.axhline(8, color="red", linestyle="--", linewidth=1)
    ax2.text(users[0], 8.3, "target: 8 GiB RSS", color="red", fontsize=8)
    ax2.set_xscale("log")
    ax2.set_xlabel("users")
    ax2.set_ylabel("GiB")
    ax2.set_title("memory")
    ax2.legend(fontsize=8)
    ax2.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data-root", default=str(Path(tempfile.gettempdir()) / "recsys-scale"))
    ap.add_argument("--data-1m", default=None, help="an existing 1M-user synth directory (same seed/items)")
    ap.add_argument("--index", default=None, help="FAISS index (default: the refresh's own, auto)")
    ap.add_argument("--data", default=None,
                    help="one existing data set (e.g. ml-100k) instead of --sizes: kept under `datasets` in the JSON")
    ap.add_argument("--redis", default="spawn",
                    help="'spawn' (a private redis-server) or redis://HOST:PORT/DB (flushed before each run)")
    ap.add_argument("--sample", type=int, default=2000, help="users whose keys get MEMORY USAGE")
    ap.add_argument("--json", default=str(RESULTS / "scale.json"))
    ap.add_argument("--plot", default=str(RESULTS / "scale.png"))
    ap.add_argument("--plot-only", action="store_true")
    args = ap.parse_args()

    json_path = Path(args.json)
    result = json.loads(json_path.read_text()) if json_path.exists() else {"runs": []}
    server = None
    url = args.redis
    if not args.plot_only and args.redis == "spawn":
        server, url = start_private_redis(Path(tempfile.mkdtemp(prefix="recsys-scale-redis-")))
    try:
        if args.data and not args.plot_only:
            row = run_size(Path(args.data), url, args.index, args.sample)
            row["redis"] = "private redis-server" if server else args.redis
            row["machine"] = machine()
            print(json.dumps(row, indent=2), flush=True)
            result.setdefault("datasets", {})[Path(args.data).name] = row
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(result, indent=2))
        for users in ([] if args.plot_only or args.data else [int(s) for s in args.sizes.split(",")]):
            data = ensure_data(users, args.items, args.seed, Path(args.data_root),
                               args.data_1m if users == 1_000_000 else None)
            row = run_size(data, url, args.index, args.sample)
            row["redis"] = "private redis-server" if server else args.redis
            print(json.dumps(row, indent=2), flush=True)
            result["runs"] = [r for r in result["runs"] if r["users"] != users] + [row]
            result["runs"].sort(key=lambda r: r["users"])
            result["machine"] = machine()
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(result, indent=2))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    if result["runs"]:
        plot(result["runs"], Path(args.plot))
        print(markdown_table(result["runs"]))


if __name__ == "__main__":
    main()
