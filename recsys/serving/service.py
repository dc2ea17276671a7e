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
from dataclasses import dataclass, field, replace

import numpy as np

from recsys.artifacts import ArtifactRegistry, registry_for
from recsys.candidates.sources import NEW_ITEMS, SOURCE_NAMES, CachedList, NewItem, category_affinity
from recsys.catalogue import CatalogueView
from recsys.config import Settings
from recsys.errors import ConfigError, CorruptValueError, StoreUnavailableError
from recsys.experiments.assignment import Assignment, ExperimentSet
from recsys.experiments.config import RANKERS
from recsys.experiments.interleaving import team_draft
from recsys.experiments.manage import load_running
from recsys.features import REGISTRY, FeatureContext, make_context
from recsys.ranking.model import RankerModel
from recsys.serving.contributions import Explanation, explanations
from recsys.serving.event_buffer import EventBuffer
from recsys.serving.fallback import FallbackReason, unranked_scores
from recsys.serving.rules import NO_RULES, Rules, allowed_mask, diversify, record_matches
from recsys.serving.state import EMPTY_STATE, ServingState, load_state
from recsys.store import CatalogueSnapshot, SessionEvent, Store, UserRecord

log = logging.getLogger(__name__)

FeatureSink = Callable[[str, str, list[str], np.ndarray], None]


@dataclass(frozen=True)
class ScoredItem:
    item_id: str
    score: float
    rank: int
    explanation: Explanation | None = None  # with explain=True


# The source named in explanations for items filled in from popular items after the ranked ones.
POPULAR_FILL = "popular_fill"


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
        # The catalogue over the serving bundle, rebuilt only when the catalogue version (read per
        # request) or the candidate version changes; swapped whole, like the serving state.
        self._catalogue: CatalogueView | None = None
        self._snapshot = CatalogueSnapshot(0, {})
        self._catalogue_lock = threading.Lock()
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
                  exclude: Sequence[str] = (), now: float | None = None, ranker: str | None = None,
                  rules: Rules = NO_RULES, explain: bool = False) -> Recommendations:
        """Top-k for a user. `session` given inline replaces the stored session (POST /v1/recommendations).

        `ranker` ("model" or "als") serves what that variant would, whatever the running experiments say
        (offline comparisons of variants, the experiment simulator); None: the user's assignment decides.
        `rules`: category/attribute filters and the diversity cap (rules.py); `explain`: each item's
        largest score contributions and its candidate source (contributions.py).
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
        view = self.catalogue_view(state, read.record, store_down=read.fallback == FallbackReason.STORE_UNAVAILABLE)
        t_read = time.perf_counter()
        ruled_out = self._ruled_out(view, rules, now)  # raises InvalidRequestError before any work
        ctx = self._candidates(state, read.record, session, exclude, now, ruled_out)
        fallback = read.fallback
        if read.record is None or read.record.candidates is None:
            fallback = fallback or (FallbackReason.STORE_UNAVAILABLE if self._store_lost(state, read.record)
                                    else FallbackReason.UNKNOWN_USER)
        t_features = time.perf_counter()
        rec_id = os.urandom(16).hex()
        model_version = state.model_version
        teams: list[str] | None = None
        cap = rules.max_per_category if rules.max_per_category is not None else self.settings.rules.max_per_category
        if assignment is None or (assignment.pair is None and assignment.ranker == "model"):
            scores, matrix, fallback, t_features = self._rank(state.model, ctx, user_id, fallback, t_features)
            t_rank = time.perf_counter()
            top = self._top_positions(view, ctx, scores, k, cap)
            items = self._items(state, ctx, scores, top, state.model if explain and matrix is not None else None,
                                matrix)
        elif assignment.pair is None:  # A/B, ranking off: the candidates in ALS order
            model_version = None
            t_rank = time.perf_counter()
            scores = unranked_scores(ctx)
            items = self._items(state, ctx, scores, self._top_positions(view, ctx, scores, k, cap), None, None)
        else:
            # Interleaved lists keep their team attribution position by position: availability and filters
            # apply (the pool has none of the excluded items), diversity, fill and exploration do not.
            items, teams, fallback, t_features = self._interleaved(state, ctx, assignment, user_id, fallback,
                                                                   t_features, k, rec_id)
            t_rank = time.perf_counter()
        if teams is None and len(items) < k and rules.narrows:
            items += self._popular_fill(state, view, ctx, ruled_out, items, k, cap, explain)
            fallback = fallback or FallbackReason.FILTER_TOO_NARROW
        if teams is None and self.settings.rules.exploration_share > 0 and view is not None and view.new_items:
            events = list(session) if session is not None else (read.record.session if read.record else [])
            items = self._explore(state, view, ctx, items, k, rules, cap, now,
                                  set(exclude) | {e.item_id for e in events}, explain)
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
                by_ranker["model"], _, fallback, t_features = self._rank(state.model, ctx, user_id, fallback,
                                                                         t_features)
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

    # ---- the catalogue and the rules ------------------------------------------------------------
    def catalogue_view(self, state: ServingState, record: UserRecord | None = None, *,
                       store_down: bool = False) -> CatalogueView | None:
        """The catalogue over the serving bundle at the store's current catalogue version.

        The version counter comes with the user's read (one round trip); where it did not (a cluster, the
        similar-items endpoint) it costs one GET. The catalogue itself is reloaded only when the counter
        moved, so a change reaches every replica on its next request. With the store down the last
        catalogue keeps applying.
        """
        bundle = state.bundle
        if bundle is None:
            return None
        version = record.catalogue_version if record is not None else None
        if version is None and not store_down:
            try:
                version = self.store.catalogue.version()
            except StoreUnavailableError:
                store_down = True
        view = self._catalogue
        if view is not None and view.bundle_version == bundle.version and (store_down or view.version == version):
            return view
        with self._catalogue_lock:
            view = self._catalogue
            if view is not None and view.bundle_version == bundle.version and (store_down or view.version == version):
                return view
            snapshot = self._snapshot
            if not store_down and version != snapshot.version:
                try:
                    snapshot = self.store.catalogue.snapshot()
                except (StoreUnavailableError, CorruptValueError) as exc:  # keep applying the last one
                    log.error("event=catalogue_load_failed version=%s error=%r", version, str(exc))
            self._snapshot = snapshot
            view = CatalogueView(snapshot, bundle.item_ids, bundle.item_index, bundle.categories,
                                 bundle.category_names, bundle.version)
            self._catalogue = view
            log.info("event=catalogue_loaded version=%d items=%d candidates_version=%s", view.version,
                     len(snapshot.items), bundle.version)
            return view

    @staticmethod
    def _ruled_out(view: CatalogueView | None, rules: Rules, now: float) -> np.ndarray:
        """Item indices this request may not serve: unavailable now, or outside its filters."""
        if view is None:
            return np.zeros(0, dtype=np.int64)
        out = view.unavailable(now)
        allowed = allowed_mask(view, rules)
        if allowed is not None:
            out = np.concatenate([out, np.flatnonzero(~allowed)])
        return out

    def _top_positions(self, view: CatalogueView | None, ctx: FeatureContext, scores: np.ndarray, k: int,
                       cap: int) -> np.ndarray:
        """Stage 5: positions in `ctx` of the k best (ties in candidate order), diversified when capped."""
        if cap > 0 and view is not None:
            order = np.argsort(-scores, kind="stable")
            return order[diversify(view, ctx.candidates[order], k, cap)]
        return np.argsort(-scores, kind="stable")[:k]

    def _items(self, state: ServingState, ctx: FeatureContext, scores: np.ndarray, top: np.ndarray,
               explain_with: RankerModel | None, matrix: np.ndarray | None) -> list[ScoredItem]:
        assert state.bundle is not None
        ids = state.bundle.item_ids
        explained: list[Explanation | None] = [None] * top.size
        if explain_with is not None and matrix is not None:
            explained = list(explanations(explain_with, matrix[top],
                                          [SOURCE_NAMES.get(int(ctx.source[i]), str(int(ctx.source[i])))
                                           for i in top.tolist()]))
        return [ScoredItem(ids[int(ctx.candidates[i])], float(scores[i]), r + 1, explained[r])
                for r, i in enumerate(top.tolist())]

    def _popular_fill(self, state: ServingState, view: CatalogueView | None, ctx: FeatureContext,
                      ruled_out: np.ndarray, items: list[ScoredItem], k: int, cap: int,
                      explain: bool) -> list[ScoredItem]:
        """The most popular items the filters allow, after the ranked ones (not in the pool already, not
        history, session or excluded): their score is their log-popularity."""
        assert state.item_side is not None and state.bundle is not None
        side = state.item_side
        taken = np.zeros(side.n_items, dtype=bool)
        taken[ruled_out] = True
        taken[ctx.candidates] = True  # already ranked (or held back by the diversity cap)
        taken[ctx.history] = True
        taken[ctx.session_items] = True
        chosen = state.bundle.indices_of([i.item_id for i in items])
        popular = side.popular[~taken[side.popular]]
        if cap > 0 and view is not None:
            keep = diversify(view, np.concatenate([chosen, popular]), k, cap)
            fill = np.concatenate([chosen, popular])[keep[keep >= chosen.size]]
        else:
            fill = popular[:k - len(items)]
        ids = state.bundle.item_ids
        why = Explanation(POPULAR_FILL, (), 0.0) if explain else None
        return [ScoredItem(ids[int(i)], float(side.pop_log[i]), len(items) + r + 1, why)
                for r, i in enumerate(fill.tolist())]

    def _explore(self, state: ServingState, view: CatalogueView, ctx: FeatureContext, items: list[ScoredItem],
                 k: int, rules: Rules, cap: int, now: float, seen: set[str], explain: bool) -> list[ScoredItem]:
        """The exploration slot: a share of the positions goes to new items (catalogue items the candidate
        version does not know), the best for this user by category affinity (candidates/sources/new_items.py).

        Slots are spread over the list (slot j of n at position round((j + 0.5) * k / n)); the ranked items
        they displace drop off the end. New items obey the request's filters, availability and the cap.
        """
        n_slots = max(1, round(self.settings.rules.exploration_share * k))
        eligible = [NewItem(r.item_id, r.categories, r.created_at or 0.0) for r in view.new_items
                    if r.available_at(now) and r.item_id not in seen and record_matches(r, rules)]
        if not eligible:
            return items
        names = view.category_names
        history = [[names[c] for c in view.categories_of(int(i)).tolist()] for i in ctx.history[-50:].tolist()]
        session = [[names[c] for c in view.categories_of(int(i)).tolist()] for i in ctx.session_items.tolist()]
        affinity = category_affinity([h for h in history if h], [s for s in session if s])
        kept = items[:max(k - n_slots, 0)]
        counts: dict[str, int] = {}
        assert state.bundle is not None
        for it in kept:
            idx = state.bundle.item_index.get(it.item_id)
            for c in (view.categories_of(idx).tolist() if idx is not None else []):
                counts[names[c]] = counts.get(names[c], 0) + 1
        picks: list[tuple[str, float]] = []
        by_id = {it.item_id: it for it in eligible}
        for item_id, score in NEW_ITEMS.propose(affinity, eligible, len(eligible)):
            cats = by_id[item_id].categories
            if cap > 0 and any(counts.get(c, 0) >= cap for c in cats):
                continue
            for c in cats:
                counts[c] = counts.get(c, 0) + 1
            picks.append((item_id, score))
            if len(picks) == n_slots:
                break
        if not picks:
            return items
        # Without a cap the displaced tail comes back when fewer new items qualified; with one, the counts
        # above were taken over the shorter list and must stay true.
        kept = items[:k - len(picks)] if cap == 0 else kept
        why = Explanation("new_items", (), 0.0) if explain else None
        out = list(kept)
        for j, (item_id, score) in enumerate(picks):
            pos = min(round((j + 0.5) * k / len(picks)), len(out))
            out.insert(pos, ScoredItem(item_id, score, 0, why))
        return [replace(it, rank=r + 1) for r, it in enumerate(out)]

    def _candidates(self, state: ServingState, record: UserRecord | None, session: Sequence[SessionEvent] | None,
                    exclude: Sequence[str], now: float, ruled_out: np.ndarray) -> FeatureContext:
        """Stage 2: the candidate pool (cached list or its fallback, minus history, excludes and what the
        rules rule out, plus the request-time sources) as the context every feature is computed on."""
        assert state.item_side is not None and state.bundle is not None
        events = list(session) if session is not None else (record.session if record is not None else [])
        history = record.history if record is not None and record.history is not None else np.zeros(0, np.int64)
        cached = CachedList(*record.candidates) if record is not None and record.candidates is not None else None
        blocked = np.concatenate([history, state.bundle.indices_of(list(exclude)), ruled_out])
        return make_context(state.item_side, cached, history, [(e.item_id, e.event, e.timestamp) for e in events],
                            now, blocked, config=self.settings.candidates)

    def _rank(self, model: RankerModel | None, ctx: FeatureContext, user_id: str, fallback: FallbackReason | None,
              t_features: float) -> tuple[np.ndarray, np.ndarray | None, FallbackReason | None, float]:
        """Stages 3-4: features for the model's feature list, one predict; unranked order without a model.

        Returns the scores, the feature matrix scored (None when unranked), the fallback, and the time
        the feature matrix was ready."""
        if model is None or ctx.n == 0:
            return (unranked_scores(ctx), None, fallback or (FallbackReason.NO_MODEL if model is None else None),
                    t_features)
        try:
            matrix = REGISTRY.build_matrix(model.feature_names, ctx)
            t_features = time.perf_counter()
            scores = model.predict(matrix)
        except Exception as exc:  # a model that cannot score must not take serving down
            log.error("event=predict_failed user_id=%s error=%r", user_id, str(exc))
            return unranked_scores(ctx), None, fallback or FallbackReason.MODEL_ERROR, t_features
        self._log_features(user_id, model, matrix)
        return scores, matrix, fallback, t_features

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
        view = self.catalogue_view(state, record)
        if record.candidates is None:
            if record.corrupt is not None:
                self._report_once(record.corrupt[0], user_id, record.corrupt[1], "fallback")
            reason = (FallbackReason.CORRUPT_VALUE if record.corrupt is not None else
                      FallbackReason.STORE_UNAVAILABLE if self._store_lost(state, record) else
                      FallbackReason.UNKNOWN_USER)
            return Recommendations(user_id, [], None, state.candidates_version, reason)
        cached = CachedList(*record.candidates)
        assert state.item_side is not None
        cand, scores = cached.items, cached.scores(state.item_side.factors)
        gone = view.unavailable(time.time()) if view is not None else np.zeros(0, dtype=np.int64)
        if gone.size:  # never an unavailable item, on any path
            keep = ~np.isin(cand, gone)
            cand, scores = cand[keep], scores[keep]
        ids = state.bundle.item_ids
        items = [ScoredItem(ids[int(c)], float(s), r + 1)
                 for r, (c, s) in enumerate(zip(cand[:k], scores[:k], strict=True))]
        return Recommendations(user_id, items, None, state.candidates_version, None)

    def similar_items(self, item_id: str, k: int = 10) -> list[ScoredItem] | None:
        """Item-to-item neighbours from the FAISS index (available items only); None when the item is unknown."""
        state = self._state
        bundle = state.bundle
        if bundle is None or bundle.index is None or item_id not in bundle.item_index:
            return None
        view = self.catalogue_view(state)
        gone = np.zeros(bundle.n_items, dtype=bool)
        if view is not None:
            gone[view.unavailable(time.time())] = True
        idx = bundle.item_index[item_id]
        gone[idx] = True
        # Ask for enough neighbours that k remain after dropping the unavailable ones.
        want = min(k + 1 + int(gone.sum()), bundle.n_items)
        ids, scores = bundle.index.search(bundle.item_factors[idx:idx + 1], want)
        out = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0 and not gone[i]][:k]
        return [ScoredItem(bundle.item_ids[i], s, r + 1) for r, (i, s) in enumerate(out)]

    @staticmethod
    def _store_lost(state: ServingState, record: UserRecord | None) -> bool:
        """A candidate miss because the store lost its data (pointer gone), not because the user is new.

        The request's own read sees the missing pointer at once; the reload poller's flag covers the
        reads that did not carry it.
        """
        return state.version_lost or (record is not None and record.pointer_read and record.published is None)
