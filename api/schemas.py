"""Request and response models of the HTTP API (DESIGN.md §5)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from recsys.catalogue.items import (
    ATTRIBUTE_NAME,
    CATEGORY_MAX_LENGTH,
    MAX_ATTRIBUTES,
    MAX_CATEGORIES,
    MAX_ITEM_TIME,
    MIN_ITEM_TIME,
    STRING_MAX_LENGTH,
    TITLE_MAX_LENGTH,
)
from recsys.data.schema import EVENT_NAMES, ID_MAX_LENGTH, ID_PATTERN, ID_RULE, event_problem, timestamp_problem
from recsys.errors import InvalidRequestError
from recsys.experiments.config import NAME_PATTERN
from recsys.serving.fallback import FallbackReason
from recsys.serving.rules import FILTER_PATTERN, parse_condition

# The id, event and timestamp rules are the data contract's (recsys/data/schema.py), shared with the
# file loaders: data arriving by file or by HTTP is held to the same rules.
Id = Annotated[str, Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN, description=ID_RULE)]
MAX_EVENTS_PER_BATCH = 100
# A live session event is recent: older ones are history, which arrives by file (`recsys refresh`).
MAX_EVENT_AGE_SECONDS = 30 * 86400


def _known_event(v: str) -> str:
    problem = event_problem(v)
    if problem:
        raise ValueError(problem)
    return v


def _not_a_bool(v: object) -> object:
    """JSON `true` is not the number 1 (pydantic's lax mode would take it); 4.0 still is the integer 4,
    as JSON Schema says."""
    if isinstance(v, bool):
        raise ValueError("expected a number, got a boolean")
    return v


def _plausible_time(v: float | None) -> float | None:
    if v is None:
        return v
    now = time.time()
    problem = timestamp_problem(v, now)
    if problem:
        raise ValueError(problem)
    if v < now - MAX_EVENT_AGE_SECONDS:
        raise ValueError("timestamp is more than 30 days old: not a live session event")
    return v


class SessionItem(BaseModel):
    """One event of an inline session (POST /v1/recommendations)."""

    model_config = ConfigDict(extra="forbid")

    item_id: Id
    # The enum is for the schema (clients, fuzzers); the validator keeps the message that names the choices.
    event: str = Field("click", description=f"one of {list(EVENT_NAMES)}",
                       json_schema_extra={"enum": list(EVENT_NAMES)})
    timestamp: float | None = Field(None, allow_inf_nan=False,
                                    description="unix seconds; default now. Must lie within the last 30 days "
                                                "and at most 1 day ahead (milliseconds are rejected)")

    _event = field_validator("event")(_known_event)
    _no_bool = field_validator("timestamp", mode="before")(_not_a_bool)
    _time = field_validator("timestamp")(_plausible_time)


class Event(SessionItem):
    """A live event for POST /v1/events."""

    user_id: Id
    rec_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                               description="the rec_id of the recommendation list this event responds to")


def _filter_expr(v: str) -> str:
    """The grammar's own message (recsys/serving/rules.py) rather than a regular expression dump."""
    try:
        parse_condition(v)
    except InvalidRequestError as exc:
        raise ValueError(str(exc)) from exc
    return v


# The pattern is documented in the schema (clients, fuzzers); the check itself is the library's.
FilterExpr = Annotated[str, Field(max_length=1100, json_schema_extra={"pattern": FILTER_PATTERN},
                                  description="NAME=VALUE, NAME=V1|V2 (in), NAME<NUMBER or NAME>NUMBER"),
                       AfterValidator(_filter_expr)]


class RecommendationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Id
    k: int = Field(10, ge=1, le=100)
    session: list[SessionItem] = Field(default_factory=list, max_length=MAX_EVENTS_PER_BATCH)
    exclude: list[Id] = Field(default_factory=list, max_length=1000)
    category: list[str] = Field(default_factory=list, max_length=50, description="only items in one of these")
    exclude_category: list[str] = Field(default_factory=list, max_length=50,
                                        description="never items in one of these")
    filter: list[FilterExpr] = Field(default_factory=list, max_length=20,
                                     description="attribute filters: NAME=VALUE, NAME=V1|V2, NAME<NUMBER, NAME>NUMBER")
    max_per_category: int | None = Field(None, ge=0, le=100, description="at most this many items per category "
                                         "(0: no cap; default: RECSYS_RULES__MAX_PER_CATEGORY)")
    explain: bool = Field(False, strict=True,
                          description="add each item's three largest score contributions and its source")

    _no_bool = field_validator("k", "max_per_category", mode="before")(_not_a_bool)


class ContributionOut(BaseModel):
    feature: str
    value: float = Field(description="the feature's contribution to the raw score (LightGBM pred_contrib)")
    sentence: str


class ExplanationOut(BaseModel):
    source: str = Field(description="the candidate source that brought the item in: als, popular, session, "
                        "new_items, or popular_fill (added after the ranked items by a narrow filter)")
    contributions: list[ContributionOut] = Field(description="the three largest contributions, largest first")
    bias: float = Field(description="the model's bias: all contributions plus it make the score")


class ScoredItemOut(BaseModel):
    item_id: str
    score: float
    rank: int
    explanation: ExplanationOut | None = Field(None, description="with explain=true only")


class RecommendationResponse(BaseModel):
    user_id: str
    items: list[ScoredItemOut]
    model_version: str | None
    candidates_version: str | None
    fallback: str | None = Field(None, description="null, or why a fallback was used: one of "
                                 + ", ".join(r.value for r in FallbackReason))
    rec_id: str | None = Field(None, description="id of this served list (recommendations only): send it with "
                               "the events it leads to; the impression log records the list under it")
    experiment: str | None = Field(None, description="the running experiment serving this user, if any "
                                   "(recommendations only)")
    variant: str | None = Field(None, description="the user's variant in `experiment` (`interleaved` for an "
                                "interleaving experiment), recorded in the impression with `rec_id`")


class SimilarItemsResponse(BaseModel):
    item_id: str
    items: list[ScoredItemOut]
    candidates_version: str | None


class EventsAccepted(BaseModel):
    accepted: int
    users: int
    buffered: int = Field(0, description="events kept in memory because the store is down; written when it returns")


class UserForgotten(BaseModel):
    user_id: str
    log_entries_deleted: int = Field(description="entries still waiting in the event/impression logs")
    feature_rows_deleted: int
    lake: str = Field(description="when the user's rows leave the lake")


class Health(BaseModel):
    status: str
    candidates_version: str | None = None
    model_version: str | None = None
    store: str | None = None
    reasons: list[str] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """The body of every error response (4xx and 503)."""

    error: str = Field(description="error class, e.g. ValidationError, StoreUnavailableError, NotFound")
    detail: Any = Field(None, description="a message, or for 422 a list of {loc, msg} per bad field")


class JobRunOut(BaseModel):
    """One run of a scheduled job, as recorded in the store's job history (recsys.store.job_history.JobRun)."""

    job: str
    run_id: str
    status: str = Field(description="running, ok, failed, abandoned, lost, or 'skipped: <why>'")
    trigger: str | None = Field(None, description="schedule, manual or drift")
    start: float = Field(description="unix time")
    end: float | None = None
    duration_s: float | None = None
    version: str | None = Field(None, description="candidate or model version the run produced")
    error: str | None = None
    reason: str | None = Field(None, description="why a drift-triggered run was started")
    tick: str | None = Field(None, description="the scheduled fire time (UTC) the run served")
    host: str | None = Field(None, description="host:pid of the scheduler that ran it")
    details: dict[str, object] = Field(default_factory=dict)


class JobHistory(BaseModel):
    runs: list[JobRunOut] = Field(description="newest first")


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="variant name (letters, digits, _ . -), unique")
    share: float = Field(gt=0.0, le=1.0, description="share of the experiment's users (A/B: shares add up to 1)")
    ranker: Literal["model", "als"] = Field("model", description="model: the reranker; als: the candidates in "
                                            "ALS order (ranking off)")


class ExperimentIn(BaseModel):
    """An experiment to create. Rules JSON Schema cannot state, checked with a 422 naming them: variant names
    differ, A/B shares add up to 1, an interleaving experiment has exactly two variants."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="experiment name, never reused")
    kind: Literal["ab", "interleaving"] = "ab"
    variants: list[VariantIn] = Field(min_length=2, max_length=10, description="the first is the control")
    traffic: float = Field(1.0, gt=0.0, le=1.0, description="share of all users in the experiment")
    salt: str = Field("", max_length=128, pattern=r"^[!-~]*$", description="assignment salt (default: the name)")
    min_detectable_effect: float = Field(0.05, gt=0.0, le=10.0, description="relative lift the report sizes "
                                         "the experiment for")


# ---- the item catalogue (admin) -------------------------------------------------------------------
# The rules of each field are the catalogue's (recsys/catalogue/items.py), applied by the library to
# files and HTTP alike; these models document the shape and forbid unknown fields.
ItemTime = Annotated[float, Field(ge=MIN_ITEM_TIME, le=MAX_ITEM_TIME, allow_inf_nan=False,
                                  description="unix seconds between 1990 and 2100")]
Category = Annotated[str, Field(min_length=1, max_length=CATEGORY_MAX_LENGTH, pattern=ID_PATTERN)]
AttributeName = Annotated[str, Field(pattern=ATTRIBUTE_NAME.pattern)]
# Strict: a numeric string stays a string (and is held to the string's length), true is not 1.
AttributeIn = Annotated[bool, Field(strict=True)] | Annotated[float, Field(strict=True, allow_inf_nan=False)] | \
    Annotated[str, Field(strict=True, max_length=STRING_MAX_LENGTH)]


def _attribute_names_only(schema: dict[str, Any]) -> None:
    """Attribute names outside the pattern are invalid: say so in the schema (pydantic writes only
    `patternProperties`, which leaves other names allowed)."""
    for option in schema.get("properties", {}).get("attributes", {}).get("anyOf", []):
        if option.get("type") == "object":
            option["additionalProperties"] = False


class ItemFields(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_attribute_names_only)

    availability: str | None = Field(None, description="available (default) or hidden",
                                     json_schema_extra={"enum": ["available", "hidden"]})
    available_until: ItemTime | None = Field(None, description="unix seconds: unavailable from then on; null: no end")
    categories: list[Category] | None = Field(None, max_length=MAX_CATEGORIES,
                                              description=f"up to {MAX_CATEGORIES} category names")
    attributes: dict[AttributeName, AttributeIn | None] | None = Field(
        None, max_length=MAX_ATTRIBUTES, description=f"up to {MAX_ATTRIBUTES} NAME -> string, number or bool (one "
        "type per NAME across the catalogue: another type is a 409); in a PATCH, null removes one")
    created_at: ItemTime | None = Field(None, description="unix seconds (default: when first put)")
    title: str | None = Field(None, max_length=TITLE_MAX_LENGTH)

    def given(self) -> dict[str, Any]:
        """The fields the client sent (a PATCH changes only those; explicit nulls count)."""
        return self.model_dump(exclude_unset=True)


class ItemWithId(ItemFields):
    item_id: Id


class ItemsBulk(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ItemWithId] = Field(min_length=1, max_length=1000)


class ItemOut(BaseModel):
    item_id: str
    availability: str
    available_until: float | None
    categories: list[str]
    attributes: dict[str, str | float | bool]
    created_at: float | None
    title: str | None
    deleted: bool = False


class ItemsWritten(BaseModel):
    written: int = Field(description="items created, replaced, changed or deleted")
    catalogue_version: int = Field(description="the catalogue version that holds the change (every replica "
                                   "applies it from its next request on)")
