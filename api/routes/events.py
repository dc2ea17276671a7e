"""Live session events."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import Field

from api.deps import MetricsDep, ServiceDep, SettingsDep
from api.errors import error_responses
from api.schemas import MAX_EVENTS_PER_BATCH, Event, EventsAccepted
from recsys.store import SessionEvent

router = APIRouter(prefix="/v1", tags=["events"])

EventBatch = Annotated[list[Event], Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)]


@router.post("/events", response_model=EventsAccepted, status_code=202,
             responses=error_responses(413, 422, 503))
def post_events(body: Annotated[Event | EventBatch, Body(description="one event or an array of up to 100")],
                service: ServiceDep, settings: SettingsDep, metrics: MetricsDep) -> EventsAccepted:
    """Append events to each user's session (capped length, TTL refreshed on activity).

    503 with Retry-After when the store is down: events are not buffered, the client retries.
    """
    events = body if isinstance(body, list) else [body]
    now = time.time()
    by_user: dict[str, list[SessionEvent]] = {}
    for e in events:
        by_user.setdefault(e.user_id, []).append(
            SessionEvent(e.item_id, e.event, e.timestamp if e.timestamp is not None else now))
    for user_id, user_events in by_user.items():
        service.store.append_session(user_id, user_events, max_events=settings.session_max_events,
                                     ttl_seconds=settings.session_ttl_seconds)
    metrics.events.inc(len(events))
    return EventsAccepted(accepted=len(events), users=len(by_user))
