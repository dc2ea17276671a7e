"""Forgetting a user (`DELETE /v1/users/{id}`, `recsys users forget ID`).

At once: the live session, the candidates and history in every version the store knows, the user's
entries still waiting in the event and impression logs, and their rows in the sampled feature log.
A forget request (the sha256 of the id, never the id) is recorded first, so the next ingest drops
the user's rows from every lake file, including rows a concurrent ingest was writing meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from recsys.events.records import record_user, user_hash
from recsys.monitoring.feature_log import row_user_id
from recsys.store import STREAMS, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForgetResult:
    user_hash: str
    log_entries_deleted: int
    feature_rows_deleted: int


def _matcher(stream: str, user_id: str) -> Callable[[bytes], bool]:
    needle = user_id.encode()
    return lambda record: needle in record and record_user(stream, record) == user_id


def forget_user(store: Store, user_id: str) -> ForgetResult:
    digest = user_hash(user_id)
    store.event_log.request_forget(digest)  # first: whatever happens next, the lake follows
    store.sessions.delete(user_id)
    store.candidates.forget_user(user_id)
    needle = user_id.encode()
    deleted = 0
    for stream in STREAMS:
        deleted += store.event_log.delete_where(stream, _matcher(stream, user_id))
    rows = store.feature_log.remove_where(lambda r: needle in r and row_user_id(r) == user_id)
    log.info("event=user_forgotten user_hash=%s log_entries=%d feature_rows=%d", digest[:16], deleted, rows)
    return ForgetResult(digest, deleted, rows)
