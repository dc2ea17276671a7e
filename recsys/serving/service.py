"""The online path as a plain class: read → candidates (or the next fallback) → features → rank → top-k.

No web framework here: the API is a thin shell over `RecommendationService.recommend`, and the
evaluation runs the very same method. What serves lives in one immutable `ServingState` swapped
atomically (state.py), so a request never mixes two versions.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from recsys.artifacts import ArtifactRegistry, registry_for
from recsys.candidates.sources import CachedList
from recsys.config import Settings
from recsys.errors import ConfigError, CorruptValueError, StoreUnavailableError
from recsys.experiments.assignment import Assignment, ExperimentSet
from recsys.experiments.config import RANKERS
from recsys.experiments.interleaving import team_draft
from recsys.experiments.manage import load_running
from recsys.features import REGISTRY, FeatureContext, make_context
from recsys.ranking.model import RankerModel
from recsys.serving.event_buffer import EventBuffer
from recsys.serving.fallback import FallbackReason, unranked_scores
from recsys.serving.state import EMPTY_STATE, ServingState, load_state
from recsys.store import SessionEvent, Store, UserRecord

log = logging.getLogger(__name__)

FeatureSink = Callable[[str, str, list[str], np.ndarray], None]


@dataclass(frozen=True)
class ScoredItem:
    item_id: str
    score: float
    rank: int


@dataclass
class Recommendations:
    user_id: str
    items: list[ScoredItem]
    model_version: str | None
    candidates_version: str | None
    fallback: FallbackReason | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    # 128 random bits naming this served list: events may cite it (the unit of attribution); the
    # impression log records the list under it.
    rec_id: str = ""
    served_at: float = 0.0
    # The experiment serving this request and the user's variant (`interleaved` for an interleaving
    # experiment); `teams[i]` names the variant whose list contributed items[i] (interleaving only).
    experiment: str | None = None
    variant: str | None = None
    teams: list[str] | None = None


ImpressionSink = Callable[[Recommendations], None]


@dataclass(frozen=True)
class UserRead:
    """The serving read of one user, or why there is none."""

    record: UserRecord | None
    fallback: FallbackReason | None


class RecommendationService:
    def __init__(self, settings: Settings, store: Store, *, registry: ArtifactRegistry | None = None,
                 feature_sink: FeatureSink | None = None, impression_sink: ImpressionSink | None = None) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry or registry_for(settings, store)
        self.feature_sink = feature_sink
        self.impression_sink = impression_sink
        self._state = EMPTY_STATE
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.events = EventBuffer(store.sessions, max_events=settings.event_buffer_max_events)
        self._reported: OrderedDict[str, None] = OrderedDict()  # corrupt keys already logged (bounded)
        self._reported_lock = threading.Lock()
        self._experiments = ExperimentSet()
        self._experiments_error: str | None = None

    # ---- loading --------------------------------------------------------------------------------
    @property
    def state(self) -> ServingState:
        return self._state

    def reload(self, *, force: bool = False) -> bool:
        """Load a new candidate version / promoted model if there is one, and recompute what is wrong.
        Returns True on change. `force` retries a bundle that failed to load without waiting."""
        self.reload_experiments()
        with self._reload_lock:
            old = self._state
            new = load_state(old, self.store, self.registry, self.settings.als, force=force)
            self._state = new  # always: an unchanged state still carries the time of the last failed load
            if new.same_as(old):
                return False
            log.info("event=serving_state candidates_version=%s model_version=%s version_lost=%s "
                     "bundle_error=%r model_error=%r", new.candidates_version, new.model_version,
                     new.version_lost, new.bundle_error, new.model_error)
            return True

    @property
    def experiments(self) -> ExperimentSet:
        return self._experiments

    def reload_experiments(self) -> None:
        """Read the running experiments from the store (every poll: one GET). On a store outage or a damaged
        value the set already held keeps serving: assignments stay sticky rather than dropping to none."""
        try:
            self._experiments = load_running(self.store)
            self._experiments_error = None
        except (StoreUnavailableError, CorruptValueError) as exc:
            if str(exc) != self._experiments_error:
                log.error("event=experiments_load_failed error=%r (the previous set keeps serving)", str(exc))
            self._experiments_error = str(exc)

    def start_background_reload(self) -> None:
        """Poll for new versions every `reload_interval_seconds` (no restart, no failed requests)."""
        def loop() -> None:
            while not self._stop.wait(self.settings.reload_interval_seconds):
                try:
                    self.reload()
                    if self.events.pending:
                        self.events.flush()  # events buffered during a store outage
                except Exception:  # never let the poller die
                    log.exception("event=reload_failed")

        self._thread = threading.Thread(target=loop, name="recsys-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ---- serving --------------------------------------------------------------------------------
    def recommend(self, user_id: str, k: int = 10, *, session: Sequence[SessionEvent] | None = None,
                  exclude: Sequence[str] = (), now: float | None = None, ranker: str | None = None
                  ) -> Recommendations:
        """Top-k for a user. `session` given inline replaces the stored session (POST /v1/recommendations).

        `ranker` ("model" or "als") serves what that variant would, whatever the running experiments say
        (offline comparisons of variants, the experiment simulator); None: the user's assignment decides.
        """
        t0 = time.perf_counter()
        state = self._state
        if ranker is not None:
            if ranker not in RANKERS:
                raise ConfigError(f"unknown ranker {ranker!r}: one of {', '.join(RANKERS)}")
            assignment: Assignment | None = Assignment("", "ab", "", ranker)
        else:
            assignment = self._experiments.assign(user_id) if self._experiments else None
        if state.bundle is None or state.item_side is None:
            return self._served(Recommendations(user_id, [], None, None, FallbackReason.NO_CANDIDATES,
                                                served_at=time.time()), assignment)
        now = time.time() if now is None else now
        read = self._read(state, user_id, with_session=session is None)
        t_read = time.perf_counter()
        ctx = self._candidates(state, read.record, session, exclude, now)
        fallback = read.fallback
        if read.record is None or read.record.candidates is None:
            fallback = fallback or (FallbackReason.STORE_UNAVAILABLE if self._store_lost(state, read.record)
                                    else FallbackReason.UNKNOWN_USER)
        t_features = time.perf_counter()
        rec_id = os.urandom(16).hex()
        model_version = state.model_version
        teams: list[str] | None = None
        if assignment is None or (assignment.pair is None and assignment.ranker == "model"):
            scores, fallback, t_features = self._rank(state.model, ctx, user_id, fallback, t_features)
            t_rank = time.perf_counter()
            items = self._top_k(state, ctx, scores, k)
        elif assignment.pair is None:  # A/B, ranking off: the candidates in ALS order
            model_version = None
            t_rank = time.perf_counter()
            items = self._top_k(state, ctx, unranked_scores(ctx), k)
        else:
            items, teams, fallback, t_features = self._interleaved(state, ctx, assignment, user_id, fallback,
                                                                   t_features, k, rec_id)
            t_rank = time.perf_counter()
        rec = Recommendations(user_id, items, model_version, state.candidates_version, fallback,
                              {"read": (t_read - t0) * 1e3, "features": (t_features - t_read) * 1e3,
                               "rank": (t_rank - t_features) * 1e3}, rec_id=rec_id, served_at=now, teams=teams)
        return self._served(rec, assignment)

    def _interleaved(self, state: ServingState, ctx: FeatureContext, assignment: Assignment, user_id: str,
                     fallback: FallbackReason | None, t_features: float, k: int, rec_id: str
                     ) -> tuple[list[ScoredItem], list[str], FallbackReason | None, float]:
        """Team-draft interleaving of the two variants' rankings of the same candidates (one predict at most:
        the ALS order costs a sort). The coin tosses are seeded by the rec_id, so a list can be recomputed."""
        assert assignment.pair is not None and state.bundle is not None
        by_ranker: dict[str, np.ndarray] = {}
        for variant in assignment.pair:
            if variant.ranker in by_ranker:
                continue
            if variant.ranker == "model":
                by_ranker["model"], fallback, t_features = self._rank(state.model, ctx, user_id, fallback, t_features)
            else:
                by_ranker[variant.ranker] = unranked_scores(ctx)
        a, b = (by_ranker[v.ranker] for v in assignment.pair)
        order_a = np.argsort(-a, kind="stable")[:k].tolist()
        order_b = np.argsort(-b, kind="stable")[:k].tolist()
        rng = np.random.default_rng(int(rec_id[:16], 16))
        picked, team_of = team_draft(order_a, order_b, k, rng)
        ids = state.bundle.item_ids
        scores = (a, b)
        items = [ScoredItem(ids[int(ctx.candidates[i])], float(scores[t][i]), r + 1)
                 for r, (i, t) in enumerate(zip(picked, team_of, strict=True))]
        return items, [assignment.pair[t].name for t in team_of], fallback, t_features

    def _served(self, rec: Recommendations, assignment: Assignment | None = None) -> Recommendations:
        """Name the list (rec_id), label it with the experiment and variant, and hand it to the impression sink;
        a failing sink never fails a request."""
        if not rec.rec_id:
            rec.rec_id = os.urandom(16).hex()
        if assignment is not None and assignment.experiment:
            rec.experiment, rec.variant = assignment.experiment, assignment.variant
        if self.impression_sink is not None:
            try:
                self.impression_sink(rec)
            except Exception as exc:
                log.error("event=impression_sink_failed user_id=%s error=%r", rec.user_id, str(exc))
        return rec

    def _read(self, state: ServingState, user_id: str, *, with_session: bool) -> UserRead:
        """Stage 1: the user's cached list, history and live session in one round trip, every value checked
        against the serving catalogue. A corrupt candidate or history value sends this user (only) down the
        fallback chain as `corrupt_value`; malformed session entries are skipped."""
        assert state.bundle is not None
        try:
            record = self.store.read_user(state.candidates_version or "", user_id, with_session=with_session,
                                          n_items=state.bundle.n_items)
        except StoreUnavailableError:
            return UserRead(None, FallbackReason.STORE_UNAVAILABLE)
        if record.corrupt is not None:
            self._report_once(record.corrupt[0], user_id, record.corrupt[1], "fallback")
        if record.session_skipped:
            self._report_once(record.session_key, user_id, f"{len(record.session_skipped)} malformed entries, "
                              f"first: {record.session_skipped[0]}", "skipped_entries")
        return UserRead(record, FallbackReason.CORRUPT_VALUE if record.corrupt is not None else None)

    def _report_once(self, key: str, user_id: str, why: str, action: str) -> None:
        """Log a corrupt key once (a hot user must not flood the log); the ~10k newest keys are remembered."""
        with self._reported_lock:
            if key in self._reported:
                return
            self._reported[key] = None
            if len(self._reported) > 10_000:
                self._reported.popitem(last=False)
        log.error("event=corrupt_store_value key=%s user_id=%s action=%s error=%r", key, user_id, action, why)

    def _candidates(self, state: ServingState, record: UserRecord | None, session: Sequence[SessionEvent] | None,
                    exclude: Sequence[str], now: float) -> FeatureContext:
        """Stage 2: the candidate pool (cached list or its fallback, minus history and excludes, plus the
        request-time sources) as the context every feature is computed on."""
        assert state.item_side is not None and state.bundle is not None
        events = list(session) if session is not None else (record.session if record is not None else [])
        history = record.history if record is not None and record.history is not None else np.zeros(0, np.int64)
        cached = CachedList(*record.candidates) if record is not None and record.candidates is not None else None
        blocked = np.concatenate([history, state.bundle.indices_of(list(exclude))])
        return make_context(state.item_side, cached, history, [(e.item_id, e.event, e.timestamp) for e in events],
                            now, blocked, config=self.settings.candidates)

    def _rank(self, model: RankerModel | None, ctx: FeatureContext, user_id: str, fallback: FallbackReason | None,
              t_features: float) -> tuple[np.ndarray, FallbackReason | None, float]:
        """Stages 3-4: features for the model's feature list, one predict; unranked order without a model.

        Returns the scores, the fallback, and the time the feature matrix was ready."""
        if model is None or ctx.n == 0:
            return unranked_scores(ctx), fallback or (FallbackReason.NO_MODEL if model is None else None), t_features
        try:
            matrix = REGISTRY.build_matrix(model.feature_names, ctx)
            t_features = time.perf_counter()
            scores = model.predict(matrix)
        except Exception as exc:  # a model that cannot score must not take serving down
            log.error("event=predict_failed user_id=%s error=%r", user_id, str(exc))
            return unranked_scores(ctx), fallback or FallbackReason.MODEL_ERROR, t_features
        self._log_features(user_id, model, matrix)
        return scores, fallback, t_features

    @staticmethod
    def _top_k(state: ServingState, ctx: FeatureContext, scores: np.ndarray, k: int) -> list[ScoredItem]:
        """Stage 5: the k best, ties kept in candidate order."""
        assert state.bundle is not None
        top = np.argsort(-scores, kind="stable")[:k]
        ids = state.bundle.item_ids
        return [ScoredItem(ids[int(ctx.candidates[i])], float(scores[i]), r + 1) for r, i in enumerate(top)]

    def _log_features(self, user_id: str, model: RankerModel, matrix: np.ndarray) -> None:
        """Hand the exact matrix the ranker scored to the feature sink; a failing sink never fails a request."""
        if self.feature_sink is None:
            return
        try:
            self.feature_sink(user_id, model.version, model.feature_names, matrix)
        except Exception as exc:
            log.error("event=feature_sink_failed user_id=%s error=%r", user_id, str(exc))

    def candidates(self, user_id: str, k: int = 100) -> Recommendations:
        """The cached candidates in ALS order, unranked (operators; latency baseline)."""
        state = self._state
        if state.bundle is None:
            return Recommendations(user_id, [], None, None, FallbackReason.NO_CANDIDATES)
        record = self.store.read_user(state.candidates_version or "", user_id, with_session=False,
                                      n_items=state.bundle.n_items)
        if record.candidates is None:
            if record.corrupt is not None:
                self._report_once(record.corrupt[0], user_id, record.corrupt[1], "fallback")
            reason = (FallbackReason.CORRUPT_VALUE if record.corrupt is not None else
                      FallbackReason.STORE_UNAVAILABLE if self._store_lost(state, record) else
                      FallbackReason.UNKNOWN_USER)
            return Recommendations(user_id, [], None, state.candidates_version, reason)
        cand, scores, _ = record.candidates
        ids = state.bundle.item_ids
        items = [ScoredItem(ids[int(c)], float(s), r + 1)
                 for r, (c, s) in enumerate(zip(cand[:k], scores[:k], strict=True))]
        return Recommendations(user_id, items, None, state.candidates_version, None)

    def similar_items(self, item_id: str, k: int = 10) -> list[ScoredItem] | None:
        """Item-to-item neighbours from the FAISS index; None when the item is unknown."""
        bundle = self._state.bundle
        if bundle is None or bundle.index is None or item_id not in bundle.item_index:
            return None
        idx = bundle.item_index[item_id]
        ids, scores = bundle.index.search(bundle.item_factors[idx:idx + 1], k + 1)
        out = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0 and i != idx][:k]
        return [ScoredItem(bundle.item_ids[i], s, r + 1) for r, (i, s) in enumerate(out)]

    @staticmethod
    def _store_lost(state: ServingState, record: UserRecord | None) -> bool:
        """A candidate miss because the store lost its data (pointer gone), not because the user is new.

        The request's own read sees the missing pointer at once; the reload poller's flag covers the
        reads that did not carry it.
        """
        return state.version_lost or (record is not None and record.pointer_read and record.published is None)
