"""What diversity costs: nDCG@10 and intra-list diversity for max_per_category = none, 3, 2 (ml-100k genres).

The session-holdout protocol (DESIGN.md §6) through the evaluation's service pipeline (the real
`RecommendationService.recommend`, trained on the training part only): every evaluation user's
top-10 is asked once per cap, with the live session and the usual exclusions. Diversity is the number
of distinct genres among the top-10 (ml-100k movies carry one or more of 19 genres). 95 % bootstrap
intervals over users; differences are paired against "none".

    python benchmarks/diversity.py --data ../shared/data/ml-100k     # -> results/diversity.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.bootstrap import bootstrap_ci, paired_difference  # noqa: E402
from recsys.config import Settings  # noqa: E402
from recsys.data.loaders import load_dataset  # noqa: E402
from recsys.data.splits import session_holdout  # noqa: E402
from recsys.evaluation.metrics import user_metrics  # noqa: E402
from recsys.evaluation.pipeline import build_service_pipeline  # noqa: E402
from recsys.serving.rules import Rules  # noqa: E402
from recsys.store import SessionEvent  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "ml-100k"))
    ap.add_argument("--caps", type=int, nargs="+", default=[0, 3, 2], help="0 = no cap")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "diversity.json"))
    args = ap.parse_args()

    t0 = time.time()
    dataset = load_dataset(args.data)
    if dataset.items is None:
        raise SystemExit("the data set has no item table: no categories to diversify over")
    genres = {i: set(c) for i, c in zip(dataset.items["item_id"].to_list(), dataset.items["categories"].to_list(),
                                         strict=True)}
    split = session_holdout(dataset.interactions, n_holdout=10, n_session=3, min_interactions=20)
    settings = Settings(seed=args.seed)
    settings.als.random_state = args.seed
    pipeline = build_service_pipeline(split, dataset, settings)
    history = dict(split.train.group_by("user_id").agg(pl.col("item_id")).iter_rows())
    sessions: dict[str, list[SessionEvent]] = {}
    for user, item, event, ts in split.sessions.select("user_id", "item_id", "event", "timestamp").iter_rows():
        sessions.setdefault(user, []).append(SessionEvent(item, event, float(ts)))
    users = split.users
    per_cap: dict[int, dict[str, np.ndarray]] = {}
    for cap in args.caps:
        ndcg, distinct, length = [], [], []
        for user in users:
            events = sessions.get(user, [])
            exclude = list(history.get(user, [])) + [e.item_id for e in events]
            now = max((e.timestamp for e in events), default=0.0)
            rec = pipeline.service.recommend(user, 10, session=events, exclude=exclude, now=now,
                                             rules=Rules(max_per_category=cap))
            top = [i.item_id for i in rec.items]
            ndcg.append(user_metrics(top, split.targets[user], 10)["ndcg@10"])
            distinct.append(len(set().union(*(genres.get(i, set()) for i in top))) if top else 0)
            length.append(len(top))
        per_cap[cap] = {"ndcg": np.asarray(ndcg), "genres": np.asarray(distinct, dtype=float),
                        "length": np.asarray(length, dtype=float)}
    pipeline.close()

    rows = []
    base = per_cap[args.caps[0]]
    for cap in args.caps:
        r = per_cap[cap]
        row = {"max_per_category": cap or None, "users": len(users),
               "ndcg@10": bootstrap_ci(r["ndcg"], seed=args.seed).to_dict(),
               "distinct_genres@10": bootstrap_ci(r["genres"], seed=args.seed).to_dict(),
               "mean_list_length": float(r["length"].mean())}
        if cap != args.caps[0]:
            row["ndcg_diff_vs_first"] = paired_difference(r["ndcg"], base["ndcg"], seed=args.seed).to_dict()
        rows.append(row)
    result = {"data": args.data, "seed": args.seed, "protocol": "session-holdout", "rows": rows,
              "seconds": round(time.time() - t0, 1)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print("| max_per_category | nDCG@10 [95 % CI] | distinct genres in top-10 [95 % CI] | mean list length |"
          " nDCG@10 vs none (paired) |\n|---|---|---|---|---|")
    for row in rows:
        n, g = row["ndcg@10"], row["distinct_genres@10"]
        diff = row.get("ndcg_diff_vs_first")
        d = f"{diff['mean']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}]" if diff else "–"
        print(f"| {row['max_per_category'] or 'none'} | {n['mean']:.4f} [{n['low']:.4f}, {n['high']:.4f}] | "
              f"{g['mean']:.2f} [{g['low']:.2f}, {g['high']:.2f}] | {row['mean_list_length']:.2f} | {d} |")
    print(f"{len(users)} users, {result['seconds']} s")


if __name__ == "__main__":
    main()
