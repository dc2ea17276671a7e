"""Replay evaluation of the loop through the real HTTP API (issue #12, DESIGN.md §9).

Cut a time-ordered data set at T; build candidates (refresh) and the ranker from the data before T;
then replay the events of [T, T + days) in time order through the HTTP API of a real server (uvicorn
on loopback): before each event, ask for that user's top-10 (GET .../recommendations?k=10) and record
a hit when the event's item is in it; then POST the event, stamped now (`--timestamps wallclock`, the
default: the service computes session recency against its own clock, so the event must be "now" to it;
order, update cycles and session expiry follow the events' own times) or with its own time shifted by
one constant (`shifted`: the API accepts the last 30 days only, and sessions then look up to `days` old
to a ranker trained on fresh ones). Arms, each
on a fresh store namespace and lake, same models:

- off      sessions only: the live session reranks, nothing else changes;
- on       the loop: every `--update-minutes` of event time, ingest + update (fold-in) run;
- refresh  every `--refresh-hours` of event time, ingest + a full refresh (base + lake) + reload.

hit@10 per user (hits / events of that user), averaged over users, with bootstrap intervals over
users; paired differences against "off"; overall and for users unknown at T (no event before it).

Sessions expire as they would live: the service's session TTL (30 min of inactivity) runs on the wall
clock, which a replay compresses, so the replay deletes a user's live session when the event-time gap
since that user's previous event exceeds `--session-ttl-minutes` (30; 0 keeps sessions for the whole
replay, which lets "off" remember every user's last 50 events however long ago they were).

    python benchmarks/replay.py --data ../shared/data/ml-100k --days 14
    python benchmarks/replay.py --synthetic-drift --days 14       # taste drift at T (known answer)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import free_port  # noqa: E402

from api.app import create_app  # noqa: E402
from recsys.config import Settings  # noqa: E402
from recsys.data.loaders import Dataset, load_dataset  # noqa: E402
from recsys.data.schema import EVENT_WEIGHTS  # noqa: E402
from recsys.data.synthetic import SynthConfig, generate  # noqa: E402
from recsys.engines.local import run_refresh  # noqa: E402
from recsys.errors import StoreUnavailableError  # noqa: E402
from recsys.evaluation.bootstrap import bootstrap_ci, paired_difference  # noqa: E402
from recsys.events.ingest import run_ingest  # noqa: E402
from recsys.events.update import Updater  # noqa: E402
from recsys.ranking.train import train_ranker  # noqa: E402
from recsys.store import open_store  # noqa: E402

TOKEN = "replay-token"
ARMS = ("off", "on", "refresh")


class Server:
    """uvicorn serving `create_app(settings, store)` on loopback, in a thread of this process."""

    def __init__(self, settings: Settings, store: Any) -> None:
        import uvicorn

        self.app = create_app(settings, store, background_reload=False)
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def synthetic_drift(seed: int, days: float) -> tuple[Dataset, int]:
    """Users start over 70 days; at day 60 every user's taste moves to other clusters (the cut)."""
    cfg = SynthConfig()
    drift_at = cfg.start + 60 * 86400
    inter, items = generate(3000, 1000, seed=seed, start_span_days=70.0, drift_at=drift_at, drift_share=1.0)
    return Dataset(inter, items, f"synthetic drift seed={seed}", "synthetic"), drift_at


def replay_arm(arm: str, ds: Dataset, base: Path, models: Path, work: Path, events: pl.DataFrame, cut: int,
               offset: float, args: argparse.Namespace) -> dict[str, Any]:
    ns = f"replay{os.getpid()}{arm}"
    url = args.store if args.store != "embedded" else f"embedded://{work / arm / 'store.sqlite'}"
    settings = Settings(artifacts_dir=work / arm / "artifacts", lake_dir=work / arm / "lake", data_path=base,
                        store_url=url, store_namespace=ns, admin_token=TOKEN, seed=args.seed,
                        artifacts_storage="files")  # the models were trained into files once, copied per arm
    settings.scheduler.lock_ttl_seconds = 5
    shutil.copytree(models, settings.artifacts_dir / "models")
    store = open_store(url, namespace=ns)
    store.wipe()
    run_refresh(settings, store)
    updater = Updater(settings, store)
    period = args.update_minutes * 60 if arm == "on" else args.refresh_hours * 3600
    next_cycle = cut + period
    cycles, cycle_seconds, posted_since, retries = 0, 0.0, 0, 0
    hits: dict[str, list[int]] = {}
    shown: dict[str, list[list[str]]] = {}  # each request's top-10, to compare arms request by request
    fallbacks: dict[str, int] = {}
    last_seen: dict[str, int] = {}
    ttl = args.session_ttl_minutes * 60
    expired = 0
    t0 = time.time()
    with Server(settings, store) as srv, httpx.Client(base_url=f"http://127.0.0.1:{srv.port}", timeout=30) as http:
        for user, item, ts, event in events.select("user_id", "item_id", "timestamp", "event").iter_rows():
            if arm != "off" and ts >= next_cycle:
                if posted_since:
                    c0 = time.perf_counter()
                    retries += _with_retries(lambda: _cycle(arm, srv, settings, store, updater, http))
                    cycle_seconds += time.perf_counter() - c0
                    cycles += 1
                    posted_since = 0
                next_cycle += period * max(1, int((ts - next_cycle) // period) + 1)
            if ttl and user in last_seen and ts - last_seen[user] > ttl:
                retries += _with_retries(lambda u=user: store.sessions.delete(u))  # the session TTL, on event time
                expired += 1
            last_seen[user] = ts
            r = http.get(f"/v1/users/{user}/recommendations", params={"k": 10})
            r.raise_for_status()
            body = r.json()
            top = [i["item_id"] for i in body["items"]]
            hits.setdefault(user, []).append(int(item in top))
            shown.setdefault(user, []).append(top)
            fallbacks[str(body["fallback"])] = fallbacks.get(str(body["fallback"]), 0) + 1
            ev = event if event in EVENT_WEIGHTS else "click"
            # `wallclock`: the event happens now (the service computes session recency against its own
            # clock, as live); `shifted`: its own time moved by one constant (sessions then look up to
            # `days` old to the ranker, which was trained on fresh sessions).
            posted = time.time() if args.timestamps == "wallclock" else ts + offset
            http.post("/v1/events", json={"user_id": user, "item_id": item, "event": ev,
                                          "timestamp": posted}).raise_for_status()
            posted_since += 1
    store.wipe()
    store.close()
    return {"hits": hits, "shown": shown, "fallbacks": fallbacks, "cycles": cycles,
            "cycle_seconds": round(cycle_seconds, 2), "cycle_retries": retries, "sessions_expired": expired,
            "wall_seconds": round(time.time() - t0, 1)}


def _cycle(arm: str, srv: Server, settings: Settings, store: Any, updater: Updater, http: httpx.Client) -> None:
    srv.app.state.loop.flush(10)
    run_ingest(settings, store)
    if arm == "on":
        updater.run()
    else:
        run_refresh(settings, store)
        http.post("/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}).raise_for_status()


def _with_retries(step: Any, attempts: int = 10) -> int:
    """Run a loop cycle, again after a store timeout (a shared, loaded machine); returns the retries.

    Safe to repeat: the ingest resumes from the lake's commit, the update from its mark."""
    for attempt in range(attempts):
        try:
            step()
            return attempt
        except StoreUnavailableError:
            time.sleep(1.0 + attempt)
    step()
    return attempts


def summarise(results: dict[str, dict[str, Any]], unknown: set[str], seed: int) -> dict[str, Any]:
    users = sorted(results["off"]["hits"])
    out: dict[str, Any] = {}
    for group, members in (("all", users), ("unknown_at_T", [u for u in users if u in unknown]),
                           ("known_at_T", [u for u in users if u not in unknown])):
        if not members:
            continue
        per_arm = {arm: np.asarray([np.mean(results[arm]["hits"][u]) for u in members]) for arm in results}
        events = sum(len(results["off"]["hits"][u]) for u in members)
        row: dict[str, Any] = {"users": len(members), "events": events}
        for arm, values in per_arm.items():
            ci = bootstrap_ci(values, seed=seed)
            micro = sum(sum(results[arm]["hits"][u]) for u in members) / events
            row[arm] = {"hit@10_user_mean": round(ci.mean, 4), "ci95": [round(ci.low, 4), round(ci.high, 4)],
                        "hit@10_events": round(micro, 4)}
            if arm != "off":
                d = paired_difference(values, per_arm["off"], seed=seed)
                row[f"{arm}-off"] = {"mean": round(d.mean, 4), "ci95": [round(d.low, 4), round(d.high, 4)]}
        for arm in results:
            if arm != "off":
                row[f"{arm}_vs_off_lists"] = compare_lists(results[arm], results["off"], members)
                row[f"{arm}-off_event_weighted"] = event_weighted_difference(results[arm], results["off"], members,
                                                                             seed)
                row[f"{arm}-off_by_activity"] = by_activity(results[arm], results["off"], members, seed)
        out[group] = row
    return out


def event_weighted_difference(arm: dict[str, Any], off: dict[str, Any], members: list[str], seed: int,
                              n_resamples: int = 1000) -> dict[str, Any]:
    """Hit@10 over events (every request counts once) instead of over users, arm minus off, with a
    95 % interval from resampling whole users (a user's requests are not independent of each other).

    The user mean weighs a user with 3 replayed events like one with 300; the loop can only help the
    requests that come after an update folded in the user's own events, which the active users have."""
    n = np.asarray([len(off["hits"][u]) for u in members], dtype=np.float64)
    h_arm = np.asarray([sum(arm["hits"][u]) for u in members], dtype=np.float64)
    h_off = np.asarray([sum(off["hits"][u]) for u in members], dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(members), size=(n_resamples, len(members)))
    diffs = (h_arm[idx].sum(axis=1) - h_off[idx].sum(axis=1)) / n[idx].sum(axis=1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"off": round(float(h_off.sum() / n.sum()), 4), "arm": round(float(h_arm.sum() / n.sum()), 4),
            "mean": round(float((h_arm.sum() - h_off.sum()) / n.sum()), 4), "ci95": [round(float(low), 4),
                                                                                   round(float(high), 4)]}


def by_activity(arm: dict[str, Any], off: dict[str, Any], members: list[str], seed: int) -> dict[str, Any]:
    """The user-mean difference split by how many events a user has in the replay window."""
    out: dict[str, Any] = {}
    for label, low, high in (("1-20 events", 1, 20), ("21-100 events", 21, 100), (">100 events", 101, 10**9)):
        group = [u for u in members if low <= len(off["hits"][u]) <= high]
        if not group:
            continue
        d = paired_difference(np.asarray([np.mean(arm["hits"][u]) for u in group]),
                              np.asarray([np.mean(off["hits"][u]) for u in group]), seed=seed)
        out[label] = {"users": len(group), "events": sum(len(off["hits"][u]) for u in group),
                      "mean": round(d.mean, 4), "ci95": [round(d.low, 4), round(d.high, 4)]}
    return out


def compare_lists(arm: dict[str, Any], off: dict[str, Any], members: list[str]) -> dict[str, Any]:
    """How much an arm changed what was shown, request by request against "off" (same events, same order).

    The hit-rate difference alone cannot say whether the loop changed nothing or changed things that
    did not matter; this splits it: the top-10 overlap, and the hits earned by the items only one arm
    showed (the arm's gain is on_only_hits - off_only_hits, per request)."""
    overlap, on_only_hits, off_only_hits, requests, changed = 0, 0, 0, 0, 0
    for u in members:
        for a_top, o_top, hit_a, hit_o in zip(arm["shown"][u], off["shown"][u], arm["hits"][u], off["hits"][u],
                                              strict=True):
            common = set(a_top) & set(o_top)
            overlap += len(common)
            requests += 1
            changed += int(set(a_top) != set(o_top))
            # a hit is on exactly one item; it is "only" an arm's when the other arm did not show that item
            on_only_hits += int(hit_a and not hit_o)
            off_only_hits += int(hit_o and not hit_a)
    return {"requests": requests, "mean_common_of_10": round(overlap / max(requests, 1), 3),
            "share_requests_changed": round(changed / max(requests, 1), 4),
            "hits_only_in_arm": on_only_hits, "hits_only_in_off": off_only_hits}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "ml-100k"))
    ap.add_argument("--synthetic-drift", action="store_true", help="the synthetic taste-drift set instead of --data")
    ap.add_argument("--days", type=float, default=14.0, help="replay window after the cut (< 30)")
    ap.add_argument("--update-minutes", type=float, default=10.0, help="arm on: ingest + update every N event minutes")
    ap.add_argument("--refresh-hours", type=float, default=24.0, help="arm refresh: full refresh every N event hours")
    ap.add_argument("--max-events", type=int, default=4000, help="cap: whole users sampled until this many events")
    ap.add_argument("--session-ttl-minutes", type=float, default=30.0,
                    help="expire a user's session after this much event-time inactivity (0: never)")
    ap.add_argument("--timestamps", choices=("wallclock", "shifted"), default="wallclock",
                    help="posted event time: now (default; the order, cycles and session expiry follow event "
                         "time) or the event's own time shifted by one constant")
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    ap.add_argument("--store", default="redis://127.0.0.1:6379/8", help="a Redis URL or 'embedded'")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if not 0 < args.days < 29:
        raise SystemExit("--days must be in (0, 29): the API accepts events of the last 30 days")
    if args.synthetic_drift:
        ds, cut = synthetic_drift(args.seed, args.days)
        name = "synthetic_drift"
    else:
        ds = load_dataset(args.data)
        cut = int(ds.interactions["timestamp"].max()) - int(args.days * 86400)  # type: ignore[arg-type]
        name = Path(args.data).name
    inter = ds.interactions
    train = inter.filter(pl.col("timestamp") < cut)
    window = inter.filter((pl.col("timestamp") >= cut) & (pl.col("timestamp") < cut + args.days * 86400))
    # Whole users, sampled with a fixed seed, until the cap: every kept user's events are all replayed.
    counts = window.group_by("user_id").len().sort("user_id")
    order = np.random.default_rng(args.seed).permutation(counts.height)
    kept, total = [], 0
    for j in order:
        u, n = counts.row(int(j))
        if total + n > args.max_events and kept:
            continue
        kept.append(u)
        total += n
    events = window.filter(pl.col("user_id").is_in(kept)).sort(["timestamp", "user_id", "item_id"])
    unknown = set(events["user_id"].unique().to_list()) - set(train["user_id"].unique().to_list())
    offset = (time.time() - 120) - (cut + args.days * 86400)
    work = Path(tempfile.mkdtemp(prefix="recsys-replay-"))
    try:
        base = work / "base"
        base.mkdir()
        train.write_parquet(base / "interactions.parquet")
        if ds.items is not None:
            ds.items.write_parquet(base / "items.parquet")
        ranker_settings = Settings(artifacts_dir=work / "ranker", lake_dir=work / "ranker-lake", seed=args.seed)
        train_ranker(ranker_settings, base)
        results = {}
        for arm in ["off", *[a for a in args.arms if a != "off"]]:
            print(f"arm {arm}: {events.height} events of {len(kept)} users ({len(unknown)} unknown at T) ...",
                  flush=True)
            results[arm] = replay_arm(arm, ds, base, work / "ranker" / "models", work, events, cut, offset, args)
            print(f"  {results[arm]['wall_seconds']} s, {results[arm]['cycles']} cycles "
                  f"({results[arm]['cycle_seconds']} s), fallbacks {results[arm]['fallbacks']}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarise(results, unknown, args.seed)
    out = {"data": name, "cut": cut, "days": args.days, "update_minutes": args.update_minutes,
           "session_ttl_minutes": args.session_ttl_minutes, "timestamps": args.timestamps,
           "refresh_hours": args.refresh_hours, "train_rows": train.height, "replay_events": events.height,
           "users": len(kept), "unknown_users": len(unknown), "seed": args.seed,
           "arms": {a: {k: v for k, v in r.items() if k not in ("hits", "shown")} for a, r in results.items()},
           "summary": summary}
    path = Path(args.json or REPO / "benchmarks" / "results" / f"replay_{name}.json")
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
