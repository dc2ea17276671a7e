"""Live session events."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body, Request
from pydantic import Field

from api.deps import ClientDep, MetricsDep, ServiceDep
from api.errors import error_responses
from api.schemas import MAX_EVENTS_PER_BATCH, Event, EventsAccepted
from recsys.errors import StoreUnavailableError
from recsys.store import SessionEvent

router = APIRouter(prefix="/v1", tags=["events"])

EventBatch = Annotated[list[Event], Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)]


@router.post("/events", response_model=EventsAccepted, status_code=202,
             responses=error_responses(401, 413, 422, 503))
def post_events(body: Annotated[Event | EventBatch, Body(description="one event or an array of up to 100")],
                request: Request, _: ClientDep, service: ServiceDep, metrics: MetricsDep) -> EventsAccepted:
    """Append events to each user's session (capped length, TTL refreshed on activity).

    While the store is down, events are kept in memory (bounded) and written when it returns
    (`buffered` in the response); 503 with Retry-After only when that buffer is full. With
    RECSYS_CLIENT_TOKEN set, the request needs `Authorization: Bearer <client token>` (else 401). Every
    accepted event is also appended to the event log (in the background), from which the lake is ingested.
    """
    events = body if isinstance(body, list) else [body]
    now = time.time()
    by_user: dict[str, list[SessionEvent]] = {}
    for e in events:
        by_user.setdefault(e.user_id, []).append(
            SessionEvent(e.item_id, e.event, e.timestamp if e.timestamp is not None else now))
    before = service.events.pending
    for user_id, user_events in by_user.items():
        if not service.events.append(user_id, user_events):
            raise StoreUnavailableError("the store is unavailable and the in-memory event buffer is full")
    request.app.state.loop.record_events([(e.user_id, e.item_id, e.event,
                                            e.timestamp if e.timestamp is not None else now, e.rec_id)
                                           for e in events])
    metrics.events.inc(len(events))
    return EventsAccepted(accepted=len(events), users=len(by_user),
                          buffered=max(service.events.pending - before, 0))
