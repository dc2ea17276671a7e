"""`recsys train-ranker`: LambdaMART on held-out tails, early stopping on held-out users, promote if better."""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl

from recsys.artifacts import ArtifactRegistry, registry_for
from recsys.config import Settings
from recsys.data.guardrails import DataShape, GuardVerdict, check_data, enforce
from recsys.data.loaders import ColumnMap, Dataset
from recsys.data.training import load_training_data
from recsys.features import REGISTRY
from recsys.progress import NullProgress, Progress
from recsys.ranking.champion import Comparison, champion_extra_features, compare, load_champion
from recsys.ranking.dataset import RankerData, build_ranker_data
from recsys.ranking.importance import FeatureHistory
from recsys.ranking.model import MODEL_FILE, REFERENCE_FILE
from recsys.ranking.pruning import plan_features, record_run, select_features, train_with_pruning

log = logging.getLogger(__name__)

REFERENCE_ROWS = 5000


def lgb_params(seed: int) -> dict[str, object]:
    # Large leaves (min 200 rows): validation groups are few (hundreds of users), so a regularised model
    # is far less sensitive to the seed and the user split. 15 leaves at rate 0.1 stop after ~100 trees:
    # predict cost grows with trees, and it runs on every request (ml-100k nDCG@10 0.175 vs 0.176 for
    # 31 leaves at 0.03 with ~3x the trees, mean of 3 seeds).
    return {
        "objective": "lambdarank", "metric": "ndcg", "eval_at": [10], "learning_rate": 0.1,
        "num_leaves": 15, "min_data_in_leaf": 200, "feature_fraction": 0.9, "bagging_fraction": 0.9,
        "bagging_freq": 1, "lambda_l2": 1.0, "lambdarank_truncation_level": 30, "seed": seed,
        "deterministic": True, "force_row_wise": True, "verbosity": -1,
        # One thread: on 2 shared cores, 2 OpenMP threads were 6-10x slower under load, same model.
        "num_threads": 1,
    }


@dataclass
class TrainResult:
    model_version: str
    path: str  # where the registry keeps it (for messages)
    valid_ndcg: float
    promoted: bool
    reason: str
    feature_names: list[str]
    importances: dict[str, dict[str, float]] = field(default_factory=dict)
    best_iteration: int = 0
    seconds: float = 0.0
    pruning: dict[str, object] = field(default_factory=dict)  # the run's pruning decision (manifest block)
    comparison: Comparison | None = None  # champion/challenger: both scores, the difference, the decision
    guardrails: GuardVerdict | None = None  # the data check (forced=True: trained over a refusal)
    rows_base: int = 0  # training interactions from the base data
    rows_lake: int = 0  # ... and from the lake (events that came through the API)


def _split_users(users: list[str], seed: int, valid_share: float = 0.2) -> np.ndarray:
    """Deterministic user split by hash: True = training user."""
    def bucket(u: str) -> float:
        return int(hashlib.sha256(f"{seed}:{u}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return np.asarray([bucket(u) >= valid_share for u in users])


def fit_lambdamart(data: RankerData, seed: int, num_boost_round: int = 600, *,
                   params: dict[str, object] | None = None) -> tuple[lgb.Booster, float]:
    """Train with early stopping on held-out users; returns the booster and its validation nDCG@10.

    `params` go over `lgb_params` (pruning masks features with `feature_contri`).
    """
    is_train = _split_users(data.user_ids, seed)
    train, valid = data.take_users(is_train), data.take_users(~is_train)
    dtrain = lgb.Dataset(train.features, train.labels, group=train.groups, feature_name=data.feature_names,
                         free_raw_data=False)
    dvalid = lgb.Dataset(valid.features, valid.labels, group=valid.groups, reference=dtrain)
    evals: dict[str, dict[str, list[float]]] = {}
    booster = lgb.train({**lgb_params(seed), **(params or {})}, dtrain, num_boost_round=num_boost_round,
                        valid_sets=[dvalid], valid_names=["valid"],
                        callbacks=[lgb.early_stopping(50, verbose=False), lgb.record_evaluation(evals)])
    scores = evals["valid"]["ndcg@10"]
    return booster, float(scores[booster.best_iteration - 1])


def importances(booster: lgb.Booster) -> dict[str, dict[str, float]]:
    gain = booster.feature_importance("gain", iteration=booster.best_iteration)
    split = booster.feature_importance("split", iteration=booster.best_iteration)
    total = float(gain.sum()) or 1.0
    return {name: {"gain": float(g), "split": int(s), "gain_share": float(g) / total}
            for name, g, s in zip(booster.feature_name(), gain, split, strict=True)}


def new_model_version() -> str:
    """UTC timestamp to the millisecond, like candidate versions: sortable, unique per run."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{int(time.time() * 1000) % 1000:03d}"


def save_model(registry: ArtifactRegistry, settings: Settings, booster: lgb.Booster, data: RankerData,
               valid_ndcg: float, extra: dict[str, object]) -> str:
    """model.txt + reference.parquet + the manifest, as one version of the registry."""
    version = new_model_version()
    rng = np.random.default_rng(settings.seed)
    take = rng.choice(data.features.shape[0], size=min(REFERENCE_ROWS, data.features.shape[0]), replace=False)
    reference = io.BytesIO()
    pl.DataFrame(data.features[np.sort(take)], schema=data.feature_names, orient="row").write_parquet(reference)
    registry.save_model(version, {
        MODEL_FILE: booster.model_to_string(num_iteration=booster.best_iteration).encode(),
        REFERENCE_FILE: reference.getvalue(),
    }, {
        "created_at": time.time(), "features": data.feature_names,
        "params": {**lgb_params(settings.seed), "max_trees": settings.ranker.max_trees},
        "best_iteration": booster.best_iteration,
        "metrics": {"valid_ndcg@10": valid_ndcg, "candidate_recall": data.candidate_recall},
        "training": {"users": len(data.user_ids), "rows": int(data.features.shape[0])},
        "importances": importances(booster), **extra,
    })
    return version


def train_ranker(settings: Settings, data: str | Path | Dataset | None = None, *,
                 feature_names: list[str] | None = None,
                 force_promote: bool = False, progress: Progress | None = None,
                 before_publish: Callable[[], None] | None = None,
                 registry: ArtifactRegistry | None = None,
                 serving: tuple[str, DataShape] | None = None) -> TrainResult:
    """Check the data, build training data, fit LambdaMART, save, and promote when the new model ranks at
    least as well as the serving one on the same validation groups (champion/challenger).

    `serving` (candidate version, shape of its data) turns on the publish guardrails against it (a toy
    file cannot train the ranker that serves the real data); without it only the minimum sizes apply.
    `force_promote` overrides both, and is recorded. A path (or None: settings.data_path, optional) is
    read with the lake (data/training.py); a Dataset is used as it is.
    """
    progress = progress or NullProgress()
    registry = registry or registry_for(settings)
    start = time.perf_counter()
    if isinstance(data, Dataset):
        dataset, rows_base, rows_lake = data, data.interactions.height, 0
    else:
        training = load_training_data(settings, data, columns=ColumnMap.from_config(settings.data))
        dataset, rows_base, rows_lake = training.dataset, training.rows_base, training.rows_lake
    guard = enforce(check_data(dataset.interactions, settings.guardrails, serving=serving[1] if serving else None,
                               serving_version=serving[0] if serving else None),
                    force=force_promote, what="train a ranker on this data")
    # Feature debt control (pruning.py): features pruned by earlier runs are not even computed; the
    # kept model is the full fit or, within tolerance, the fit without the features that earn nothing.
    history = FeatureHistory.load(registry)
    plan = plan_features(settings, REGISTRY.names, feature_names, history=history)
    champion_version, champion, champion_error = load_champion(registry)
    # The serving model is scored on this run's validation groups: compute its columns too (those this
    # run's plan left out), but train on the plan only.
    extra = champion_extra_features(champion, plan.features, REGISTRY.names)
    all_data = build_ranker_data(dataset.interactions, dataset.items, settings, plan.features + extra,
                                 progress=progress)
    rdata = select_features(all_data, plan.features) if extra else all_data
    fit = partial(fit_lambdamart, num_boost_round=settings.ranker.max_trees)
    pruning = train_with_pruning(settings, rdata, plan, fit=fit, measure=importances,
                                 validation_users=lambda d: ~_split_users(d.user_ids, settings.seed),
                                 registered=REGISTRY.names, history=history)
    booster, valid_ndcg, rdata = pruning.booster, pruning.valid_ndcg, pruning.data
    kept = list(rdata.feature_names)
    comparison = compare(lambda x: np.asarray(booster.predict(x, num_threads=1)), kept, champion_version, champion,
                         champion_error, all_data.take_users(~_split_users(all_data.user_ids, settings.seed)),
                         tolerance=settings.ranker.promotion_tolerance,
                         min_groups=settings.ranker.promotion_min_groups, seed=settings.seed, force=force_promote)
    version = save_model(registry, settings, booster, rdata, valid_ndcg, {
        "data_source": dataset.source, "rows_base": rows_base, "rows_lake": rows_lake, "pruning": pruning.summary(),
        "importances_full": pruning.fits["full"].importances, "promotion": comparison.to_dict(),
        "guardrails": guard.to_dict()})
    record_run(registry, pruning, version)
    if before_publish is not None:
        before_publish()  # the scheduler's last word: raises when this run must not publish
    if comparison.promote:
        registry.promote(version, comparison.reason, **{k: v for k, v in comparison.to_dict().items()
                                                         if k not in ("reason", "decision")},
                         guardrails_forced=guard.problems if guard.forced else None)
    log.info("event=ranker_trained model_version=%s rows_base=%d rows_lake=%d valid_ndcg=%.4f promoted=%s reason=%r "
             "champion=%s challenger_ndcg=%s champion_ndcg=%s difference=%s", version, rows_base, rows_lake, valid_ndcg,
             comparison.promote,
             comparison.reason, comparison.champion, comparison.challenger_ndcg, comparison.champion_ndcg,
             comparison.difference)
    return TrainResult(version, registry.model_location(version), valid_ndcg, comparison.promote,
                       comparison.summary(), rdata.feature_names, importances(booster),
                       booster.best_iteration, time.perf_counter() - start, pruning.summary(), comparison, guard,
                       rows_base, rows_lake)


def train_ranker_job(settings: Settings, *, before_publish: Callable[[], None] | None = None,
                     serving: tuple[str, DataShape] | None = None) -> TrainResult:
    """The scheduled `train-ranker` job: base data (settings.data_path, optional) + the lake; promote if not worse."""
    return train_ranker(settings, settings.data_path, before_publish=before_publish, serving=serving)
