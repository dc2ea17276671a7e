"""What a request serves from: one immutable `ServingState`, and how a new one is loaded.

State that changes (candidate version, bundle, model) is swapped as a whole, so a request never
mixes two versions. `load_state` never raises for a bad artifact: a corrupt model or bundle is
reported (readiness says why) and the previous one keeps serving.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from recsys.artifacts import ArtifactRegistry
from recsys.candidates.bundle import ItemBundle
from recsys.candidates.item_side import ItemSide
from recsys.config import ALSConfig
from recsys.errors import ArtifactError, StoreLayoutError, StoreUnavailableError
from recsys.ranking.model import RankerModel
from recsys.store import Store

log = logging.getLogger(__name__)


# A published bundle that failed to load is retried at most this often by the poller (a load reads and
# checksums every file of the bundle); an admin reload retries at once.
BUNDLE_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class ServingState:
    """Everything one request needs, loaded together and never mutated.

    The problems (`bundle_error`, `model_error`, `version_lost`) are recomputed by every reload from
    what is published and what actually serves: fixing the cause clears them at the next reload.
    """

    candidates_version: str | None
    bundle: ItemBundle | None
    item_side: ItemSide | None
    model: RankerModel | None
    model_error: str | None = None
    # The store answers but no longer holds the version being served (e.g. Redis restarted empty):
    # users' candidate lists are gone until the next refresh publishes, which is a store problem,
    # not every user suddenly being unknown.
    version_lost: bool = False
    # The published candidate version whose bundle does not load (checksum mismatch, missing file...),
    # with the reason; `candidates_version` is then the older version still serving, if any.
    bundle_error: str | None = None
    failed_version: str | None = None
    bundle_failed_at: float = 0.0

    @property
    def model_version(self) -> str | None:
        return self.model.version if self.model is not None else None

    def same_as(self, other: ServingState) -> bool:
        return (self.candidates_version == other.candidates_version and self.model is other.model
                and self.model_error == other.model_error and self.version_lost == other.version_lost
                and self.bundle_error == other.bundle_error)


EMPTY_STATE = ServingState(None, None, None, None)


def load_state(old: ServingState, store: Store, registry: ArtifactRegistry, als: ALSConfig, *,
               force: bool = False) -> ServingState:
    """The state to serve now: the published candidate version and the promoted model, loaded if new.

    `force` retries a bundle that failed to load at once (admin reload) instead of after
    BUNDLE_RETRY_SECONDS.
    """
    version, version_lost = _published_version(old, store)
    bundle, item_side = old.bundle, old.item_side
    serving, bundle_error, failed_at = old.candidates_version, None, 0.0
    if version is not None and version != old.candidates_version:
        retry_due = force or old.failed_version != version or \
            time.monotonic() - old.bundle_failed_at >= BUNDLE_RETRY_SECONDS
        if not retry_due:
            bundle_error, failed_at = old.bundle_error, old.bundle_failed_at
        else:
            try:
                store.candidates.check_layout(version)
                bundle = ItemBundle.load(registry, version)
                item_side = ItemSide(bundle, als.regularization, als.alpha)
                serving = version
            except (ArtifactError, StoreLayoutError, StoreUnavailableError, OSError, ValueError) as exc:
                bundle_error, failed_at = str(exc), time.monotonic()
                if bundle_error != old.bundle_error:  # once per cause, not at every poll
                    log.error("event=bundle_load_failed version=%s serving=%s error=%r", version,
                              old.candidates_version, bundle_error)
    model, model_error = _promoted_model(old, registry)
    return ServingState(serving, bundle, item_side, model, model_error, version_lost, bundle_error,
                        version if bundle_error else None, failed_at)


def _published_version(old: ServingState, store: Store) -> tuple[str | None, bool]:
    try:
        published = store.candidates.current_version()
    except StoreUnavailableError:
        return old.failed_version or old.candidates_version, old.version_lost  # readiness reports the store
    # The pointer is never removed once set: its absence means the store lost its data.
    return published or old.candidates_version, published is None and old.candidates_version is not None


def _promoted_model(old: ServingState, registry: ArtifactRegistry) -> tuple[RankerModel | None, str | None]:
    """The promoted model and, when it cannot be loaded, why (the previous model, if any, keeps serving)."""
    wanted = registry.current_model()
    if wanted is None or (old.model is not None and old.model.version == wanted):
        return old.model, None  # what is promoted is what serves: no earlier failure applies any more
    try:
        return RankerModel.load(registry, wanted), None
    except (ArtifactError, OSError) as exc:
        error = f"model {wanted} failed to load: {exc}"
        if error != old.model_error:
            log.error("event=model_load_failed model_version=%s error=%r", wanted, str(exc))
        return old.model, error
