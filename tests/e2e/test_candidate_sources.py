"""Candidate sources: a new source is one class plus one registration line, and it reaches every path."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recsys.candidates.sources import SOURCE_ALS, SOURCE_POPULAR, SOURCES, CachedList, Proposal, SourceRequest
from recsys.features import make_context
from recsys.store import Store
from tests.e2e.conftest import Trained

TOY_CODE = 99


class LeastPopular:
    """A toy request-time source: the least popular item not yet in the pool."""

    name = "toy-least-popular"

    def propose(self, request: SourceRequest, taken: np.ndarray) -> Proposal:
        order = request.items.popular[::-1]
        return Proposal.of(order[~taken[order]][:1], None, TOY_CODE)


@pytest.fixture
def toy_source() -> Iterator[LeastPopular]:
    source = LeastPopular()
    SOURCES.add_extra(source)  # the one registration line (recsys/candidates/sources/__init__.py)
    yield source
    SOURCES.remove(source.name)


def test_a_registered_source_joins_known_and_unknown_users_pools(trained: Trained, any_store: Store,
                                                                 toy_source: LeastPopular) -> None:
    app = create_app(trained.settings, any_store, background_reload=False)
    with TestClient(app) as client:
        service = app.state.service
        state = service.state
        least = int(state.item_side.popular[-1])
        scored: list[np.ndarray] = []
        service.feature_sink = lambda user, version, names, matrix: scored.append(matrix)

        # A known user: the cached ALS list, then the toy item, with no ALS score (NaN).
        record = any_store.read_user(state.candidates_version, "u5", with_session=False)
        ctx = make_context(state.item_side, CachedList(*record.candidates), record.history, [], 0.0, record.history,
                           config=trained.settings.candidates)
        assert ctx.candidates[-1] == least and ctx.source[-1] == TOY_CODE and np.isnan(ctx.als_scores[-1])
        assert (ctx.source[:-1] == SOURCE_ALS).all()
        r = client.get("/v1/users/u5/recommendations", params={"k": 10})
        assert r.status_code == 200 and r.json()["fallback"] is None
        assert scored[-1].shape[0] == ctx.n  # the ranker scored the toy item too

        # An unknown user: popular items (the fallback link of the chain), then the toy item.
        r = client.get("/v1/users/nobody/recommendations", params={"k": 10})
        assert r.status_code == 200 and r.json()["fallback"] == "unknown_user"
        cold = make_context(state.item_side, None, np.zeros(0, np.int64), [], 0.0, config=trained.settings.candidates)
        assert cold.candidates[-1] == least and (cold.source[:-1] == SOURCE_POPULAR).all()
        assert scored[-1].shape[0] == cold.n

    SOURCES.remove(toy_source.name)
    again = make_context(state.item_side, None, np.zeros(0, np.int64), [], 0.0, config=trained.settings.candidates)
    assert least not in again.candidates.tolist()
