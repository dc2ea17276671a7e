"""Feature pruning on real data: the full ranker against pruned ones, quality and request cost.

    python benchmarks/pruning.py --data ../shared/data/ml-100k [--rate 100 --seconds 30]

1. Split with the DESIGN.md §6 session-holdout protocol; everything below trains on the training part.
2. `train-ranker` with pruning disabled (a dry run: the full model, every feature measured), then,
   from that same state, with the default policy ("pruned") and with the held-out check on
   (`--holdout-t`, "pruned_holdout"). The feature report is written after the dry run and after
   each pruning run (`pruning_report_{before,after,after_holdout}.{json,html}`).
3. Quality: every model answers every evaluation user through `RecommendationService.recommend`
   (the API's code path) on the same published candidates; nDCG@10 etc. as in `recsys evaluate`,
   with a paired bootstrap of pruned − full.
4. In-process cost per request, the services alternating request by request: the feature build
   (context + matrix) and the LightGBM predict, medians over every request; plus each feature's
   own compute time on a fresh context.
5. Online latency: one uvicorn process per model (same settings and Redis candidates, one artifacts
   directory each) and an open-loop load generator in another process, rotating blocks across
   the models at a fixed rate; p50/p99 of GET /v1/users/{id}/recommendations?k=10.

The machine is shared: load averages are recorded before and after each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import free_port, post_sessions, run_client, start_server  # noqa: E402
from loadgen import run_phase  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.artifacts import open_registry  # noqa: E402
from recsys.candidates.sources import CachedList  # noqa: E402
from recsys.config import Settings  # noqa: E402
from recsys.data.loaders import load_dataset  # noqa: E402
from recsys.engines.local import run_refresh  # noqa: E402
from recsys.evaluation.bootstrap import bootstrap_ci, paired_difference  # noqa: E402
from recsys.evaluation.metrics import score_lists  # noqa: E402
from recsys.evaluation.protocol import EvaluationConfig, split_for  # noqa: E402
from recsys.features import REGISTRY, make_context  # noqa: E402
from recsys.ranking.feature_report import build_feature_report  # noqa: E402
from recsys.ranking.feature_report_html import write_feature_report  # noqa: E402
from recsys.ranking.train import train_ranker  # noqa: E402
from recsys.serving.service import RecommendationService  # noqa: E402
from recsys.store import SessionEvent, open_store  # noqa: E402


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def serving_copy(src: Path, version: str, dst: Path, bundles: Path) -> None:
    """An artifacts directory that serves model `version` of `src`, with the shared `bundles`."""
    source = open_registry(src)
    target = open_registry(dst)
    manifest = source.model_manifest(version)
    target.save_model(version, {name: source.model_file(version, name) for name in manifest.files},
                      manifest.model_dump(exclude={"files"}))
    (dst / "bundles").symlink_to(bundles.resolve(), target_is_directory=True)
    target.promote(version, "benchmark")


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
    """Same requests to every service, interleaved (order rotated per user) so all share the machine."""
    lists: dict[str, dict[str, list[str]]] = {name: {} for name in services}
    timing: dict[str, dict[str, list[float]]] = {name: {"features": [], "predict": [], "total": []}
                                                 for name in services}
    names = list(services)
    for p in range(passes):
        for i, user in enumerate(users):
            k = (i + p) % len(names)
            order = names[k:] + names[:k]
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
    out["paired_ndcg@10_minus_full"] = {}
    for name in names[1:]:
        diff = paired_difference(per_user[name], per_user["full"], n_resamples=1000, seed=42)
        out["paired_ndcg@10_minus_full"][name] = {"mean": round(diff.mean, 4),
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
            cached = CachedList(*record.candidates)
            session = [(e.item_id, e.event, e.timestamp) for e in sessions.get(user, [])]
            now = max((t for _, _, t in session), default=0.0)
            blocked = np.concatenate([record.history, state.bundle.indices_of(exclude[user])])
            for name in REGISTRY.names:
                ctx = make_context(state.item_side, cached, record.history, session, now, blocked,
                                   config=service.settings.candidates)
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
            for name in names[b % len(names):] + names[:b % len(names)]:
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
        post_sessions(ports["full"], users, items, seed)  # one store: every server sees the sessions
        return run_client(_client, (ports, users, rate, seconds, blocks), timeout=seconds * 3 + 180)
    finally:
        for proc in servers.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "ml-100k"))
    ap.add_argument("--rate", type=float, default=100.0, help="requests/s during the HTTP blocks")
    ap.add_argument("--seconds", type=float, default=30.0, help="HTTP load per model, split in rotating blocks")
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--passes", type=int, default=3, help="in-process passes over the evaluation users")
    ap.add_argument("--holdout-t", type=float, default=2.0, help="held-out check of the third model (0: skip it)")
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
        train_dir = work / "train"
        settings = Settings(artifacts_dir=train_dir, store_url="embedded://:memory:")

        # 1. Train: a dry run (the full model), then each policy from that same state.
        t0 = time.perf_counter()
        dry = settings.model_copy(deep=True)
        dry.pruning.enabled = False
        runs = {"full": train_ranker(dry, train, force_promote=True)}
        reports = {"before": build_feature_report(open_registry(train_dir))}
        policies = {"pruned": settings.pruning.model_copy()}
        if args.holdout_t > 0:
            policies["pruned_holdout"] = settings.pruning.model_copy(update={"holdout_t": args.holdout_t})
        for name, policy in policies.items():
            run_dir = work / f"train-{name}"
            shutil.copytree(train_dir, run_dir, symlinks=True)
            run_settings = settings.model_copy(update={"artifacts_dir": run_dir, "pruning": policy})
            runs[name] = train_ranker(run_settings, train, force_promote=True)
            tag = "after" if name == "pruned" else "after_holdout"
            reports[tag] = build_feature_report(open_registry(run_dir))
            serving_copy(run_dir, runs[name].model_version, work / f"serve-{name}", train_dir / "bundles")
        serving_copy(train_dir, runs["full"].model_version, work / "serve-full", train_dir / "bundles")
        result["training"] = {
            "seconds": round(time.perf_counter() - t0, 1), "load_after": load_average(),
            "policies": {n: p.model_dump() for n, p in policies.items()},
            "models": {n: {"model_version": r.model_version, "features": len(r.feature_names),
                           "trees": int(r.best_iteration), "valid_ndcg@10": round(r.valid_ndcg, 4),
                           "outcome": r.pruning.get("outcome"), "pruned": r.pruning.get("pruned", []),
                           "reason": r.pruning.get("reason")} for n, r in runs.items()}}
        for tag, report in reports.items():
            (out_dir / f"pruning_report_{tag}.json").write_text(json.dumps(report.to_json_dict(), indent=2))
            write_feature_report(report, out_dir / f"pruning_report_{tag}.html")

        # 2-3. Quality and in-process cost, through the service, on one in-memory store. The bundle
        # is written into the dry run's directory, which every serving directory links to.
        store = open_store("embedded://:memory:")
        run_refresh(settings, store, train)
        services = {name: RecommendationService(settings.model_copy(update={"artifacts_dir": work / f"serve-{name}"}),
                                                store) for name in runs}
        for name, service in services.items():
            service.reload()
            assert service.state.model is not None and service.state.model.version == runs[name].model_version
        users, sessions, exclude = requests_of(split)
        load0 = load_average()
        result["in_process"] = evaluate_and_time(services, users, sessions, exclude, split.targets,
                                                 dataset.n_items, args.passes)
        result["in_process"]["load"] = [load0, load_average()]
        costs = feature_costs(services["full"], users[:300], sessions, exclude)
        result["feature_cost_us"] = {"per_feature": costs, "sum": {
            name: round(sum(costs[n] for n in r.feature_names), 1) for name, r in runs.items()}}
        store.close()

        # 4. HTTP latency: one uvicorn per model on the same Redis candidates, rotating blocks.
        if not args.skip_http:
            ns = f"bench-prune-{os.getpid()}"
            redis_settings = settings.model_copy(update={"store_url": args.store, "store_namespace": ns,
                                                         "artifacts_storage": "files"})
            redis_store = open_store(args.store, namespace=ns)
            run_refresh(redis_settings, redis_store, train)
            base = {**os.environ, "RECSYS_STORE_URL": args.store, "RECSYS_STORE_NAMESPACE": ns,
                    "RECSYS_ARTIFACTS_STORAGE": "files",  # each server serves its own model directory
                    "RECSYS_LOG_LEVEL": "WARNING", "RECSYS_RELOAD_INTERVAL_SECONDS": "5",
                    "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
            env = {name: {**base, "RECSYS_ARTIFACTS_DIR": str(work / f"serve-{name}")} for name in runs}
            rng = np.random.default_rng(args.seed)
            all_users = sorted(split.train["user_id"].unique().to_list())
            http_users = [str(u) for u in rng.choice(all_users, size=min(args.users, len(all_users)), replace=False)]
            items = sorted(split.train["item_id"].unique().to_list())
            load0 = load_average()
            try:
                result["http"] = http_latency(env, http_users, items, args.rate, args.seconds, args.blocks, args.seed)
            finally:
                redis_store.wipe()
                redis_store.close()
            result["http"]["load"] = [load0, load_average()]
            result["http"]["config"] = {"rate": args.rate, "seconds_per_model": args.seconds, "blocks": args.blocks,
                                        "users": len(http_users), "store": args.store}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["load"]["end"] = load_average()
    (out_dir / "pruning.json").write_text(json.dumps(result, indent=2))
    print_tables(result)


def print_tables(r: dict[str, Any]) -> None:
    models = r["training"]["models"]
    for name, m in models.items():
        if name != "full":
            print(f"{name}: {m['outcome']} — {models['full']['features']} → {m['features']} features "
                  f"(removed: {', '.join(m['pruned']) or 'none'})")
    q, paired = r["in_process"]["quality"], r["in_process"]["paired_ndcg@10_minus_full"]
    print("\n| model | features | trees | valid nDCG@10 | nDCG@10 (session-holdout) | 95% CI | paired − full "
          "(95% CI) | recall@10 | hit@10 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, m in models.items():
        x = q[name]
        d = paired.get(name)
        diff = "–" if d is None else f"{d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]"
        print(f"| {name} | {m['features']} | {m['trees']} | {m['valid_ndcg@10']:.4f} | {x['ndcg@10']:.4f} | "
              f"[{x['ndcg@10_ci95'][0]:.4f}, {x['ndcg@10_ci95'][1]:.4f}] | {diff} | {x['recall@10']:.4f} | "
              f"{x['hit@10']:.4f} |")
    c, fc = r["in_process"]["cost_ms"], r["feature_cost_us"]["sum"]
    print("\n| model | requests | features p50 ms | predict p50 ms | features+predict p50 ms | p90 ms | "
          "recommend() p50 ms | Σ per-feature compute µs |")
    print("|---|---|---|---|---|---|---|---|")
    for name in models:
        x = c[name]
        print(f"| {name} | {x['requests']} | {x['features_p50']:.3f} | {x['predict_p50']:.3f} | "
              f"{x['features_plus_predict_p50']:.3f} | {x['features_plus_predict_p90']:.3f} | "
              f"{x['recommend_p50']:.3f} | {fc[name]:.0f} |")
    print(f"in-process load average (1, 5, 15 min): before {r['in_process']['load'][0]}, "
          f"after {r['in_process']['load'][1]}")
    if "http" in r:
        h = r["http"]
        print(f"\nHTTP GET /v1/users/{{id}}/recommendations?k=10 at {h['config']['rate']:.0f} req/s, "
              f"{h['config']['blocks']} rotating blocks, {h['config']['seconds_per_model']:.0f} s per model")
        print("| model | requests | errors | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|")
        for name in models:
            x = h[name]
            print(f"| {name} | {x['requests']} | {x['errors']} | {x['p50_ms']:.2f} | {x['p90_ms']:.2f} | "
                  f"{x['p99_ms']:.2f} | {x['max_ms']:.2f} |")
        print(f"HTTP load average: before {h['load'][0]}, after {h['load'][1]}")
    print(f"\nload average (1, 5, 15 min): start {r['load']['start']}, end {r['load']['end']}")


if __name__ == "__main__":
    main()
