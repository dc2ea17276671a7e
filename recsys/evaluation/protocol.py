"""Run an offline protocol end to end: split, train on the training part only, score every model.

Two protocols (DESIGN.md §6 and the issue):

- `session-holdout` — per user, the last 10 interactions are held out, the first 3 of them are the
  live session, the rest (minus seen items) the targets; see `recsys.data.splits.session_holdout`
  for the exact tie-breaking decision (numeric item ids compare as numbers).
- `global-time` — one cutoff at a timestamp quantile; users active after it are evaluated, their
  first 3 events after it are the session, the rest the targets. Users with no interaction before
  the cutoff are "cold" and also reported as their own group.

Models: the baselines of `baselines.py`, the published candidates (recall@100 read back from a
store exactly as the online path reads them) and, when a pipeline factory is given, "reranked".
Everything random is seeded, so two runs with the same seed give identical metrics.

Readings of the text where it leaves room (they reproduce the reference numbers on ml-100k:
popularity nDCG@10 0.0634, ALS-64 0.100, EASE+session 0.120):
- popularity = distinct training users per item, training rows only (never the session or the
  held-out tail), ties by item index; every list excludes the user's training and session items;
- a user whose targets all vanish (already seen) is not evaluated;
- coverage@10 divides by the number of distinct items in the whole data set;
- "candidates" are scored as published (training items removed, session items not), because that
  is what the online path reads; their recall@100 bounds what any reranker can reach.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, Field

from recsys.candidates.matrix import InteractionMatrix
from recsys.candidates.pipeline import CandidateArtifacts, build_candidates
from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.data.splits import HoldoutSplit, SplitTooSmallError, global_time, session_holdout, time_cutoff
from recsys.engines.publish import publish_artifacts
from recsys.errors import ConfigError, DataValidationError
from recsys.evaluation.baselines import (
    ALSRecommender,
    BatchRecommender,
    EASERecommender,
    ItemKNNRecommender,
    PopularityRecommender,
)
from recsys.evaluation.bootstrap import Interval, bootstrap_ci, paired_difference
from recsys.evaluation.metrics import METRIC_KEYS, ListScores, score_lists
from recsys.evaluation.pipeline import PipelineFactory, PipelineRecommender
from recsys.progress import NullProgress, Progress
from recsys.store import SessionEvent, open_store
from recsys.timing import Stopwatch

log = logging.getLogger(__name__)

ProtocolName = Literal["session-holdout", "global-time"]
BASELINES = ("popularity", "als", "als+session", "itemknn+session", "ease+session")
CANDIDATES = "candidates"
RERANKED = "reranked"
LIST_DEPTH = 100  # every list is scored to depth 100 so recall@100 is defined for every model


class EvaluationConfig(BaseModel):
    """Knobs of one evaluation run; the defaults are the protocol as written."""

    protocol: ProtocolName = "session-holdout"
    quantile: float = Field(0.9, gt=0.0, lt=1.0, description="global-time cutoff quantile of timestamps")
    n_holdout: int = Field(10, ge=2)
    n_session: int = Field(3, ge=1)
    min_interactions: int = Field(20, ge=3)
    min_after: int = Field(4, ge=2, description="global-time: events after the cutoff to be evaluated")
    curve_k: int = Field(20, ge=10, le=100)
    n_bootstrap: int = Field(1000, ge=100)
    seed: int = 42
    ease_lambda: float = Field(250.0, gt=0.0)
    ease_max_items: int = Field(20_000, ge=1)
    knn_neighbours: int = Field(100, ge=1)
    min_eval_users: int = Field(10, ge=1, description="fewer evaluation users than this is an error")


@dataclass
class ModelResult:
    """One row of the report. An unavailable model carries only the reason."""

    name: str
    available: bool = True
    reason: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    users: int = 0
    ndcg_ci: Interval | None = None
    ndcg_curve: list[float] = field(default_factory=list)
    recall_curve: list[float] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)
    per_user_ndcg: np.ndarray | None = None  # for paired comparisons; not serialised

    def to_dict(self) -> dict[str, Any]:
        if not self.available:
            return {"available": False, "reason": self.reason}
        out: dict[str, Any] = {"available": True, **{k: _r(v) for k, v in self.metrics.items()},
                               "users": self.users}
        if self.ndcg_ci is not None:
            out["ndcg@10_ci95"] = [_r(self.ndcg_ci.low), _r(self.ndcg_ci.high)]
        if self.ndcg_curve:
            out["curves"] = {"k": list(range(1, len(self.ndcg_curve) + 1)),
                             "ndcg": [_r(v) for v in self.ndcg_curve],
                             "recall": [_r(v) for v in self.recall_curve]}
        out.update(self.extra)
        return out


@dataclass
class DatasetShape:
    source: str
    users: int
    items: int
    interactions: int
    train_interactions: int
    eval_users: int
    cold_users: int | None = None
    cutoff: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass
class GroupResult:
    """Metrics of every available model restricted to a subset of the evaluation users."""

    name: str
    users: int
    models: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {"users": self.users,
                "models": {m: {k: _r(v) for k, v in vals.items()} for m, vals in self.models.items()}}


@dataclass
class EvaluationResult:
    protocol: str
    config: EvaluationConfig
    dataset: DatasetShape
    models: dict[str, ModelResult]
    paired: dict[str, Any]
    groups: dict[str, GroupResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def best_baseline(self) -> str | None:
        scored = [(m.metrics["ndcg@10"], name) for name, m in self.models.items()
                  if name in BASELINES and m.available]
        return max(scored, key=lambda t: (t[0], t[1]))[1] if scored else None

    def to_json_dict(self) -> dict[str, Any]:
        """Everything but `timings` is a pure function of data, settings and seed."""
        return {
            "protocol": self.protocol,
            "seed": self.config.seed,
            "config": self.config.model_dump(),
            "dataset": self.dataset.to_dict(),
            "models": {name: m.to_dict() for name, m in self.models.items()},
            "paired": self.paired,
            "groups": {name: g.to_dict() for name, g in self.groups.items()},
            "notes": list(self.notes),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


def _r(value: float) -> float:
    return round(float(value), 6)


def split_for(dataset: Dataset, config: EvaluationConfig) -> tuple[HoldoutSplit, set[str], int | None]:
    """Apply the configured protocol; returns (split, cold users, cutoff timestamp or None)."""
    frame = dataset.interactions
    if config.protocol == "session-holdout":
        split = session_holdout(frame, n_holdout=config.n_holdout, n_session=config.n_session,
                                min_interactions=config.min_interactions)
        cold: set[str] = set()
        cutoff = None
    elif config.protocol == "global-time":
        split, cold = global_time(frame, quantile=config.quantile, n_session=config.n_session,
                                  min_after=config.min_after)
        cutoff = time_cutoff(frame, config.quantile)
    else:  # pragma: no cover - pydantic rejects other names
        raise ConfigError(f"unknown protocol {config.protocol!r}")
    if len(split.targets) < config.min_eval_users:
        raise SplitTooSmallError(
            f"data set too small for {config.protocol}: {len(split.targets)} evaluation user(s), need at "
            f"least {config.min_eval_users} ({dataset.n_users} users, {frame.height} interactions"
            + (f"; users need >= {config.min_interactions} interactions" if cutoff is None else
               f"; users need >= {config.min_after} interactions after the cutoff") + f"; file={dataset.source})",
            protocol=config.protocol)
    if split.train.height == 0 or split.train["item_id"].n_unique() < 2:
        raise DataValidationError(f"data set too small for {config.protocol}: the training part has "
                                  f"{split.train.height} interactions", path=dataset.source)
    return split, cold, cutoff


def _histories(matrix: InteractionMatrix, users: list[str]) -> dict[str, list[str]]:
    index = matrix.user_index()
    out: dict[str, list[str]] = {}
    for user in users:
        row = index.get(user)
        if row is None:
            out[user] = []
            continue
        lo, hi = matrix.matrix.indptr[row], matrix.matrix.indptr[row + 1]
        out[user] = matrix.item_ids[matrix.matrix.indices[lo:hi]].tolist()
    return out


def _session_events(sessions: pl.DataFrame) -> dict[str, list[SessionEvent]]:
    out: dict[str, list[SessionEvent]] = {}
    for user, item, event, ts in sessions.select("user_id", "item_id", "event", "timestamp").iter_rows():
        out.setdefault(user, []).append(SessionEvent(item, event, float(ts)))
    return out


def _model_result(name: str, scores: ListScores, extra: Mapping[str, int] | None = None) -> ModelResult:
    return ModelResult(name=name, metrics=scores.means(), users=len(scores.users),
                       ndcg_curve=scores.ndcg_curve.tolist(), recall_curve=scores.recall_curve.tolist(),
                       extra=dict(extra or {}), per_user_ndcg=scores.per_user["ndcg@10"])


@dataclass
class _Run:
    """One evaluation in progress: its inputs, the split, and the timings and notes it collects."""

    dataset: Dataset
    settings: Settings
    config: EvaluationConfig
    progress: Progress
    watch: Stopwatch
    split: HoldoutSplit
    notes: list[str] = field(default_factory=list)

    @cached_property
    def users(self) -> list[str]:
        return list(self.split.targets)

    @cached_property
    def session_items(self) -> dict[str, list[str]]:
        return self.split.session_items()

    def score(self, lists: Mapping[str, Sequence[str]], users: Sequence[str] | None = None) -> ListScores:
        """DESIGN.md §6 metrics of `lists` against the targets (all evaluation users by default)."""
        return score_lists(lists, self.split.targets, self.dataset.n_items, users=users, k_max=self.config.curve_k)

    def candidate_recall(self, lists: Mapping[str, Sequence[str]], users: Sequence[str] | None = None) -> float:
        return float(self.score(lists, users).per_user["recall@100"].mean())


def run_evaluation(dataset: Dataset, settings: Settings, config: EvaluationConfig | None = None, *,
                   build_pipeline: PipelineFactory | None = None, pipeline_unavailable: str | None = None,
                   progress: Progress | None = None) -> EvaluationResult:
    """The whole protocol. `build_pipeline` (the service's factory) adds the "reranked" model."""
    config = config or EvaluationConfig()
    watch = Stopwatch("evaluation")
    split, cold, cutoff = _split(dataset, config, watch)
    run = _Run(dataset, settings, config, progress or NullProgress(), watch, split)
    artifacts = _build_candidates(run)
    histories = _histories(artifacts.matrix, run.users)
    candidate_lists, missing = _published_candidates(run, artifacts)
    candidates = _candidates_result(run, candidate_lists, missing)
    models, lists_by_model = _score_baselines(run, artifacts, histories)
    models[CANDIDATES] = candidates
    reranked, reranked_lists = _score_reranked(run, build_pipeline, pipeline_unavailable, histories)
    if reranked_lists is not None:
        lists_by_model[RERANKED] = reranked_lists
    models[RERANKED] = reranked
    result = _with_intervals(run, models, cold, cutoff)
    if config.protocol == "global-time":
        result.groups = _groups(run, cold, lists_by_model, candidate_lists)
    result.timings = watch.wall
    log.info("event=evaluation_done protocol=%s users=%d %s", config.protocol, len(run.users),
             " ".join(f"{n}_ndcg10={m.metrics['ndcg@10']:.4f}" for n, m in models.items()
                      if m.available and "ndcg@10" in m.metrics))
    return result


def _split(dataset: Dataset, config: EvaluationConfig, watch: Stopwatch) -> tuple[HoldoutSplit, set[str], int | None]:
    with watch.stage("split"):
        split, cold, cutoff = split_for(dataset, config)
    log.info("event=evaluation_split protocol=%s eval_users=%d train=%d cold=%d", config.protocol,
             len(split.targets), split.train.height, len(cold))
    return split, cold, cutoff


def _build_candidates(run: _Run) -> CandidateArtifacts:
    """The same candidate build as `recsys refresh`, on the training part only; its stages are timed as
    `candidates.<stage>`."""
    artifacts = build_candidates(run.split.train, run.dataset.items, version="evaluation",
                                 als_config=run.settings.als, candidate_config=run.settings.candidates,
                                 progress=run.progress)
    run.watch.record(artifacts.timings, artifacts.cpu_timings, prefix="candidates.")
    return artifacts


def _published_candidates(run: _Run, artifacts: CandidateArtifacts) -> tuple[dict[str, list[str]], int]:
    """Publish as `recsys refresh` does, into a throw-away in-memory store, and read every evaluation
    user's list back as the online path reads it; also how many users have none (their list is empty)."""
    progress, users = run.progress, run.users
    with run.watch.stage("candidates.publish"):
        store = open_store("embedded://:memory:")
        publish_artifacts(store, artifacts, version="evaluation", progress=progress)
    with run.watch.stage("candidates.read"):
        version = store.candidates.require_version()
        store_items = np.asarray(store.candidates.item_ids(version))
        candidate_lists: dict[str, list[str]] = {}
        missing = 0
        tick = progress.stage("read candidates", len(users))
        for user in users:
            record = store.read_user(version, user, with_session=False)
            if record.candidates is None:
                missing += 1
                candidate_lists[user] = []
            else:
                candidate_lists[user] = store_items[record.candidates[0]].tolist()
            tick(1)
        store.close()
    return candidate_lists, missing


def _candidates_result(run: _Run, candidate_lists: dict[str, list[str]], missing: int) -> ModelResult:
    """The published candidates as a model: only recall@100, what bounds any reranker."""
    if missing:
        run.notes.append(f"{missing} evaluation user(s) have no published candidates (no training history): "
                         "their candidate recall@100 counts as 0")
    return ModelResult(name=CANDIDATES, metrics={"recall@100": run.candidate_recall(candidate_lists)},
                       users=len(run.users), extra={"users_without_candidates": missing})


def _baselines(run: _Run, artifacts: CandidateArtifacts) -> list[tuple[str, Callable[[], BatchRecommender]]]:
    """Every baseline of DESIGN.md §6, in report order; the ALS ones reuse the candidates' ALS model."""
    settings, config = run.settings, run.config
    return [
        ("popularity", PopularityRecommender),
        ("als", lambda: ALSRecommender(settings.als, pretrained=artifacts.als)),
        ("als+session", lambda: ALSRecommender(settings.als, fold_session=True, pretrained=artifacts.als)),
        ("itemknn+session", lambda: ItemKNNRecommender(config.knn_neighbours)),
        ("ease+session", lambda: EASERecommender(config.ease_lambda, max_items=config.ease_max_items)),
    ]


def _score_baselines(run: _Run, artifacts: CandidateArtifacts, histories: dict[str, list[str]]
                     ) -> tuple[dict[str, ModelResult], dict[str, dict[str, list[str]]]]:
    """Fit each baseline on the training matrix and score its lists; returns the results and the lists."""
    matrix, config, users, sessions = artifacts.matrix, run.config, run.users, run.session_items
    models: dict[str, ModelResult] = {}
    lists_by_model: dict[str, dict[str, list[str]]] = {}
    for name, make in _baselines(run, artifacts):
        if name == "ease+session" and matrix.n_items > config.ease_max_items:
            reason = (f"skipped: catalogue has {matrix.n_items} items > {config.ease_max_items} "
                      "(EASE needs a dense item x item solve)")
            models[name] = ModelResult(name=name, available=False, reason=reason)
            run.notes.append(f"ease+session {reason}")
            continue
        with run.watch.stage(f"{name}.fit"):
            model = make().fit(matrix)
        with run.watch.stage(f"{name}.recommend"):
            lists = model.recommend(users, histories, sessions, LIST_DEPTH,
                                    progress=run.progress.stage(f"recommend {name}", len(users)))
        lists_by_model[name] = lists
        models[name] = _model_result(name, run.score(lists))
    return models, lists_by_model


def _score_reranked(run: _Run, build_pipeline: PipelineFactory | None, unavailable: str | None,
                    histories: dict[str, list[str]]) -> tuple[ModelResult, dict[str, list[str]] | None]:
    """The full online pipeline built by `build_pipeline` (unavailable without one): its result and lists."""
    if build_pipeline is None:
        return ModelResult(name=RERANKED, available=False, reason=unavailable or "no pipeline factory given"), None
    with run.watch.stage("reranked.build"):
        try:
            pipeline = build_pipeline(run.split, run.dataset, run.settings)
        except SplitTooSmallError as exc:  # e.g. --min-events below 20: the ranker's own held-out tails
            reason = f"the ranker cannot be trained on the training split: {exc}"
            return ModelResult(name=RERANKED, available=False, reason=reason), None
    with run.watch.stage("reranked.recommend"):
        lists, leaked = _reranked_lists(run, pipeline, histories)
    close = getattr(pipeline, "close", None)
    if callable(close):
        close()
    if leaked:
        run.notes.append(f"reranked returned {leaked} excluded item(s) (training or session); "
                         "they are scored as misses")
    return _model_result(RERANKED, run.score(lists), extra={"excluded_returned": leaked}), lists


def _reranked_lists(run: _Run, pipeline: PipelineRecommender, histories: dict[str, list[str]]
                    ) -> tuple[dict[str, list[str]], int]:
    """Each user's list from the pipeline, given the live session as events and the training and session
    items to exclude; also how many excluded items it returned anyway."""
    events, sessions = _session_events(run.split.sessions), run.session_items
    lists: dict[str, list[str]] = {}
    leaked = 0
    tick = run.progress.stage("recommend reranked", len(run.users))
    for user in run.users:
        exclude = histories[user] + sessions.get(user, [])
        got = list(pipeline.recommend(user, events.get(user, []), exclude, LIST_DEPTH))
        leaked += len(set(got).intersection(exclude))
        lists[user] = got
        tick(1)
    return lists, leaked


def _with_intervals(run: _Run, models: dict[str, ModelResult], cold: set[str], cutoff: int | None
                    ) -> EvaluationResult:
    """Bootstrap intervals of every model's nDCG@10 and the paired reranked − best baseline difference."""
    config, dataset = run.config, run.dataset
    with run.watch.stage("bootstrap"):
        tick = run.progress.stage("bootstrap", len(models))
        for m in models.values():
            if m.per_user_ndcg is not None:
                m.ndcg_ci = bootstrap_ci(m.per_user_ndcg, n_resamples=config.n_bootstrap, seed=config.seed)
            tick(1)
        shape = DatasetShape(source=dataset.source, users=dataset.n_users, items=dataset.n_items,
                             interactions=dataset.interactions.height, train_interactions=run.split.train.height,
                             eval_users=len(run.users),
                             cold_users=len(cold) if config.protocol == "global-time" else None, cutoff=cutoff)
        result = EvaluationResult(protocol=config.protocol, config=config, dataset=shape, models=models, paired={},
                                  notes=run.notes)
        result.paired = _paired(result, config)
    return result


def _paired(result: EvaluationResult, config: EvaluationConfig) -> dict[str, Any]:
    """reranked − best baseline on nDCG@10, users resampled together (a paired bootstrap)."""
    best = result.best_baseline()
    reranked = result.models[RERANKED]
    if not reranked.available or best is None:
        return {"available": False, "metric": "ndcg@10", "best_baseline": best,
                "reason": reranked.reason if not reranked.available else "no baseline available"}
    a, b = reranked.per_user_ndcg, result.models[best].per_user_ndcg
    assert a is not None and b is not None
    diff = paired_difference(a, b, n_resamples=config.n_bootstrap, seed=config.seed)
    return {"available": True, "metric": "ndcg@10", "model": RERANKED, "best_baseline": best,
            "difference": _r(diff.mean), "ci95": [_r(diff.low), _r(diff.high)]}


def _groups(run: _Run, cold: set[str], lists_by_model: dict[str, dict[str, list[str]]],
            candidate_lists: dict[str, list[str]]) -> dict[str, GroupResult]:
    """Every model's metrics on the warm and on the cold evaluation users (global-time)."""
    out: dict[str, GroupResult] = {}
    warm_users = [u for u in run.users if u not in cold]
    cold_users = [u for u in run.users if u in cold]
    for group, members in (("warm", warm_users), ("cold", cold_users)):
        if not members:
            out[group] = GroupResult(group, 0, {})
            continue
        models = {name: run.score(lists, members).means() for name, lists in lists_by_model.items()}
        models[CANDIDATES] = {"recall@100": run.candidate_recall(candidate_lists, members)}
        out[group] = GroupResult(group, len(members), models)
    return out


__all__ = ["BASELINES", "CANDIDATES", "METRIC_KEYS", "RERANKED", "EvaluationConfig", "EvaluationResult",
           "ModelResult", "run_evaluation", "split_for"]
