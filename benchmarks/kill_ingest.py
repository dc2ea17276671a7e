"""`recsys ingest` SIGKILLed at random moments while events are posted through the API.

A `recsys serve` process takes a steady stream of events (POST /v1/events, batches of 10, each event
unique by its item id), which its background writer appends to the store's event log. Meanwhile this
script starts `recsys ingest` (the real command, small batches so a run commits many times) and
SIGKILLs it at a random moment of its ingest (uniform between the run's `job_started` log line and
the typical end of a run: most kills land between a file rename, a lake commit and a store
acknowledgement of some batch), again and again. After every kill it checks what any lake
reader would see (no id twice). At the end it stops posting, runs one ingest to completion and
compares the lake with what was posted: every accepted event exactly once, ids and count.

    python benchmarks/kill_ingest.py --kills 30                    # Redis (db 8, own namespace)
    python benchmarks/kill_ingest.py --kills 30 --store embedded   # the embedded SQLite file
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
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


class Poster(threading.Thread):
    """Posts batches of unique events at a steady pace; remembers every accepted one."""

    def __init__(self, port: int, rate_batches: float) -> None:
        super().__init__(daemon=True)
        self.port, self.interval = port, 1.0 / rate_batches
        self.accepted: list[str] = []
        self.failed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        seq = 0
        while not self.stop.is_set():
            now = time.time()
            batch = [{"user_id": f"k{(seq + j) % 97}", "item_id": f"e{seq + j}", "event": "click",
                      "timestamp": now - 5} for j in range(10)]
            seq += 10
            req = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1/events", data=json.dumps(batch).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    if r.status == 202:
                        self.accepted += [e["item_id"] for e in batch]
            except OSError:
                self.failed += len(batch)
            self.stop.wait(max(0.0, self.interval - (time.time() - now)))


class IngestProcess:
    """`recsys ingest` with its INFO log read on a thread: `started` is set when the job begins."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "cli", "ingest"], env={**env, "RECSYS_LOG_LEVEL": "INFO"},
                                     cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.started = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if "event=job_started job=ingest" in line:
                self.started.set()


def lake_view(lake_dir: Path) -> dict[str, object]:
    from recsys.data.lake import Lake

    lake = Lake(lake_dir)
    files = lake.files("events")
    raw = sum(int(__import__("polars").read_parquet(f.path).height) for f in files)
    events = lake.read_events()
    committed = lake.committed("events")
    from recsys.data.lake import id_key
    past_commit = sum(1 for f in files if committed is None or id_key(f.first_id) > id_key(committed))
    return {"rows": events.height, "unique_ids": events["id"].n_unique(), "raw_rows": raw, "files": len(files),
            "files_past_commit": past_commit, "tmp_files": len(list(lake_dir.glob("*/date=*/.tmp-*"))),
            "committed": committed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--store", default="redis://127.0.0.1:6379/8", help="a Redis URL, or 'embedded'")
    ap.add_argument("--batch", type=int, default=50, help="ingest batch (entries per lake file and commit)")
    ap.add_argument("--rate", type=float, default=40.0, help="event batches (of 10) posted per second")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="recsys-kill-ingest-"))
    store_url = f"embedded://{work / 'store.sqlite'}" if args.store == "embedded" else args.store
    ns = f"killingest{os.getpid()}"
    lake_dir = work / "lake"
    env = {**os.environ, "RECSYS_STORE_URL": store_url, "RECSYS_STORE_NAMESPACE": ns,
           "RECSYS_ARTIFACTS_DIR": str(work / "artifacts"), "RECSYS_LAKE_DIR": str(lake_dir),
           "RECSYS_LOOP__INGEST_BATCH": str(args.batch), "RECSYS_SCHEDULER__LOCK_TTL_SECONDS": "1",
           "RECSYS_LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO)}
    port = free_port()
    server = start_server(env, port)
    poster = Poster(port, args.rate)
    poster.start()
    kills: list[dict[str, object]] = []
    completed_runs = 0
    try:
        time.sleep(3)
        first = IngestProcess(env)  # one full run first: how long the ingest part takes here, to aim the kills
        first.started.wait(120)
        t0 = time.time()
        first.proc.wait(300)
        full = max(time.time() - t0, 0.2)
        from recsys.store import open_store

        store = open_store(store_url, namespace=ns)
        while len(kills) < args.kills:
            time.sleep(1.0 + rng.random())  # events pile up in the log meanwhile
            run = IngestProcess(env)
            if not run.started.wait(120):
                raise SystemExit("recsys ingest did not start")
            delay = rng.uniform(0.0, 1.2) * full
            try:
                run.proc.wait(delay)
                completed_runs += 1  # finished before the kill: not counted as a kill
                continue
            except subprocess.TimeoutExpired:
                run.proc.send_signal(signal.SIGKILL)
                run.proc.wait()
            view = lake_view(lake_dir)
            view["delay_s"] = round(delay, 3)
            acked = store.event_log.acknowledged("events")
            view["store_behind_lake"] = acked != view["committed"]
            kills.append(view)
            if view["rows"] != view["unique_ids"]:
                raise SystemExit(f"a reader saw a repeated id after kill {len(kills)}: {view}")
            print(f"kill {len(kills):2d} {delay:.2f}s into the ingest: lake rows {view['rows']} (raw "
                  f"{view['raw_rows']}), files past commit {view['files_past_commit']}, tmp {view['tmp_files']}, "
                  f"store ack behind lake {view['store_behind_lake']}", flush=True)
            time.sleep(1.1)  # the dead run's lock expires (TTL 1 s)
    finally:
        poster.stop.set()
        poster.join(10)
    time.sleep(1.0)  # the server's log writer flushes every 0.1 s
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        log_metrics = [line for line in r.read().decode().splitlines() if line.startswith("recsys_log_records_total")]
    server.send_signal(signal.SIGTERM)
    server.wait(30)
    subprocess.run([sys.executable, "-m", "cli", "ingest"], env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    from recsys.data.lake import Lake

    events = Lake(lake_dir).read_events()
    lake_items = events["item_id"].to_list()
    posted = poster.accepted
    missing = sorted(set(posted) - set(lake_items))
    extra = sorted(set(lake_items) - set(posted))
    dup_items = len(lake_items) - len(set(lake_items))
    result = {
        "store": "embedded" if args.store == "embedded" else "redis", "kills": len(kills),
        "runs_completed_before_their_kill": completed_runs,
        "ingest_seconds_of_a_full_run": round(full, 2),
        "kills_with_store_behind_lake": sum(1 for k in kills if k["store_behind_lake"]),
        "kills_with_files_past_commit": sum(1 for k in kills if k["files_past_commit"]),
        "kills_with_tmp_files": sum(1 for k in kills if k["tmp_files"]),
        "kills_with_raw_duplicates": sum(1 for k in kills if k["raw_rows"] != k["rows"]),
        "posted_accepted": len(posted), "post_failures": poster.failed, "lake_events": events.height,
        "lake_unique_ids": events["id"].n_unique(), "missing": len(missing), "extra": len(extra),
        "duplicated_events": dup_items, "log_metrics": log_metrics, "per_kill": kills,
        "ok": not missing and not extra and dup_items == 0 and events.height == len(posted)
              and events["id"].n_unique() == events.height}
    out = Path(args.json or REPO / "benchmarks" / "results" / f"kill_ingest_{result['store']}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "per_kill"}, indent=2))
    if args.store != "embedded":
        from recsys.store import open_store

        open_store(store_url, namespace=ns).wipe()
    shutil.rmtree(work, ignore_errors=True)
    if not result["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
