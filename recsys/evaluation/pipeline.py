"""The full online path ("reranked") inside the offline protocol, through the service code itself.

The evaluation does not re-implement the online path: `build_service_pipeline` trains candidates
and the ranker on the training split only, publishes them into an in-memory store exactly as
`recsys refresh` / `recsys train-ranker` do, and answers each evaluation request with
`RecommendationService.recommend` — the method behind the HTTP API.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.data.splits import HoldoutSplit
from recsys.store import SessionEvent

if TYPE_CHECKING:
    from recsys.serving import RecommendationService

log = logging.getLogger(__name__)


class PipelineRecommender(Protocol):
    """One online request: the user's top-k given the live session, never an item in `exclude`."""

    def recommend(self, user_id: str, session: list[SessionEvent], exclude: list[str],
                  k: int) -> list[str]: ...


PipelineFactory = Callable[[HoldoutSplit, Dataset, Settings], PipelineRecommender]


class ServicePipeline:
    """Adapter: the protocol's request → RecommendationService.recommend (the API's code path)."""

    def __init__(self, service: RecommendationService, workdir: Path) -> None:
        self.service = service
        self.workdir = workdir

    def recommend(self, user_id: str, session: list[SessionEvent], exclude: list[str], k: int) -> list[str]:
        # "now" is the moment right after the session, as in ranker training: the protocol replays
        # the past, so wall-clock time would make every session look hours old.
        now = max((e.timestamp for e in session), default=0.0)
        rec = self.service.recommend(user_id, k, session=session, exclude=exclude, now=now)
        return [item.item_id for item in rec.items]

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def build_service_pipeline(split: HoldoutSplit, dataset: Dataset, settings: Settings) -> ServicePipeline:
    """refresh + train-ranker on `split.train` into a private artifacts dir and in-memory store."""
    from recsys.engines.local import run_refresh
    from recsys.ranking.train import train_ranker
    from recsys.serving import RecommendationService
    from recsys.store import open_store

    workdir = Path(tempfile.mkdtemp(prefix="recsys-eval-"))
    # Its own files and an in-memory store: an evaluation never touches the serving artifacts or store.
    local = settings.model_copy(update={"artifacts_dir": workdir, "artifacts_storage": "files"})
    store = open_store("embedded://:memory:")
    train = dataset.with_interactions(split.train)
    run_refresh(local, store, train, force=True)  # a private store: no serving version to protect
    train_ranker(local, train, force_promote=True)
    service = RecommendationService(local, store)
    service.reload()
    log.info("event=evaluation_pipeline_ready candidates_version=%s model_version=%s",
             service.state.candidates_version, service.state.model.version if service.state.model else None)
    return ServicePipeline(service, workdir)
