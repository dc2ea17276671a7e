"""The online path as a plain class: candidates + session → features → LightGBM → filters → top-k.

No web framework here: the API is a thin shell over `RecommendationService.recommend`, and the
evaluation runs the very same method. State that changes (candidate version, model) lives in one
immutable `ServingState` swapped atomically, so a request never mixes two versions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from recsys.bundle import ItemBundle, bundles_dir
from recsys.config import Settings
from recsys.errors import ArtifactError, RecsysError, StoreUnavailableError
from recsys.event_buffer import EventBuffer
from recsys.features import REGISTRY, ItemSide
from recsys.features.context import SOURCE_ALS, make_context
from recsys.ranking.model import RankerModel, current_model_version, models_dir
from recsys.store import CandidateStore, SessionEvent, UserRecord

log = logging.getLogger(__name__)

# Fallback reasons reported in responses and counted in metrics.
UNKNOWN_USER = "unknown_user"
STORE_UNAVAILABLE = "store_unavailable"
NO_MODEL = "no_model"
NO_CANDIDATES = "no_candidates_published"
MODEL_ERROR = "model_error"

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
    fallback: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ServingState:
    """Everything one request needs, loaded together and never mutated."""

    candidates_version: str | None
    bundle: ItemBundle | None
    item_side: ItemSide | None
    model: RankerModel | None
    model_error: str | None = None
    # The store answers but no longer holds the version being served (e.g. Redis restarted empty):
    # users' candidate lists are gone until the next refresh publishes, which is a store problem,
    # not every user suddenly being unknown.
    version_lost: bool = False


class RecommendationService:
    def __init__(self, settings: Settings, store: CandidateStore, *, feature_sink: FeatureSink | None = None,
                 registry: object | None = None) -> None:
        self.settings = settings
        self.store = store
        self.feature_sink = feature_sink
        self._state = ServingState(None, None, None, None)
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.events = EventBuffer(store, max_events=settings.event_buffer_max_events,
                                  session_max_events=settings.session_max_events,
                                  session_ttl_seconds=settings.session_ttl_seconds)

    # ---- loading --------------------------------------------------------------------------
    @property
    def state(self) -> ServingState:
        return self._state

    def reload(self) -> bool:
        """Load a new candidate version / promoted model if there is one. Returns True on change.

        Failures keep the current state serving: a corrupt model or a missing bundle is logged and
        reported, never swapped in.
        """
        with self._reload_lock:
            old = self._state
            version = old.candidates_version
            version_lost = old.version_lost
            try:
                published = self.store.current_version()
                # The pointer is never removed once set: its absence means the store lost its data.
                version_lost = published is None and version is not None
                version = published or version
            except StoreUnavailableError:
                pass  # keep serving what we have; readiness reports the store
            bundle, item_side = old.bundle, old.item_side
            if version is not None and version != old.candidates_version:
                try:
                    bundle = ItemBundle.load(bundles_dir(self.settings.artifacts_dir) / version)
                    item_side = ItemSide(bundle, self.settings.als.regularization, self.settings.als.alpha)
                except ArtifactError as exc:
                    log.error("event=bundle_load_failed version=%s error=%r", version, str(exc))
                    version, bundle, item_side = old.candidates_version, old.bundle, old.item_side
            model, model_error = old.model, old.model_error
            wanted = current_model_version(self.settings.artifacts_dir)
            if wanted is not None and (old.model is None or old.model.version != wanted):
                try:
                    model = RankerModel.load(models_dir(self.settings.artifacts_dir) / wanted)
                    model_error = None
                except (ArtifactError, OSError) as exc:
                    model_error = f"model {wanted} failed to load: {exc}"
                    log.error("event=model_load_failed model_version=%s error=%r", wanted, str(exc))
            new = ServingState(version, bundle, item_side, model, model_error, version_lost)
            changed = (new.candidates_version != old.candidates_version or new.model is not old.model
                       or new.model_error != old.model_error or new.version_lost != old.version_lost)
            if changed:
                self._state = new
                log.info("event=serving_state candidates_version=%s model_version=%s version_lost=%s", version,
                         model.version if model else None, version_lost)
            return changed

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

    # ---- serving --------------------------------------------------------------------------
    def recommend(self, user_id: str, k: int = 10, *, session: Sequence[SessionEvent] | None = None,
                  exclude: Sequence[str] = (), now: float | None = None) -> Recommendations:
        """Top-k for a user. `session` given inline replaces the stored session (POST /v1/recommendations)."""
        t0 = time.perf_counter()
        state = self._state
        now = time.time() if now is None else now
        if state.bundle is None or state.item_side is None:
            return Recommendations(user_id, [], None, None, NO_CANDIDATES)
        fallback: str | None = None
        record = None
        try:
            record = self.store.read_user(state.candidates_version or "", user_id, with_session=session is None)
        except StoreUnavailableError:
            fallback = STORE_UNAVAILABLE
        except RecsysError as exc:  # a corrupt value for one user must not become a 5xx
            log.error("event=read_user_failed user_id=%s error=%r", user_id, str(exc))
            fallback = STORE_UNAVAILABLE
        t_read = time.perf_counter()
        events = list(session) if session is not None else (record.session if record else [])
        session_tuples = [(e.item_id, e.event, e.timestamp) for e in events]
        history = record.history if record is not None and record.history is not None else np.zeros(0, np.int64)
        if record is not None and record.candidates is not None:
            cand, scores, n_primary = record.candidates
        else:
            fallback = fallback or (STORE_UNAVAILABLE if self._store_lost(state, record) else UNKNOWN_USER)
            cand, scores, n_primary = self._fallback_candidates(state, session_tuples)
        blocked = np.concatenate([history, state.bundle.indices_of(list(exclude))])
        ctx = make_context(state.item_side, cand, scores, n_primary, history, session_tuples, now, blocked,
                           session_candidates=self.settings.candidates.session_candidates)
        t_feat = time.perf_counter()
        model = state.model
        if model is not None and ctx.n > 0:
            try:
                matrix = REGISTRY.build_matrix(model.feature_names, ctx)
                t_feat = time.perf_counter()
                final = model.predict(matrix)
            except Exception as exc:  # a model that cannot score must not take serving down
                log.error("event=predict_failed user_id=%s error=%r", user_id, str(exc))
                final, fallback = self._unranked_scores(ctx, fallback), fallback or MODEL_ERROR
            else:
                self._log_features(user_id, model, matrix)
        else:
            final = self._unranked_scores(ctx, fallback)
            if model is None:
                fallback = fallback or NO_MODEL
        t_rank = time.perf_counter()
        top = np.argsort(-final, kind="stable")[:k]
        ids = state.bundle.item_ids
        items = [ScoredItem(ids[int(ctx.candidates[i])], float(final[i]), r + 1) for r, i in enumerate(top)]
        return Recommendations(user_id, items, model.version if model else None, state.candidates_version, fallback,
                               {"read": (t_read - t0) * 1e3, "features": (t_feat - t_read) * 1e3,
                                "rank": (t_rank - t_feat) * 1e3})

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
            return Recommendations(user_id, [], None, None, NO_CANDIDATES)
        record = self.store.read_user(state.candidates_version or "", user_id, with_session=False)
        if record.candidates is None:
            return Recommendations(user_id, [], None, state.candidates_version,
                                   STORE_UNAVAILABLE if self._store_lost(state, record) else UNKNOWN_USER)
        cand, scores, _ = record.candidates
        ids = state.bundle.item_ids
        items = [ScoredItem(ids[int(c)], float(s), r + 1) for r, (c, s) in enumerate(zip(cand[:k], scores[:k],
                                                                                         strict=True))]
        return Recommendations(user_id, items, None, state.candidates_version, None)

    def similar_items(self, item_id: str, k: int = 10) -> list[ScoredItem] | None:
        """Item-to-item neighbours from the FAISS index; None when the item is unknown."""
        state = self._state
        if state.bundle is None or state.bundle.index is None or item_id not in state.bundle.item_index:
            return None
        idx = state.bundle.item_index[item_id]
        ids, scores = state.bundle.index.search(state.bundle.item_factors[idx:idx + 1], k + 1)
        out = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0 and i != idx][:k]
        return [ScoredItem(state.bundle.item_ids[i], s, r + 1) for r, (i, s) in enumerate(out)]

    # ---- fallbacks ------------------------------------------------------------------------
    @staticmethod
    def _store_lost(state: ServingState, record: UserRecord | None) -> bool:
        """A candidate miss because the store lost its data (pointer gone), not because the user is new.

        The request's own read sees the missing pointer at once; the reload poller's flag covers the
        reads that did not carry it.
        """
        return state.version_lost or (record is not None and record.published is None)

    def _fallback_candidates(self, state: ServingState, session: list[tuple[str, str, float]]
                             ) -> tuple[np.ndarray, np.ndarray, int]:
        """Popular items; make_context then adds the session's neighbours when there is a session."""
        assert state.item_side is not None
        popular = state.item_side.popular[: self.settings.candidates.n_candidates]
        return popular.astype(np.int64), state.item_side.pop_log[popular].astype(np.float32), 0

    @staticmethod
    def _unranked_scores(ctx: object, fallback: str | None) -> np.ndarray:
        """Without a model: ALS order for known users; for others, session similarity then popularity."""
        from recsys.features.context import FeatureContext

        assert isinstance(ctx, FeatureContext)
        if (ctx.source == SOURCE_ALS).any() or ctx.session_items.size == 0:
            return -np.arange(ctx.n, dtype=np.float32)
        return ctx.covisit_session + ctx.knn_session + 1e-3 * ctx.items.pop_log[ctx.candidates]
