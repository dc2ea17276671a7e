"""What a request serves from: one immutable `ServingState`, and how a new one is loaded.

State that changes (candidate version, bundle, model) is swapped as a whole, so a request never
mixes two versions. `load_state` never raises for a bad artifact: a corrupt model or bundle is
reported (readiness says why) and the previous one keeps serving.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from recsys.artifacts import ArtifactRegistry
from recsys.candidates.bundle import ItemBundle
from recsys.candidates.item_side import ItemSide
from recsys.config import ALSConfig
from recsys.errors import ArtifactError, StoreUnavailableError
from recsys.ranking.model import RankerModel
from recsys.store import Store

log = logging.getLogger(__name__)


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

    @property
    def model_version(self) -> str | None:
        return self.model.version if self.model is not None else None

    def same_as(self, other: ServingState) -> bool:
        return (self.candidates_version == other.candidates_version and self.model is other.model
                and self.model_error == other.model_error and self.version_lost == other.version_lost)


EMPTY_STATE = ServingState(None, None, None, None)


def load_state(old: ServingState, store: Store, registry: ArtifactRegistry, als: ALSConfig) -> ServingState:
    """The state to serve now: the published candidate version and the promoted model, loaded if new."""
    version, version_lost = _published_version(old, store)
    bundle, item_side = old.bundle, old.item_side
    if version is not None and version != old.candidates_version:
        try:
            bundle = ItemBundle.load(registry, version)
            item_side = ItemSide(bundle, als.regularization, als.alpha)
        except ArtifactError as exc:
            log.error("event=bundle_load_failed version=%s error=%r", version, str(exc))
            version, bundle, item_side = old.candidates_version, old.bundle, old.item_side
    model, model_error = _promoted_model(old, registry)
    return ServingState(version, bundle, item_side, model, model_error, version_lost)


def _published_version(old: ServingState, store: Store) -> tuple[str | None, bool]:
    try:
        published = store.candidates.current_version()
    except StoreUnavailableError:
        return old.candidates_version, old.version_lost  # keep serving what we have; readiness reports the store
    # The pointer is never removed once set: its absence means the store lost its data.
    return published or old.candidates_version, published is None and old.candidates_version is not None


def _promoted_model(old: ServingState, registry: ArtifactRegistry) -> tuple[RankerModel | None, str | None]:
    wanted = registry.current_model()
    if wanted is None:
        return old.model, old.model_error
    if old.model is not None and old.model.version == wanted:
        return old.model, None  # what is promoted is what serves: an earlier load failure no longer applies
    try:
        return RankerModel.load(registry, wanted), None
    except (ArtifactError, OSError) as exc:
        log.error("event=model_load_failed model_version=%s error=%r", wanted, str(exc))
        return old.model, f"model {wanted} failed to load: {exc}"
