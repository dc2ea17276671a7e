"""Experiment simulator through the real HTTP API (issue #14, DESIGN.md §10, docs/experiments.md).

Synthetic users whose clicks follow a known preference, served by a real uvicorn server (loopback) over
candidates and a ranker trained on MovieLens 100k's session-holdout training split:

- ground truth: a user likes exactly their held-out targets (DESIGN.md §6: the 7 interactions after the
  live session), the same items the offline nDCG@10 is computed on, so the online result and the offline
  difference measure the same preference;
- the live session (3 events) is posted before each run, stamped now with its own gaps;
- each impression: a user drawn at random asks for a top-10 (GET /v1/users/{id}/recommendations) and
  clicks each shown item independently with P = examination(rank) x attractiveness x the user's click
  propensity (1 for everyone by default; lognormal with `--propensity-sigma`), examination =
  rank^-`exam_power` (position bias), attractiveness `attract_relevant` for a target, `attract_other` for
  anything else (noise clicks); clicks are POSTed to /v1/events with the list's rec_id;
- experiments are created and stopped through the admin API; after each run the API's log sinks are
  flushed, `recsys ingest` runs, and the report comes from the admin endpoint (the lake).

What it measures (each figure the issue's done-when asks for):

- offline: nDCG@10 of the reranker and of the candidates in ALS order on the same users (paired);
- A/B reranker vs ALS order over `--ab-seeds` seeds: the report's verdict and interval;
- interleaving of the same pair over the same seeds, and for both: impressions until the test decides at
  alpha = 0.05 for good (decided at a checkpoint and at every later one), from prefixes of the run's lake
  rows in serving order, analysed by the report's own code;
- A/A (both variants the reranker) over `--aa-seeds` seeds: declared differences and SRM alarms;
- a broken split: served 60/40, analysed as the 50/50 the experiment claims: the SRM check must fire.

    python benchmarks/experiments_sim.py --data ../shared/data/ml-100k
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from replay import Server  # noqa: E402

from recsys.bootstrap import bootstrap_ci, paired_difference  # noqa: E402
from recsys.config import Settings  # noqa: E402
from recsys.data.lake import Lake  # noqa: E402
from recsys.data.loaders import load_dataset  # noqa: E402
from recsys.data.splits import HoldoutSplit, session_holdout  # noqa: E402
from recsys.engines.local import run_refresh  # noqa: E402
from recsys.evaluation.metrics import user_metrics  # noqa: E402
from recsys.events.ingest import run_ingest  # noqa: E402
from recsys.experiments.config import parse_experiment  # noqa: E402
from recsys.experiments.report import analyse  # noqa: E402
from recsys.ranking.train import train_ranker  # noqa: E402
from recsys.store import SessionEvent, Store, open_store  # noqa: E402

TOKEN = "sim-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


class Simulation:
    def __init__(self, args: argparse.Namespace, split: HoldoutSplit, settings: Settings, store: Store,
                 srv: Server) -> None:
        self.args = args
        self.split = split
        self.settings = settings
        self.store = store
        self.srv = srv
        self.base = f"http://127.0.0.1:{srv.port}"
        self.users = sorted(split.targets)
        self.targets = {u: set(t) for u, t in split.targets.items()}
        self.sessions = {u: list(zip(g["item_id"].to_list(), g["event"].to_list(), g["timestamp"].to_list(),
                                     strict=True))
                         for (u,), g in split.sessions.group_by("user_id", maintain_order=True)}
        self.exam = (1.0 / np.arange(1, 11)) ** args.exam_power
        # How much each user clicks at all (mean 1): real users differ a lot, and that between-user variance
        # is what an A/B test pays for and interleaving (both lists in one impression) does not.
        sigma = args.propensity_sigma
        spread = np.random.default_rng(args.seed).lognormal(-sigma * sigma / 2, sigma, len(self.users))
        self.propensity = dict(zip(self.users, spread.tolist(), strict=True))
        self.http = httpx.Client(base_url=self.base, timeout=60)

    # ---- offline ------------------------------------------------------------------------------------
    def offline(self) -> dict[str, Any]:
        """nDCG@10 of what each variant serves, per user, on the protocol's own request (session inline)."""
        service = self.srv.app.state.service
        per: dict[str, list[float]] = {"model": [], "als": []}
        for u in self.users:
            session = [SessionEvent(i, e, float(t)) for i, e, t in self.sessions[u]]
            now = max(e.timestamp for e in session)
            for ranker in per:
                rec = service.recommend(u, 10, session=session, now=now, ranker=ranker)
                per[ranker].append(user_metrics([i.item_id for i in rec.items], self.targets[u])["ndcg@10"])
        model, als = np.array(per["model"]), np.array(per["als"])
        return {"users": len(self.users), "ndcg_model": bootstrap_ci(model).to_dict(),
                "ndcg_als": bootstrap_ci(als).to_dict(), "difference": paired_difference(model, als).to_dict()}

    # ---- one run ------------------------------------------------------------------------------------
    def reset_sessions(self) -> None:
        """Every simulated user starts a run with only their 3-event live session, stamped now."""
        for u in self.users:
            self.store.sessions.delete(u)
        now = time.time()
        batch: list[dict[str, Any]] = []
        for u in self.users:
            last = max(t for _, _, t in self.sessions[u])
            # own gaps, at most 10 minutes each (the API takes the last 30 days; a session is recent by definition)
            batch += [{"user_id": u, "item_id": i, "event": e, "timestamp": now - min(last - t, 600)}
                      for i, e, t in self.sessions[u]]
            if len(batch) >= 96:
                r = self.http.post("/v1/events", json=batch)
                if r.status_code != 202:
                    raise RuntimeError(f"session post refused: {r.status_code} {r.text[:500]}")
                batch = []
        if batch:
            self.http.post("/v1/events", json=batch).raise_for_status()

    def run(self, definition: dict[str, Any], impressions: int, seed: int) -> dict[str, Any]:
        r = self.http.post("/v1/admin/experiments", json=definition, headers=ADMIN)
        r.raise_for_status()
        self.reset_sessions()
        picks = np.random.default_rng(seed).choice(len(self.users), size=impressions)
        t0 = time.time()
        clicks = 0

        def one(i: int, client: httpx.Client) -> int:
            user = self.users[int(picks[i])]
            rng = np.random.default_rng([seed, i])
            body = client.get(f"/v1/users/{user}/recommendations", params={"k": 10}).json()
            assert body["experiment"] == definition["name"], body
            items = [it["item_id"] for it in body["items"]]
            attract = np.array([self.args.attract_relevant if it in self.targets[user] else self.args.attract_other
                                for it in items])
            hit = rng.random(len(items)) < np.minimum(self.exam[:len(items)] * attract * self.propensity[user], 1.0)
            events = [{"user_id": user, "item_id": it, "event": "click", "rec_id": body["rec_id"]}
                      for it, h in zip(items, hit, strict=True) if h]
            if events:
                client.post("/v1/events", json=events).raise_for_status()
            return len(events)

        def worker(w: int) -> int:
            n = 0
            with httpx.Client(base_url=self.base, timeout=60) as client:
                for i in range(w, impressions, self.args.workers):
                    n += one(i, client)
            return n

        with ThreadPoolExecutor(self.args.workers) as pool:
            clicks = sum(pool.map(worker, range(self.args.workers)))
        seconds = time.time() - t0
        self.http.post(f"/v1/admin/experiments/{definition['name']}/stop", headers=ADMIN).raise_for_status()
        self.srv.app.state.loop.flush(30)
        run_ingest(self.settings, self.store)
        report = self.http.get(f"/v1/admin/experiments/{definition['name']}/report", headers=ADMIN).json()
        return {"name": definition["name"], "impressions": impressions, "clicks": clicks,
                "seconds": round(seconds, 1), "report": report}

    def decision_point(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Impressions until the report's test decides for good (at a checkpoint and every later one)."""
        lake = Lake(self.settings.lake_dir)  # type: ignore[arg-type]
        experiment = parse_experiment(definition)
        imps = lake.read("impressions").filter(pl.col("experiment") == experiment.name).sort("ts")
        events = lake.read_events()
        step = self.args.checkpoint
        verdicts: list[tuple[int, int]] = []  # (impressions, direction: +1 second variant better, -1, 0 undecided)
        for n in range(step, imps.height + 1, step):
            rep = analyse(experiment, imps.head(n), events)
            if rep.interleaving is not None:
                i = rep.interleaving
                first, second = i.teams
                d = (0 if not i.decided else
                     1 if i.users_preferring[second] > i.users_preferring[first] else -1)
            else:
                c = rep.comparisons[0] if rep.comparisons else None
                d = 0 if c is None or not c.decided else (1 if c.difference > 0 else -1)
            verdicts.append((n, d))
        final = verdicts[-1][1] if verdicts else 0
        decided_at = None
        if final != 0:
            for n, d in reversed(verdicts):
                if d != final:
                    break
                decided_at = n
        return {"decided_at": decided_at, "direction": final, "checked_up_to": imps.height}


def pair(name: str, kind: str, first: str, second: str, shares: tuple[float, float] = (0.5, 0.5)) -> dict[str, Any]:
    return {"name": name, "kind": kind, "variants": [{"name": "control", "share": shares[0], "ranker": first},
                                                     {"name": "treatment", "share": shares[1], "ranker": second}]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent.parent / "shared" / "data" / "ml-100k"))
    p.add_argument("--store", default="redis://127.0.0.1:6379/2", help="store URL, or 'embedded'")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--ab-seeds", type=int, default=5)
    p.add_argument("--ab-impressions", type=int, default=3000)
    p.add_argument("--tdi-impressions", type=int, default=800)
    p.add_argument("--aa-seeds", type=int, default=20)
    p.add_argument("--aa-impressions", type=int, default=600)
    p.add_argument("--srm-impressions", type=int, default=2000)
    p.add_argument("--checkpoint", type=int, default=25, help="impressions between two looks at the test")
    p.add_argument("--workers", type=int, default=4, help="concurrent simulated clients")
    p.add_argument("--exam-power", type=float, default=1.0)
    p.add_argument("--attract-relevant", type=float, default=0.7)
    p.add_argument("--attract-other", type=float, default=0.02)
    p.add_argument("--propensity-sigma", type=float, default=0.0, help="spread of the users' click propensity "
                   "(lognormal sigma, mean 1); 0: every user clicks alike")
    p.add_argument("--only", nargs="*", default=["ab", "aa", "srm"], help="parts: ab (A/B + interleaving), aa, srm")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "experiments_sim.json"))
    args = p.parse_args()
    if not 0 <= args.attract_other <= 1 or not 0 <= args.attract_relevant <= 1:
        p.error("attractiveness must be in [0, 1]")

    ds = load_dataset(args.data)
    split = session_holdout(ds.interactions)
    train = ds.with_interactions(split.train)
    work = Path(tempfile.mkdtemp(prefix="recsys-expsim-"))
    ns = f"expsim{os.getpid()}"
    url = args.store if args.store != "embedded" else f"embedded://{work / 'store.sqlite'}"
    settings = Settings(artifacts_dir=work / "artifacts", lake_dir=work / "lake", store_url=url, store_namespace=ns,
                        admin_token=TOKEN, seed=args.seed, artifacts_storage="files")
    store = open_store(url, namespace=ns)
    store.wipe()
    out: dict[str, Any] = {"args": vars(args), "runs": {}}
    t_start = time.time()
    try:
        run_refresh(settings, store, train, force=True)
        train_ranker(settings, train, force_promote=True)
        with Server(settings, store) as srv:
            srv.app.state.service.reload()
            sim = Simulation(args, split, settings, store, srv)
            out["offline"] = sim.offline()
            print(f"offline nDCG@10: reranker {out['offline']['ndcg_model']['mean']:.4f}, ALS order "
                  f"{out['offline']['ndcg_als']['mean']:.4f}, difference {out['offline']['difference']}", flush=True)
            if "ab" in args.only:
                ab_rows = []
                for s in range(args.ab_seeds):
                    seed = args.seed * 1000 + s
                    row: dict[str, Any] = {"seed": seed}
                    for kind, n in (("ab", args.ab_impressions), ("interleaving", args.tdi_impressions)):
                        d = pair(f"{kind}-{seed}", kind, "als", "model")
                        run = sim.run(d, n, seed)
                        run["decision"] = sim.decision_point(d)
                        row[kind] = run
                        print(f"seed {seed} {kind}: {n} impressions, {run['clicks']} clicks, {run['seconds']} s, "
                              f"decision {run['decision']}", flush=True)
                    ab_rows.append(row)
                out["runs"]["ab_vs_interleaving"] = ab_rows
            if "aa" in args.only:
                aa_rows = []
                for s in range(args.aa_seeds):
                    seed = args.seed * 2000 + s
                    run = sim.run(pair(f"aa-{seed}", "ab", "model", "model"), args.aa_impressions, seed)
                    rep = run["report"]
                    aa_rows.append({"seed": seed, "declared": rep["comparisons"][0]["decided"],
                                    "p_value": rep["comparisons"][0]["p_value"],
                                    "srm_fired": rep["srm"]["fired"], "srm_p": rep["srm"]["p_value"],
                                    "users": rep["users"], "impressions": rep["impressions"]})
                    print(f"A/A seed {seed}: {aa_rows[-1]}", flush=True)
                out["runs"]["aa"] = aa_rows
            if "srm" in args.only:
                seed = args.seed * 3000
                broken = pair(f"srm-{seed}", "ab", "model", "model", (0.6, 0.4))
                run = sim.run(broken, args.srm_impressions, seed)
                lake = Lake(work / "lake")
                claimed = parse_experiment(pair(f"srm-{seed}", "ab", "model", "model"))
                rep = analyse(claimed, lake.read("impressions"), lake.read_events()).to_dict()
                out["runs"]["srm_broken_60_40"] = {"served_report_srm": run["report"]["srm"],
                                                   "analysed_as_50_50": rep["srm"], "notes": rep["notes"]}
                print(f"broken 60/40 analysed as 50/50: {rep['srm']}", flush=True)
    finally:
        store.wipe()
        store.close()
        shutil.rmtree(work, ignore_errors=True)
    out["summary"] = summarise(out)
    out["wall_seconds"] = round(time.time() - t_start, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str))
    print(json.dumps(out["summary"], indent=2))


def summarise(out: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {"offline": out.get("offline")}
    rows = out["runs"].get("ab_vs_interleaving")
    if rows:
        table = []
        for r in rows:
            ab, tdi = r["ab"], r["interleaving"]
            cmp = ab["report"]["comparisons"][0]
            n_ab, n_tdi = ab["decision"]["decided_at"], tdi["decision"]["decided_at"]
            table.append({"seed": r["seed"], "ab_verdict": cmp["verdict"], "ab_difference": cmp["difference"],
                          "ab_interval": [cmp["low"], cmp["high"]], "ab_lift": cmp["lift"],
                          "ab_decided_at": n_ab, "ab_direction": ab["decision"]["direction"],
                          "tdi_verdict": tdi["report"]["interleaving"]["verdict"],
                          "tdi_preference_share_model": (None if tdi["report"]["interleaving"]["preference_share"]
                                                         is None else
                                                         1 - tdi["report"]["interleaving"]["preference_share"]),
                          "tdi_decided_at": n_tdi, "tdi_direction": tdi["decision"]["direction"],
                          "ratio": (n_ab / n_tdi) if n_ab and n_tdi else None,
                          # a test that never decided within its run counts as deciding at the run's end: the
                          # ratio is then a bound (A/B undecided: at least; interleaving undecided: at most)
                          "ratio_bound": ((n_ab or ab["impressions"]) / (n_tdi or tdi["impressions"])
                                          if (n_ab is None) != (n_tdi is None) else None)})
        summary["ab_vs_interleaving"] = table
        ratios = [t["ratio"] if t["ratio"] is not None else t["ratio_bound"] for t in table]
        known = [r for r in ratios if r is not None]
        summary["median_ratio"] = float(np.median(known)) if known else None
        summary["median_ratio_is_bound"] = any(t["ratio_bound"] is not None for t in table)
    aa = out["runs"].get("aa")
    if aa:
        summary["aa"] = {"seeds": len(aa), "declared": sum(r["declared"] for r in aa),
                         "srm_fired": sum(r["srm_fired"] for r in aa)}
    if "srm_broken_60_40" in out["runs"]:
        summary["srm_broken_60_40"] = out["runs"]["srm_broken_60_40"]["analysed_as_50_50"]
    return summary


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--summarise":  # recompute the summary of a stored result file
        stored = json.loads(Path(sys.argv[2]).read_text())
        stored["summary"] = summarise(stored)
        Path(sys.argv[2]).write_text(json.dumps(stored, indent=2, default=str))
        print(json.dumps(stored["summary"], indent=2))
    else:
        main()
