"""Reranked nDCG@10 against the ranker's size: tree cap, learning rate, session neighbours.

Every tree is walked for every candidate row of every request, so the ranker's size is a serving cost.
For each configuration and seed this runs the evaluation protocol (session-holdout, DESIGN.md §6) with
the service pipeline (`refresh` + `train-ranker` on the training split, `RecommendationService`), and
prints the mean reranked nDCG@10 and the mean number of trees over the seeds.

    python benchmarks/ranker_size.py --data ../shared/data/ml-100k --seeds 1 2 3
    python benchmarks/ranker_size.py --data data/generated/demo --seeds 1 2 \\
        --configs 0.1:40:30 0.1:600:50

A configuration is LEARNING_RATE:MAX_TREES:SESSION_CANDIDATES.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import recsys.ranking.train as train_module
from recsys.config import get_settings
from recsys.data.loaders import load_dataset
from recsys.evaluation.pipeline import ServicePipeline, build_service_pipeline
from recsys.evaluation.protocol import EvaluationConfig, run_evaluation

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = ["0.1:600:50", "0.1:600:30", "0.1:60:30", "0.1:40:30", "0.2:600:50", "0.1:40:20", "0.1:30:20"]


def run(data: Path, learning_rate: float, max_trees: int, session_candidates: int, seed: int
        ) -> tuple[float, int]:
    base = get_settings()
    settings = base.model_copy(update={
        "seed": seed,
        "ranker": base.ranker.model_copy(update={"max_trees": max_trees}),
        "candidates": base.candidates.model_copy(update={"session_candidates": session_candidates})})
    default_params = train_module.lgb_params
    trees: list[int] = []

    def build(split, dataset, s) -> ServicePipeline:  # type: ignore[no-untyped-def]
        pipeline = build_service_pipeline(split, dataset, s)
        model = pipeline.service.state.model
        trees.append(model.booster.num_trees() if model is not None else 0)
        return pipeline

    # The learning rate is not a setting (lgb_params documents why it is 0.1): patched for this run only.
    train_module.lgb_params = lambda s: {**default_params(s), "learning_rate": learning_rate}  # type: ignore[assignment]
    try:
        result = run_evaluation(load_dataset(data), settings, EvaluationConfig(n_bootstrap=100, seed=seed),
                                build_pipeline=build)
    finally:
        train_module.lgb_params = default_params
    return float(result.models["reranked"].metrics["ndcg@10"]), trees[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ml-100k")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS,
                    help="LEARNING_RATE:MAX_TREES:SESSION_CANDIDATES")
    args = ap.parse_args()
    if not args.data.exists():
        raise SystemExit(f"no data at {args.data}")
    print(f"{args.data}, seeds {args.seeds}\n")
    print("| learning rate | max trees | session neighbours | reranked nDCG@10 (mean) | trees (mean) | per seed |")
    print("|---|---|---|---|---|---|")
    for config in args.configs:
        try:
            lr, max_trees, session = float(config.split(":")[0]), *map(int, config.split(":")[1:])
        except ValueError:
            raise SystemExit(f"bad configuration {config!r}: expected LEARNING_RATE:MAX_TREES:SESSION_CANDIDATES") \
                from None
        runs = [run(args.data, lr, max_trees, session, seed) for seed in args.seeds]
        ndcg = [r[0] for r in runs]
        print(f"| {lr} | {max_trees} | {session} | {np.mean(ndcg):.4f} | {np.mean([r[1] for r in runs]):.0f} | "
              f"{', '.join(f'{x:.4f}' for x in ndcg)} |", flush=True)


if __name__ == "__main__":
    main()
