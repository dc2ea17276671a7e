"""Exposure for new items: a simulation through the HTTP API, exploration slot off vs on.

Synthetic data (`recsys.data.synthetic`, seeded) → refresh + train-ranker → then `--new-items` items are
added to the catalogue through `POST /v1/items` (after the refresh: no candidate version knows them).
Simulated users then ask for their top-10 (`GET /v1/users/{id}/recommendations`) and click with one
click model for every item, old or new:

    P(click at position p) = 0.5 · affinity(user, item categories) / log2(p + 2)

where affinity is the share of the user's training history in the item's categories (mean over its
categories). Clicks are posted back through `POST /v1/events` with the list's rec_id (the live session,
the event log). New items carry no other advantage or handicap in this model: it measures exposure,
not whether new items are good. Each arm starts from its own fresh store with the same version.

    python benchmarks/new_items.py                  # -> results/new_items.json
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from recsys.config import Settings  # noqa: E402
from recsys.data.loaders import Dataset  # noqa: E402
from recsys.data.synthetic import generate  # noqa: E402
from recsys.engines.local import run_refresh  # noqa: E402
from recsys.ranking.train import train_ranker  # noqa: E402
from recsys.store import open_store  # noqa: E402

ADMIN = "bench-admin-token"


def affinities(inter: pl.DataFrame, items: pl.DataFrame) -> dict[str, dict[str, float]]:
    cats = dict(zip(items["item_id"].to_list(), items["categories"].to_list(), strict=True))
    out: dict[str, dict[str, float]] = {}
    for user, item in inter.select("user_id", "item_id").iter_rows():
        c = cats.get(item) or []
        prof = out.setdefault(user, {})
        for name in c:
            prof[name] = prof.get(name, 0.0) + 1.0 / len(c)
    return {u: {c: w / sum(p.values()) for c, w in p.items()} for u, p in out.items()}


def run_arm(share: float, settings: Settings, ds: Dataset, new_items: list[dict], taste: dict[str, dict[str, float]],
            cats: dict[str, list[str]], args: argparse.Namespace, work: Path) -> dict[str, float]:
    arm = settings.model_copy(deep=True)
    arm.rules.exploration_share = share
    store = open_store(f"embedded://{work / f'store-{share}.sqlite'}")
    run_refresh(arm, store, ds, force=True)
    rng = np.random.default_rng(args.seed)  # the same users in the same order in every arm
    users = sorted(taste)
    shown = clicks = shown_new = clicks_new = 0
    new_ids = {it["item_id"] for it in new_items}
    with TestClient(create_app(arm, store, background_reload=False)) as client:
        auth = {"Authorization": f"Bearer {ADMIN}"}
        r = client.post("/v1/items", json={"items": new_items}, headers=auth)
        assert r.status_code == 200, r.text
        for _ in range(args.requests):
            user = users[int(rng.integers(len(users)))]
            body = client.get(f"/v1/users/{user}/recommendations", params={"k": 10}).json()
            events = []
            for pos, item in enumerate(body["items"]):
                item_id = item["item_id"]
                c = cats.get(item_id, [])
                aff = sum(taste[user].get(x, 0.0) for x in c) / max(len(c), 1)
                is_new = item_id in new_ids
                shown += 1
                shown_new += is_new
                if rng.random() < 0.5 * aff / math.log2(pos + 2):
                    clicks += 1
                    clicks_new += is_new
                    events.append({"user_id": user, "item_id": item_id, "event": "click", "rec_id": body["rec_id"]})
            if events:
                assert client.post("/v1/events", json=events).status_code == 202
    store.close()
    return {"exploration_share": share, "requests": args.requests, "impressions": shown, "clicks": clicks,
            "new_impression_share": shown_new / shown, "new_click_share": clicks_new / max(clicks, 1),
            "ctr": clicks / shown, "new_item_ctr": clicks_new / max(shown_new, 1),
            "old_item_ctr": (clicks - clicks_new) / max(shown - shown_new, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--items", type=int, default=500)
    ap.add_argument("--new-items", type=int, default=25, help="added to the catalogue after the refresh")
    ap.add_argument("--requests", type=int, default=2000, help="recommendation requests per arm")
    ap.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.1, 0.2])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "new_items.json"))
    args = ap.parse_args()

    t0 = time.time()
    work = Path(tempfile.mkdtemp(prefix="recsys-new-items-"))
    try:
        inter, items = generate(args.users, args.items, seed=args.seed)
        ds = Dataset(inter, items, "synthetic", "synthetic")
        settings = Settings(artifacts_dir=work / "artifacts", admin_token=ADMIN, seed=args.seed)
        settings.drift.feature_log_rate = 0.0
        train_ranker(settings, ds, force_promote=True)
        rng = np.random.default_rng(args.seed + 1)
        # New items take the categories of randomly drawn existing items (the catalogue's category mix).
        donors = rng.choice(items.height, size=args.new_items, replace=False)
        now = time.time()
        new_items = [{"item_id": f"new{j}", "categories": list(items["categories"][int(d)]), "created_at": now - j}
                     for j, d in enumerate(donors)]
        cats = dict(zip(items["item_id"].to_list(), items["categories"].to_list(), strict=True))
        cats.update({it["item_id"]: it["categories"] for it in new_items})
        taste = affinities(inter, items)
        rows = [run_arm(s, settings, ds, new_items, taste, cats, args, work) for s in args.shares]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"config": {k: v for k, v in vars(args).items() if k != "json"},
              "catalogue_new_share": args.new_items / (args.items + args.new_items), "rows": rows,
              "seconds": round(time.time() - t0, 1)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print("| exploration share | impressions | new items' share of impressions | clicks | new items' share of "
          "clicks | CTR new / old items |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['exploration_share']:.2f} | {r['impressions']} | {r['new_impression_share']:.3f} | "
              f"{r['clicks']} | {r['new_click_share']:.3f} | {r['new_item_ctr']:.3f} / {r['old_item_ctr']:.3f} |")
    print(f"{args.new_items} new of {args.items + args.new_items} items; {result['seconds']} s")


if __name__ == "__main__":
    main()
