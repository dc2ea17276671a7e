"""The integration point for the full online path ("reranked") in the offline protocol.

The evaluation does not re-implement the online path: it asks a factory for an object that
answers one request the way the API does (same service code), built from the training split only.
The service module provides the factory as `recsys.service.build_evaluation_pipeline`; until it
exists, the report shows "reranked" as not available rather than a stand-in.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.data.splits import HoldoutSplit
from recsys.store import SessionEvent

log = logging.getLogger(__name__)

FACTORY_MODULE = "recsys.service"
FACTORY_NAME = "build_evaluation_pipeline"


class PipelineRecommender(Protocol):
    """One online request: the user's top-k given the live session, never an item in `exclude`."""

    def recommend(self, user_id: str, session: list[SessionEvent], exclude: list[str],
                  k: int) -> list[str]: ...


PipelineFactory = Callable[[HoldoutSplit, Dataset, Settings], PipelineRecommender]


def resolve_pipeline_factory() -> tuple[PipelineFactory | None, str | None]:
    """The service's factory, or (None, why not).

    An import failure is reported, not raised: the baselines are still worth a report, and the
    reason (shown in place of the "reranked" row) says exactly what is missing.
    """
    spec = importlib.util.find_spec(FACTORY_MODULE)
    package_dir = Path(__file__).resolve().parents[1]
    if spec is None or spec.origin is None or package_dir not in Path(spec.origin).resolve().parents:
        # An editable install of another checkout can shadow a module this checkout lacks: never
        # evaluate code from outside the package being evaluated.
        return None, f"{FACTORY_MODULE} is not available yet (the online service is not integrated)"
    try:
        module = importlib.import_module(FACTORY_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name == FACTORY_MODULE:
            return None, f"{FACTORY_MODULE} is not available yet (the online service is not integrated)"
        log.warning("event=pipeline_import_failed module=%s error=%r", FACTORY_MODULE, str(exc))
        return None, f"importing {FACTORY_MODULE} failed: {exc}"
    except ImportError as exc:
        log.warning("event=pipeline_import_failed module=%s error=%r", FACTORY_MODULE, str(exc))
        return None, f"importing {FACTORY_MODULE} failed: {exc}"
    factory = getattr(module, FACTORY_NAME, None)
    if factory is None:
        return None, f"{FACTORY_MODULE} has no {FACTORY_NAME}(split, dataset, settings)"
    return factory, None
