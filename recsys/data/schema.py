"""The one polars schema every loader produces (DESIGN.md §3), and its validation.

External ids are strings at every boundary; timestamps are integer unix seconds.
"""

from __future__ import annotations

import logging
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
# Event types and how strongly each signals intent: the one list of valid event names (files and HTTP)
# and the weights of session events in the online fold-in and neighbour features.
EVENT_WEIGHTS: dict[str, float] = {
    "view": 0.5, "click": 1.0, "add_to_cart": 2.0, "purchase": 3.0, "rating": 1.0, "like": 1.5,
    "interaction": 1.0,
}
# Timestamps before 1990 or more than a day in the future are almost always unit mistakes
# (milliseconds, microseconds) or corrupt rows.
MIN_TIMESTAMP = 631_152_000
FUTURE_SLACK_SECONDS = 86_400


@dataclass
class ValidationReport:
    """What validation did to the input, reported to the user instead of silently applied."""

    rows_in: int = 0
    rows_out: int = 0
    duplicates_dropped: int = 0
    notes: list[str] = field(default_factory=list)


def _timestamp_to_seconds(col: pl.Series, path: str) -> pl.Series:
    """Accept int seconds, datetimes, or ISO strings; reject anything else with the row count."""
    dtype = col.dtype
    if dtype.is_integer():
        return col.cast(pl.Int64)
    if dtype.is_float():
        finite = col.is_finite().fill_null(True)
        bad = int((~finite).sum())
        if bad:
            raise DataValidationError("timestamp is NaN or infinite", path=path, column="timestamp",
                                      bad_rows=bad)
        bad = int((col.is_not_null() & (col != col.floor())).sum())
        if bad:
            raise DataValidationError("timestamp has fractional seconds", path=path, column="timestamp",
                                      bad_rows=bad)
        return col.cast(pl.Int64)
    if dtype == pl.Datetime or isinstance(dtype, pl.Datetime):
        return col.dt.epoch("s")
    if dtype == pl.Date:
        return col.cast(pl.Datetime).dt.epoch("s")
    if dtype == pl.String:
        as_int = col.str.strip_chars().cast(pl.Int64, strict=False)
        parsed = col.str.to_datetime(strict=False, time_zone="UTC").dt.epoch("s")
        out = as_int.fill_null(parsed)
        bad = int((out.is_null() & col.is_not_null()).sum())
        if bad:
            raise DataValidationError("timestamp is neither unix seconds nor an ISO date-time", path=path,
                                      column="timestamp", bad_rows=bad)
        return out
    raise DataValidationError(f"timestamp has unsupported type {dtype}", path=path, column="timestamp")


def validate_interactions(df: pl.DataFrame, path: str, *, now: float | None = None) -> tuple[pl.DataFrame,
                                                                                        ValidationReport]:
    """Coerce `df` to INTERACTION_SCHEMA or raise DataValidationError naming file, column and bad rows.

    Policy: missing columns, nulls, non-numeric weights and impossible timestamps are errors;
    exact duplicate rows are dropped and counted in the report.
    """
    report = ValidationReport(rows_in=df.height)
    missing = [c for c in REQUIRED_INTERACTION_COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"missing required column(s) {missing}; found {df.columns} "
            "(map your names with --user-col/--item-col/--time-col)", path=path, column=missing[0],
            bad_rows=df.height)
    if df.height == 0:
        raise DataValidationError("no interactions in the file", path=path, bad_rows=0)

    for name in ("user_id", "item_id"):
        nulls = int(df[name].null_count())
        if nulls:
            raise DataValidationError(f"{name} has null values", path=path, column=name, bad_rows=nulls)
    users = df["user_id"].cast(pl.String)
    items = df["item_id"].cast(pl.String)
    for name, col in (("user_id", users), ("item_id", items)):
        empty = int((col.str.strip_chars() == "").sum())
        if empty:
            raise DataValidationError(f"{name} has empty strings", path=path, column=name, bad_rows=empty)

    ts_nulls = int(df["timestamp"].null_count())
    if ts_nulls:
        raise DataValidationError("timestamp has null values", path=path, column="timestamp",
                                  bad_rows=ts_nulls)
    ts = _timestamp_to_seconds(df["timestamp"], path)
    upper = int((now if now is not None else time.time()) + FUTURE_SLACK_SECONDS)
    bad_ts = int(((ts < MIN_TIMESTAMP) | (ts > upper)).sum())
    if bad_ts:
        raise DataValidationError(
            f"timestamp outside [{MIN_TIMESTAMP}, now+1d]: expected unix seconds (milliseconds?)",
            path=path, column="timestamp", bad_rows=bad_ts)

    if "event" in df.columns:
        event = df["event"].cast(pl.String).fill_null(DEFAULT_EVENT)
    else:
        event = pl.Series("event", [DEFAULT_EVENT] * df.height, dtype=pl.String)
    if "weight" in df.columns:
        w = df["weight"]
        if not (w.dtype.is_numeric()):
            w_num = w.cast(pl.String).str.strip_chars().cast(pl.Float32, strict=False)
            bad_w = int((w_num.is_null() & w.is_not_null()).sum())
            if bad_w:
                raise DataValidationError("weight is not numeric", path=path, column="weight", bad_rows=bad_w)
            w = w_num
        w = w.cast(pl.Float32)
        bad_w = int((w.is_nan() | w.is_infinite()).sum())
        if bad_w:
            raise DataValidationError("weight is NaN or infinite", path=path, column="weight", bad_rows=bad_w)
        weight = w.fill_null(1.0)
    else:
        weight = pl.Series("weight", [1.0] * df.height, dtype=pl.Float32)

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
    nulls = int(df["item_id"].null_count())
    if nulls:
        raise DataValidationError("item_id has null values", path=path, column="item_id", bad_rows=nulls)
    item_id = df["item_id"].cast(pl.String)
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
