"""The one polars schema every loader produces (DESIGN.md §3), and its validation.

External ids are strings at every boundary; timestamps are integer unix seconds.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from recsys.errors import DataValidationError

log = logging.getLogger(__name__)

INTERACTION_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "item_id": pl.String(),
    "timestamp": pl.Int64(),
    "event": pl.String(),
    "weight": pl.Float32(),
}
ITEM_SCHEMA: dict[str, pl.DataType] = {
    "item_id": pl.String(),
    "title": pl.String(),
    "categories": pl.List(pl.String()),
}
REQUIRED_INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp")
DEFAULT_EVENT = "interaction"

# ---- The rules every entry point applies (files here, HTTP in api/schemas.py): one definition each. ----
# Event types and how strongly each signals intent: the one list of valid event names (files and HTTP)
# and the weights of session events in the online fold-in and neighbour features.
EVENT_WEIGHTS: dict[str, float] = {
    "view": 0.5, "click": 1.0, "add_to_cart": 2.0, "purchase": 3.0, "rating": 1.0, "like": 1.5,
    "interaction": 1.0,
}
EVENT_NAMES: tuple[str, ...] = tuple(sorted(EVENT_WEIGHTS))
# Ids travel through the session store as tab-separated text and through logs line by line: no tab,
# newline, carriage return or NUL, and not blank (at least one character other than those, space,
# vertical tab and form feed). Explicit classes, no `\s`: the pattern means the same to pydantic and
# polars (Rust regex) and to the fuzzers generating from the OpenAPI schema (Python `re`).
ID_MAX_LENGTH = 256
ID_PATTERN = r"^[^\t\n\r\x00]*[^\t\n\r\x00\x0b\x0c ][^\t\n\r\x00]*$"
ID_RULE = f"1 to {ID_MAX_LENGTH} characters, not blank, without tab, newline, carriage return or NUL"
# Timestamps are unix seconds (fractions allowed, truncated to whole seconds). Before 1990 or more than a
# day in the future they are almost always unit mistakes (milliseconds, microseconds) or corrupt rows.
MIN_TIMESTAMP = 631_152_000
FUTURE_SLACK_SECONDS = 86_400
TIMESTAMP_RULE = "unix seconds between 1990-01-01 and now + 1 day (milliseconds?)"
# Weights (ratings, counts, dwell times) say how strong an interaction is: finite and not negative.
MIN_WEIGHT = 0.0
WEIGHT_RULE = "a finite number >= 0"


def timestamp_bounds(now: float | None = None) -> tuple[float, float]:
    """The accepted range of timestamps (unix seconds) at time `now`."""
    return float(MIN_TIMESTAMP), (time.time() if now is None else now) + FUTURE_SLACK_SECONDS


def timestamp_problem(value: float, now: float | None = None) -> str | None:
    """Why a single timestamp breaks the rule, or None (the API's check; files use the same bounds)."""
    low, high = timestamp_bounds(now)
    if not math.isfinite(value):
        return "timestamp is NaN or infinite"
    if not low <= value <= high:
        return f"timestamp {value:g} is not {TIMESTAMP_RULE}"
    return None


def event_problem(value: str) -> str | None:
    if value not in EVENT_WEIGHTS:
        return f"unknown event type {value!r}; use one of {list(EVENT_NAMES)}"
    return None


@dataclass
class ValidationReport:
    """What validation did to the input, reported to the user instead of silently applied."""

    rows_in: int = 0
    rows_out: int = 0
    duplicates_dropped: int = 0
    notes: list[str] = field(default_factory=list)


def _timestamp_to_seconds(col: pl.Series, path: str) -> pl.Series:
    """Float seconds from int or fractional seconds (numbers or numeric text), datetimes, dates or ISO
    strings; anything else is an error with the row count. Bounds are checked by the caller."""
    dtype = col.dtype
    if dtype.is_numeric():
        return col.cast(pl.Float64)
    if dtype == pl.Datetime or isinstance(dtype, pl.Datetime):
        return col.dt.epoch("ms").cast(pl.Float64) / 1000.0
    if dtype == pl.Date:
        return col.cast(pl.Datetime).dt.epoch("s").cast(pl.Float64)
    if dtype == pl.String:
        as_number = col.str.strip_chars().cast(pl.Float64, strict=False)
        parsed = col.str.to_datetime(strict=False, time_zone="UTC").dt.epoch("ms").cast(pl.Float64) / 1000.0
        out = as_number.fill_null(parsed)
        bad = int((out.is_null() & col.is_not_null()).sum())
        if bad:
            raise DataValidationError("timestamp is neither unix seconds nor an ISO date-time", path=path,
                                      column="timestamp", bad_rows=bad)
        return out
    raise DataValidationError(f"timestamp has unsupported type {dtype}", path=path, column="timestamp")


def _checked_timestamps(col: pl.Series, path: str, now: float | None) -> pl.Series:
    """Whole unix seconds (Int64) within `timestamp_bounds`, or DataValidationError with the row count."""
    seconds = _timestamp_to_seconds(col, path)
    bad = int((~seconds.is_finite()).fill_null(False).sum())
    if bad:
        raise DataValidationError("timestamp is NaN or infinite", path=path, column="timestamp", bad_rows=bad)
    low, high = timestamp_bounds(now)
    bad = int(((seconds < low) | (seconds > high)).sum())
    if bad:
        raise DataValidationError(f"timestamp outside [{MIN_TIMESTAMP}, now+1d]: expected {TIMESTAMP_RULE}",
                                  path=path, column="timestamp", bad_rows=bad)
    return seconds.floor().cast(pl.Int64)  # in bounds: the cast cannot overflow


def _checked_ids(df: pl.DataFrame, name: str, path: str) -> pl.Series:
    """The id column as text, or DataValidationError: nulls, and ids breaking ID_RULE (the API's rule)."""
    nulls = int(df[name].null_count())
    if nulls:
        raise DataValidationError(f"{name} has null values", path=path, column=name, bad_rows=nulls)
    col = df[name].cast(pl.String)
    bad = ~col.str.contains(ID_PATTERN) | (col.str.len_chars() > ID_MAX_LENGTH)
    n_bad = int(bad.sum())
    if n_bad:
        example = col.filter(bad).head(1).item()
        raise DataValidationError(f"{name} must be {ID_RULE} (first bad value: {example[:40]!r})", path=path,
                                  column=name, bad_rows=n_bad)
    return col


def _checked_events(df: pl.DataFrame, path: str) -> pl.Series:
    """Event names (missing: DEFAULT_EVENT); a name outside EVENT_WEIGHTS is an error, as over HTTP."""
    if "event" not in df.columns:
        return pl.Series("event", [DEFAULT_EVENT] * df.height, dtype=pl.String)
    event = df["event"].cast(pl.String).fill_null(DEFAULT_EVENT)
    unknown = ~event.is_in(list(EVENT_NAMES))
    n_bad = int(unknown.sum())
    if n_bad:
        names = event.filter(unknown).unique().sort().head(5).to_list()
        raise DataValidationError(f"unknown event name(s) {names}: use one of {list(EVENT_NAMES)} (rename them, "
                                  "or drop the column to count every row as an interaction)", path=path,
                                  column="event", bad_rows=n_bad)
    return event


def _checked_weights(df: pl.DataFrame, path: str) -> pl.Series:
    """Weights as Float32 (missing: 1.0); each must be WEIGHT_RULE."""
    if "weight" not in df.columns:
        return pl.Series("weight", [1.0] * df.height, dtype=pl.Float32)
    w = df["weight"]
    if not w.dtype.is_numeric():
        w_num = w.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
        bad_w = int((w_num.is_null() & w.is_not_null()).sum())
        if bad_w:
            raise DataValidationError("weight is not numeric", path=path, column="weight", bad_rows=bad_w)
        w = w_num
    w = w.cast(pl.Float64)
    bad_w = int((w.is_nan() | w.is_infinite()).sum())
    if bad_w:
        raise DataValidationError("weight is NaN or infinite", path=path, column="weight", bad_rows=bad_w)
    bad_w = int((w < MIN_WEIGHT).sum())
    if bad_w:
        raise DataValidationError(f"weight is negative: a weight must be {WEIGHT_RULE}", path=path,
                                  column="weight", bad_rows=bad_w)
    bad_w = int((w.abs() > np.finfo(np.float32).max).sum())
    if bad_w:
        raise DataValidationError("weight is too large for float32", path=path, column="weight", bad_rows=bad_w)
    return w.fill_null(1.0).cast(pl.Float32)


def validate_interactions(df: pl.DataFrame, path: str, *, now: float | None = None) -> tuple[pl.DataFrame,
                                                                                        ValidationReport]:
    """Coerce `df` to INTERACTION_SCHEMA or raise DataValidationError naming file, column and bad rows.

    The rules are the API's (ID_RULE, TIMESTAMP_RULE, EVENT_NAMES, WEIGHT_RULE): missing columns,
    nulls, bad ids, impossible timestamps, unknown events and negative or non-numeric weights are
    errors; fractional seconds are truncated; exact duplicate rows are dropped and counted.
    """
    report = ValidationReport(rows_in=df.height)
    missing = [c for c in REQUIRED_INTERACTION_COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"missing required column(s) {missing}; found {df.columns} "
            "(map your column names with --user-col/--item-col/--time-col, or RECSYS_DATA__USER_COL/"
            "RECSYS_DATA__ITEM_COL/RECSYS_DATA__TIME_COL)", path=path, column=missing[0], bad_rows=df.height)
    if df.height == 0:
        raise DataValidationError("no interactions in the file", path=path, bad_rows=0)

    users = _checked_ids(df, "user_id", path)
    items = _checked_ids(df, "item_id", path)
    ts_nulls = int(df["timestamp"].null_count())
    if ts_nulls:
        raise DataValidationError("timestamp has null values", path=path, column="timestamp",
                                  bad_rows=ts_nulls)
    ts = _checked_timestamps(df["timestamp"], path, now)
    event = _checked_events(df, path)
    weight = _checked_weights(df, path)

    out = pl.DataFrame({
        "user_id": users.alias("user_id"),
        "item_id": items.alias("item_id"),
        "timestamp": ts.alias("timestamp"),
        "event": event.alias("event"),
        "weight": weight.alias("weight"),
    })
    before = out.height
    out = drop_exact_duplicates(out)
    report.duplicates_dropped = before - out.height
    if report.duplicates_dropped:
        report.notes.append(f"dropped {report.duplicates_dropped} exact duplicate rows from {path}")
        log.warning("event=duplicates_dropped file=%s rows=%d", path, report.duplicates_dropped)
    report.rows_out = out.height
    return out, report


def drop_exact_duplicates(df: pl.DataFrame) -> pl.DataFrame:
    """`df.unique(maintain_order=True)` (first occurrences, input order) at a fraction of the cost.

    Why: hashing whole rows of strings in a hash table took ~2 min and ~12 GB for 50M rows. Rows whose
    64-bit row hash is unique cannot be duplicates; only rows sharing a hash (true duplicates, or a
    rare collision) are compared exactly, so the result is exact.
    """
    if df.height < 2:
        return df
    hashes = df.hash_rows(seed=0).to_numpy()
    ordered = np.sort(hashes)
    shared = ordered[1:][ordered[1:] == ordered[:-1]]
    if shared.size == 0:
        return df
    suspects = np.flatnonzero(np.isin(hashes, shared))
    first = df[suspects].select(pl.struct(pl.all()).is_first_distinct()).to_series().to_numpy()
    keep = np.ones(df.height, dtype=bool)
    keep[suspects[~first]] = False
    return df.filter(pl.Series(keep))


def validate_items(df: pl.DataFrame, path: str) -> pl.DataFrame:
    """Coerce an item table to ITEM_SCHEMA (`category` or `categories`, optional title)."""
    if "item_id" not in df.columns:
        raise DataValidationError(f"item table lacks item_id; found {df.columns}", path=path,
                                  column="item_id")
    item_id = _checked_ids(df, "item_id", path)
    if "categories" in df.columns and isinstance(df["categories"].dtype, pl.List):
        cats = df["categories"].cast(pl.List(pl.String))
    elif "categories" in df.columns or "category" in df.columns or "genres" in df.columns:
        name = next(c for c in ("categories", "category", "genres") if c in df.columns)
        cats = df[name].cast(pl.String).fill_null("").str.split("|").list.eval(
            pl.element().filter(pl.element() != ""))
    else:
        cats = pl.Series("categories", [[] for _ in range(df.height)], dtype=pl.List(pl.String))
    title = df["title"].cast(pl.String) if "title" in df.columns else pl.Series(
        "title", [None] * df.height, dtype=pl.String)
    out = pl.DataFrame({"item_id": item_id, "title": title, "categories": cats.alias("categories")})
    dup = out.height - out["item_id"].n_unique()
    if dup:
        raise DataValidationError("item_id is not unique in the item table", path=path, column="item_id",
                                  bad_rows=dup)
    return out


def row_problems(df: pl.DataFrame, *, now: float | None = None) -> pl.Series:
    """Per row, why it breaks the interaction contract (None when it does not): the rules of
    `validate_interactions` applied row by row, for streams where one bad record must not reject the
    batch (the lake ingest quarantines it with this reason instead).

    `df` has the schema's columns (`user_id`, `item_id` strings, `timestamp` int seconds, `event`);
    events must also name a known type (EVENT_WEIGHTS), as the HTTP API requires.
    """
    upper = int((now if now is not None else time.time()) + FUTURE_SLACK_SECONDS)
    user, item, ts, event = pl.col("user_id"), pl.col("item_id"), pl.col("timestamp"), pl.col("event")
    reason = (pl.when(user.is_null() | (user.str.strip_chars() == "")).then(pl.lit("user_id is null or empty"))
              .when(item.is_null() | (item.str.strip_chars() == "")).then(pl.lit("item_id is null or empty"))
              .when(ts.is_null()).then(pl.lit("timestamp is null"))
              .when((ts < MIN_TIMESTAMP) | (ts > upper))
              .then(pl.lit(f"timestamp outside [{MIN_TIMESTAMP}, now+1d]: expected unix seconds"))
              .when(~event.is_in(list(EVENT_WEIGHTS)))
              .then(pl.lit(f"unknown event type; use one of {sorted(EVENT_WEIGHTS)}"))
              .otherwise(pl.lit(None, dtype=pl.String)))
    return df.select(reason.alias("reason"))["reason"]
