"""The records of the event and impression logs: one compact JSON value per log entry (orjson).

    event       [user_id, item_id, event, ts, rec_id | null, eid]
    impression  {"rec_id", "user_id", "items": [...], "scores": [...], "model_version",
                 "candidates_version", "fallback", "experiment", "variant", "teams", "ts"}

Encoded on the request (a few µs), decoded in bulk by the ingest. A record that does not decode is
quarantined by the ingest with the reason, never dropped silently.

`eid` (64 random bits) names one accepted event, as `rec_id` names one served list: a log append that
timed out on the client but was applied by Redis is retried by the sink and lands twice in the log
(two log ids); the lake keeps one row per `eid` (per `rec_id` for impressions), so readers still see
each event once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

import orjson


def new_rec_id() -> str:
    """128 random bits as hex: the id of one served list, the unit of attribution."""
    return os.urandom(16).hex()


def user_hash(user_id: str) -> str:
    """How a forget request names a user in the store (never the plain id)."""
    return hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()


def new_event_id() -> str:
    return os.urandom(8).hex()


def encode_event(user_id: str, item_id: str, event: str, ts: float, rec_id: str | None = None,
                 eid: str | None = None) -> bytes:
    return orjson.dumps([user_id, item_id, event, ts, rec_id, eid or new_event_id()])


@dataclass(frozen=True)
class Impression:
    rec_id: str
    user_id: str
    items: Sequence[str]
    scores: Sequence[float]
    model_version: str | None
    candidates_version: str | None
    fallback: str | None
    ts: float
    variant: str | None = None  # the user's variant in `experiment` (DESIGN.md §10, docs/experiments.md)
    experiment: str | None = None
    teams: Sequence[str] | None = None  # interleaving: the variant that contributed each item, in rank order

    def encode(self) -> bytes:
        return orjson.dumps({"rec_id": self.rec_id, "user_id": self.user_id, "items": list(self.items),
                             "scores": list(self.scores), "model_version": self.model_version,
                             "candidates_version": self.candidates_version, "fallback": self.fallback,
                             "experiment": self.experiment, "variant": self.variant,
                             "teams": list(self.teams) if self.teams is not None else None, "ts": self.ts})


def record_user(stream: str, record: bytes) -> str | None:
    """The user id of an event or impression record (None when it does not decode)."""
    try:
        value = orjson.loads(record)
        user = value[0] if stream == "events" else value["user_id"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return None
    return user if isinstance(user, str) else None
