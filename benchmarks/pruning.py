"""Feature pruning on real data: the full ranker against the pruned one, quality and request cost.

    python benchmarks/pruning.py --data ../shared/data/ml-100k [--rate 100 --seconds 30]

1. Split with the DESIGN.md §6 session-holdout protocol; everything below trains on the training part.
2. `train-ranker` twice into one artifacts directory: first with pruning disabled (a dry run: the
   full model, every feature measured), then with the default policy (the pruned model). The
   feature report is written after each (`pruning_report_{before,after}.{json,html}`).
3. Quality: both models answer every evaluation user through `RecommendationService.recommend`
   (the API's code path) on the same published candidates; nDCG@10 etc. as in `recsys evaluate`,
   with a paired bootstrap of pruned − full.
4. In-process cost per request, both services alternating request by request: the feature build
   (context + matrix) and the LightGBM predict, medians over every request; plus each feature's
   own compute time on a fresh context.
5. Online latency: one uvicorn process per model (same settings and Redis candidates, one artifacts
   directory each) and an open-loop load generator in another process, alternating blocks
   full / pruned at a fixed rate; p50/p99 of GET /v1/users/{id}/recommendations?k=10.

The machine is shared: `uptime` load averages are recorded before and after each phase.
"""

from __future__ import annotations

import argparse
import asyncio
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
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import free_port, post_sessions, start_server  # noqa: E402
from loadgen import run_phase  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.config import Settings  # noqa: E402
from recsys.data.loaders import load_dataset  # noqa: E402
from recsys.evaluation.bootstrap import bootstrap_ci, paired_difference  # noqa: E402
from recsys.evaluation.metrics import score_lists  # noqa: E402
from recsys.evaluation.protocol import EvaluationConfig, split_for  # noqa: E402
from recsys.features import REGISTRY  # noqa: E402
from recsys.features.context import make_context  # noqa: E402
from recsys.ranking.feature_report import build_feature_report  # noqa: E402
from recsys.ranking.feature_report_html import write_feature_report  # noqa: E402
from recsys.ranking.model import models_dir, promote  # noqa: E402
from recsys.ranking.train import train_ranker  # noqa: E402
from recsys.refresh import run_refresh  # noqa: E402
from recsys.service import RecommendationService  # noqa: E402
from recsys.store import SessionEvent, open_store  # noqa: E402


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def pruned_copy(src: Path, dst: Path, version: str) -> None:
    """A second artifacts directory that serves `version`: its own models dir, the same bundles."""
    (dst / "models").mkdir(parents=True)
    shutil.copytree(models_dir(src) / version, models_dir(dst) / version)
    (dst / "bundles").symlink_to((src / "bundles").resolve(), target_is_directory=True)
    promote(dst, version, "benchmark: pruned model")


def requests_of(split: Any) -> tuple[list[str], dict[str, list[SessionEvent]], dict[str, list[str]]]:
    """Evaluation users, their live sessions and what each list must exclude (training + session items)."""
    users = list(split.targets)
    sessions: dict[str, list[SessionEvent]] = {}
    for user, item, event, ts in split.sessions.select("user_id", "item_id", "event", "timestamp").iter_rows():
        sessions.setdefault(user, []).append(SessionEvent(item, event, float(ts)))
    train_items = dict(split.train.group_by("user_id").agg(pl.col("item_id")).iter_rows())
    exclude = {u: list(train_items.get(u, [])) + [e.item_id for e in sessions.get(u, [])] for u in users}
    return users, sessions, exclude


def evaluate_and_time(services: dict[str, RecommendationService], users: list[str],
                      sessions: dict[str, list[SessionEvent]], exclude: dict[str, list[str]],
                      targets: dict[str, list[str]], n_items: int, passes: int) -> dict[str, Any]:
    """Same requests to every service, interleaved (order flipped per user) so both share the machine."""
    lists: dict[str, dict[str, list[str]]] = {name: {} for name in services}
    timing: dict[str, dict[str, list[float]]] = {name: {"features": [], "predict": [], "total": []}
                                                 for name in services}
    names = list(services)
    for p in range(passes):
        for i, user in enumerate(users):
            order = names if (i + p) % 2 == 0 else names[::-1]
            for name in order:
                session = sessions.get(user, [])
                now = max((e.timestamp for e in session), default=0.0)
                t0 = time.perf_counter()
                rec = services[name].recommend(user, 100, session=session, exclude=exclude[user], now=now)
                total = (time.perf_counter() - t0) * 1e3
                timing[name]["features"].append(rec.timings_ms["features"])
                timing[name]["predict"].append(rec.timings_ms["rank"])
                timing[name]["total"].append(total)
                if p == 0:
                    lists[name][user] = [it.item_id for it in rec.items]
    out: dict[str, Any] = {"quality": {}, "cost_ms": {}}
    per_user = {}
    for name in names:
        scores = score_lists(lists[name], targets, n_items)
        per_user[name] = scores.per_user["ndcg@10"]
        ci = bootstrap_ci(per_user[name], n_resamples=1000, seed=42)
        out["quality"][name] = {**{k: round(float(v), 4) for k, v in scores.means().items()},
                                "ndcg@10_ci95": [round(ci.low, 4), round(ci.high, 4)], "users": len(users)}
        t = {k: np.asarray(v) for k, v in timing[name].items()}
        build_predict = t["features"] + t["predict"]
        out["cost_ms"][name] = {
            "requests": int(t["total"].size),
            "features_p50": round(float(np.median(t["features"])), 4),
            "predict_p50": round(float(np.median(t["predict"])), 4),
            "features_plus_predict_p50": round(float(np.median(build_predict)), 4),
            "features_plus_predict_p90": round(float(np.percentile(build_predict, 90)), 4),
            "recommend_p50": round(float(np.median(t["total"])), 4),
            "recommend_p99": round(float(np.percentile(t["total"], 99)), 4),
        }
    diff = paired_difference(per_user["pruned"], per_user["full"], n_resamples=1000, seed=42)
    out["paired_ndcg@10_pruned_minus_full"] = {"mean": round(diff.mean, 4),
                                               "ci95": [round(diff.low, 4), round(diff.high, 4)]}
    return out


def feature_costs(service: RecommendationService, users: list[str], sessions: dict[str, list[SessionEvent]],
                  exclude: dict[str, list[str]], repeats: int = 3) -> dict[str, float]:
    """Median µs of each registered feature alone on a fresh context (shared intermediates included)."""
    state = service.state
    assert state.item_side is not None and state.bundle is not None
    out: dict[str, list[float]] = {n: [] for n in REGISTRY.names}
    for _ in range(repeats):
        for user in users:
            record = service.store.read_user(state.candidates_version or "", user, with_session=False)
            if record.candidates is None or record.history is None:
                continue
            cand, scores, n_primary = record.candidates
            session = [(e.item_id, e.event, e.timestamp) for e in sessions.get(user, [])]
            now = max((t for _, _, t in session), default=0.0)
            blocked = np.concatenate([record.history, state.bundle.indices_of(exclude[user])])
            for name in REGISTRY.names:
                ctx = make_context(state.item_side, cand, scores, n_primary, record.history, session, now, blocked)
                t0 = time.perf_counter()
                REGISTRY[name].compute(ctx)
                out[name].append((time.perf_counter() - t0) * 1e6)
    return {n: round(float(np.median(v)), 1) for n, v in out.items() if v}


def _client(ports: dict[str, int], users: list[str], rate: float, seconds: float, blocks: int,
            out: mp.Queue) -> None:
    async def main() -> dict[str, Any]:
        paths = [f"/v1/users/{u}/recommendations?k=10" for u in users]
        for port in ports.values():
            await run_phase("127.0.0.1", port, "warmup", paths[:100], rate, 2.0)
        lat: dict[str, list[float]] = {name: [] for name in ports}
        errors: dict[str, int] = dict.fromkeys(ports, 0)
        statuses: dict[str, dict[int, int]] = {name: {} for name in ports}
        names = list(ports)
        for b in range(blocks):
            for name in (names if b % 2 == 0 else names[::-1]):
                phase = await run_phase("127.0.0.1", ports[name], name, paths, rate, seconds / blocks)
                lat[name].extend(phase.latencies_ms)
                errors[name] += phase.errors
                for k, v in phase.statuses.items():
                    statuses[name][k] = statuses[name].get(k, 0) + v
        return {name: {"requests": len(lat[name]) + errors[name], "errors": errors[name],
                       "statuses": statuses[name], "p50_ms": round(float(np.percentile(lat[name], 50)), 3),
                       "p90_ms": round(float(np.percentile(lat[name], 90)), 3),
                       "p99_ms": round(float(np.percentile(lat[name], 99)), 3),
                       "max_ms": round(float(np.max(lat[name])), 3)} for name in names}

    out.put(asyncio.run(main()))


def http_latency(env: dict[str, dict[str, str]], users: list[str], items: list[str], rate: float,
                 seconds: float, blocks: int, seed: int) -> dict[str, Any]:
    ports = {name: free_port() for name in env}
    servers = {name: start_server(env[name], ports[name]) for name in env}
    try:
        post_sessions(ports["full"], users, items, seed)  # one store: both servers see the sessions
        ctx = mp.get_context("spawn")
        q: mp.Queue = ctx.Queue()
        p = ctx.Process(target=_client, args=(ports, users, rate, seconds, blocks, q))
        p.start()
        result = q.get(timeout=seconds * 3 + 180)
        p.join(30)
        return result
    finally:
        for proc in servers.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "ml-100k"))
    ap.add_argument("--rate", type=float, default=100.0, help="requests/s during the HTTP blocks")
    ap.add_argument("--seconds", type=float, default=30.0, help="HTTP load per model, split in alternating blocks")
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--passes", type=int, default=3, help="in-process passes over the evaluation users")
    ap.add_argument("--store", default="redis://127.0.0.1:6379/13")
    ap.add_argument("--users", type=int, default=500, help="users in the HTTP load")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--skip-http", action="store_true")
    args = ap.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"load": {"start": load_average()}, "config": vars(args)}

    work = Path(tempfile.mkdtemp(prefix="recsys-pruning-"))
    try:
        dataset = load_dataset(args.data)
        split, _, _ = split_for(dataset, EvaluationConfig())
        train = dataset.with_interactions(split.train)
        full_dir, pruned_dir = work / "full", work / "pruned"
        settings = Settings(artifacts_dir=full_dir, store_url="embedded://:memory:")

        # 1. Train: dry run (full model), then the default policy (pruned model).
        t0 = time.perf_counter()
        dry = settings.model_copy(deep=True)
        dry.pruning.enabled = False
        before = train_ranker(dry, train, force_promote=True)
        report_before = build_feature_report(full_dir)
        after = train_ranker(settings, train, force_promote=True)
        report_after = build_feature_report(full_dir)
        result["training"] = {"seconds": round(time.perf_counter() - t0, 1), "load_after": load_average(),
                              "full_model": before.model_version, "pruned_model": after.model_version,
                              "outcome": after.pruning["outcome"], "reason": after.pruning["reason"],
                              "features_full": len(before.feature_names), "features_pruned": len(after.feature_names),
                              "pruned": after.pruning["pruned"],
                              "valid_ndcg@10": {"full": round(before.valid_ndcg, 4),
                                                "pruned": round(after.valid_ndcg, 4)}}
        for tag, report in (("before", report_before), ("after", report_after)):
            (out_dir / f"pruning_report_{tag}.json").write_text(json.dumps(report.to_json_dict(), indent=2))
            write_feature_report(report, out_dir / f"pruning_report_{tag}.html")
        promote(full_dir, before.model_version, "benchmark: full model")
        pruned_copy(full_dir, pruned_dir, after.model_version)

        # 2-3. Quality and in-process cost, through the service, on one in-memory store.
        store = open_store("embedded://:memory:")
        run_refresh(settings, store, train)
        services = {"full": RecommendationService(settings, store),
                    "pruned": RecommendationService(settings.model_copy(update={"artifacts_dir": pruned_dir}), store)}
        for s in services.values():
            s.reload()
        assert services["full"].state.model.version == before.model_version  # type: ignore[union-attr]
        assert services["pruned"].state.model.version == after.model_version  # type: ignore[union-attr]
        users, sessions, exclude = requests_of(split)
        load0 = load_average()
        result["in_process"] = evaluate_and_time(services, users, sessions, exclude, split.targets,
                                                 dataset.n_items, args.passes)
        costs = feature_costs(services["full"], users[:300], sessions, exclude)
        kept = set(after.feature_names)
        result["feature_cost_us"] = {"per_feature": costs,
                                     "sum_full": round(sum(costs[n] for n in before.feature_names), 1),
                                     "sum_pruned": round(sum(costs[n] for n in kept), 1),
                                     "sum_removed": round(sum(v for n, v in costs.items()
                                                              if n in before.feature_names and n not in kept), 1)}
        result["in_process"]["load"] = [load0, load_average()]
        store.close()

        # 4. HTTP latency: one uvicorn per model on the same Redis candidates, alternating blocks.
        if not args.skip_http:
            ns = f"bench-prune-{os.getpid()}"
            redis_settings = settings.model_copy(update={"store_url": args.store, "store_namespace": ns})
            redis_store = open_store(args.store, namespace=ns)
            run_refresh(redis_settings, redis_store, train)
            base = {**os.environ, "RECSYS_STORE_URL": args.store, "RECSYS_STORE_NAMESPACE": ns,
                    "RECSYS_LOG_LEVEL": "WARNING", "RECSYS_RELOAD_INTERVAL_SECONDS": "5",
                    "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
            env = {"full": {**base, "RECSYS_ARTIFACTS_DIR": str(full_dir)},
                   "pruned": {**base, "RECSYS_ARTIFACTS_DIR": str(pruned_dir)}}
            rng = np.random.default_rng(args.seed)
            all_users = sorted(split.train["user_id"].unique().to_list())
            http_users = [str(u) for u in rng.choice(all_users, size=min(args.users, len(all_users)), replace=False)]
            items = sorted(split.train["item_id"].unique().to_list())
            load0 = load_average()
            try:
                result["http"] = http_latency(env, http_users, items, args.rate, args.seconds, args.blocks, args.seed)
            finally:
                redis_store.backend.expire_prefix(f"{ns}:", 0)  # type: ignore[attr-defined]
                redis_store.close()
            result["http"]["load"] = [load0, load_average()]
            result["http"]["config"] = {"rate": args.rate, "seconds_per_model": args.seconds, "blocks": args.blocks,
                                        "users": len(http_users), "store": args.store}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["load"]["end"] = load_average()
    try:
        result["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        pass
    (out_dir / "pruning.json").write_text(json.dumps(result, indent=2))
    print_tables(result)


def print_tables(r: dict[str, Any]) -> None:
    t = r["training"]
    print(f"pruning: {t['outcome']} — {t['features_full']} → {t['features_pruned']} features "
          f"(removed: {', '.join(t['pruned']) or 'none'})")
    print("\n| model | features | valid nDCG@10 | nDCG@10 (session-holdout) | 95% CI | recall@10 | hit@10 |")
    print("|---|---|---|---|---|---|---|")
    q = r["in_process"]["quality"]
    for name, n in (("full", t["features_full"]), ("pruned", t["features_pruned"])):
        m = q[name]
        print(f"| {name} | {n} | {t['valid_ndcg@10'][name]:.4f} | {m['ndcg@10']:.4f} | "
              f"[{m['ndcg@10_ci95'][0]:.4f}, {m['ndcg@10_ci95'][1]:.4f}] | {m['recall@10']:.4f} | {m['hit@10']:.4f} |")
    d = r["in_process"]["paired_ndcg@10_pruned_minus_full"]
    print(f"\npaired nDCG@10 pruned − full: {d['mean']:+.4f} (95% CI [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}])")
    c = r["in_process"]["cost_ms"]
    print("\n| model | requests | features p50 ms | predict p50 ms | features+predict p50 ms | p90 ms | "
          "recommend() p50 ms |")
    print("|---|---|---|---|---|---|---|")
    for name in ("full", "pruned"):
        x = c[name]
        print(f"| {name} | {x['requests']} | {x['features_p50']:.3f} | {x['predict_p50']:.3f} | "
              f"{x['features_plus_predict_p50']:.3f} | {x['features_plus_predict_p90']:.3f} | "
              f"{x['recommend_p50']:.3f} |")
    fc = r["feature_cost_us"]
    print(f"\nsum of per-feature compute time (µs, median per request): full {fc['sum_full']}, pruned "
          f"{fc['sum_pruned']}, removed features {fc['sum_removed']}")
    if "http" in r:
        h = r["http"]
        print(f"\nHTTP GET /v1/users/{{id}}/recommendations?k=10 at {h['config']['rate']:.0f} req/s, "
              f"{h['config']['blocks']} alternating blocks, {h['config']['seconds_per_model']:.0f} s per model")
        print("| model | requests | errors | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|")
        for name in ("full", "pruned"):
            x = h[name]
            print(f"| {name} | {x['requests']} | {x['errors']} | {x['p50_ms']:.2f} | {x['p90_ms']:.2f} | "
                  f"{x['p99_ms']:.2f} | {x['max_ms']:.2f} |")
    print(f"\nload average (1, 5, 15 min): start {r['load']['start']}, end {r['load']['end']}")


if __name__ == "__main__":
    main()
