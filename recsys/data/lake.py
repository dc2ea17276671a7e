"""The lake: ingested events and impressions as Parquet partitions by date, and how it is read.

Layout (one directory per table, one partition per UTC date of the row's own time):

    <lake>/events/date=YYYY-MM-DD/<stream>-<first id>_<last id>.parquet
    <lake>/impressions/date=YYYY-MM-DD/…
    <lake>/quarantine/date=YYYY-MM-DD/…      records that failed validation, with the reason
    <lake>/_state/<stream>.json              {"committed": "<id>"}: the newest log id the lake holds

A file holds the rows of one ingest batch, log entries `first..last` of one stream; its name is derived
from that range, so writing the same batch again produces the same name. Files are written under a
temporary name (`.tmp-…`), fsynced, renamed, and the directory fsynced; only then is the stream's
state advanced (same dance), and only after that does the ingest acknowledge the log in the store.
Readers take `*.parquet` files only (never a temporary file) and drop repeated ids, so a reader sees
each log entry once whatever moment an ingest died at. The argument is written down in docs/loop.md.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from recsys.data.schema import INTERACTION_SCHEMA

log = logging.getLogger(__name__)

EVENTS_TABLE = "events"
IMPRESSIONS_TABLE = "impressions"
QUARANTINE_TABLE = "quarantine"
TABLES = (EVENTS_TABLE, IMPRESSIONS_TABLE, QUARANTINE_TABLE)

# Columns of each table, in order (`id` is the log entry id, "<ms>-<seq>").
EVENT_SCHEMA: dict[str, pl.DataType] = {"id": pl.String(), **INTERACTION_SCHEMA, "ts": pl.Float64(),
                                        "rec_id": pl.String(), "eid": pl.String()}
IMPRESSION_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(), "rec_id": pl.String(), "user_id": pl.String(), "timestamp": pl.Int64(),
    "ts": pl.Float64(), "items": pl.List(pl.String()), "scores": pl.List(pl.Float32()),
    "model_version": pl.String(), "candidates_version": pl.String(), "fallback": pl.String(),
    "variant": pl.String(), "experiment": pl.String(), "teams": pl.List(pl.String())}
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(), "stream": pl.String(), "timestamp": pl.Int64(), "user_id": pl.String(),
    "reason": pl.String(), "record": pl.String()}
SCHEMAS = {EVENTS_TABLE: EVENT_SCHEMA, IMPRESSIONS_TABLE: IMPRESSION_SCHEMA, QUARANTINE_TABLE: QUARANTINE_SCHEMA}
# What names one event / one served list beyond the log id: a sink retry after a timed-out append that
# the store did apply puts the same record in the log twice, under two log ids.
RECORD_KEY = {EVENTS_TABLE: "eid", IMPRESSIONS_TABLE: "rec_id"}


def id_key(log_id: str) -> tuple[int, int]:
    ms, _, seq = log_id.partition("-")
    return int(ms), int(seq or 0)


def id_sort_expr(column: str = "id") -> list[pl.Expr]:
    """Sort keys ordering log ids numerically (a string sort puts 10-0 before 9-0)."""
    parts = pl.col(column).str.split_exact("-", 1)
    return [parts.struct.field("field_0").cast(pl.Int64), parts.struct.field("field_1").cast(pl.Int64)]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | pl.DataFrame) -> None:
    """Write `path` whole or not at all: temporary name, fsync, rename, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.name}"
    if isinstance(data, pl.DataFrame):
        data.write_parquet(tmp, compression="zstd", statistics=True)
    else:
        tmp.write_bytes(data)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@dataclass(frozen=True)
class LakeFile:
    path: Path
    table: str
    day: date
    stream: str
    first_id: str
    last_id: str


class Lake:
    """One lake directory: its files, the per-stream commit state, reading, retention and rewrites."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # ---- layout ---------------------------------------------------------------------------------
    def partition(self, table: str, day: date) -> Path:
        return self.root / table / f"date={day.isoformat()}"

    def file_path(self, table: str, day: date, stream: str, first_id: str, last_id: str) -> Path:
        return self.partition(table, day) / f"{stream}-{first_id}_{last_id}.parquet"

    def files(self, table: str) -> list[LakeFile]:
        """The committed-or-renamed files of a table (temporary files are never listed), oldest first."""
        out = []
        for path in sorted((self.root / table).glob("date=*/*.parquet")):
            if path.name.startswith("."):
                continue
            try:
                day = date.fromisoformat(path.parent.name.removeprefix("date="))
                stream, _, ids = path.stem.partition("-")
                first, _, last = ids.partition("_")
                id_key(first), id_key(last)
            except ValueError:
                log.warning("event=lake_foreign_file path=%s", path)
                continue
            out.append(LakeFile(path, table, day, stream, first, last))
        return sorted(out, key=lambda f: (id_key(f.first_id), f.day))

    # ---- commit state ---------------------------------------------------------------------------
    def _state_path(self, stream: str) -> Path:
        return self.root / "_state" / f"{stream}.json"

    def committed(self, stream: str) -> str | None:
        path = self._state_path(stream)
        if not path.exists():
            return None
        return str(json.loads(path.read_text())["committed"])

    def commit(self, stream: str, upto: str) -> None:
        write_atomic(self._state_path(stream), json.dumps({"committed": upto}).encode())

    def remove_uncommitted(self, stream: str) -> int:
        """Delete files of `stream` past its committed id: what an ingest that died before committing left.

        Only one ingest runs at a time (the job lock), so such files belong to no live run; the next
        batch rewrites the same entries, maybe under another name (a batch read later may be longer).
        """
        committed = self.committed(stream)
        floor = id_key(committed) if committed else (-1, -1)
        removed = 0
        for table in TABLES:
            for f in self.files(table):
                if f.stream == stream and id_key(f.first_id) > floor:
                    f.path.unlink(missing_ok=True)
                    removed += 1
        for tmp in self.root.glob("*/date=*/.tmp-*"):
            tmp.unlink(missing_ok=True)
        if removed:
            log.warning("event=lake_uncommitted_files_removed stream=%s files=%d", stream, removed)
        return removed

    # ---- reading --------------------------------------------------------------------------------
    def read(self, table: str, *, after_id: str | None = None, since_day: date | None = None) -> pl.DataFrame:
        """Every row of `table` (ids after `after_id`, partitions from `since_day`), each id once, in id order."""
        schema = SCHEMAS[table]
        files = [f for f in self.files(table) if (since_day is None or f.day >= since_day)
                 and (after_id is None or id_key(f.last_id) > id_key(after_id))]
        if not files:
            return pl.DataFrame(schema=schema)
        # "diagonal": files written before a column existed (impressions' experiment, teams) read it as null.
        frame = pl.concat([pl.read_parquet(f.path) for f in files], how="diagonal_relaxed")
        frame = frame.with_columns([pl.lit(None, dtype).alias(c) for c, dtype in schema.items()
                                    if c not in frame.columns])
        if after_id is not None:
            ms, seq = id_key(after_id)
            k0, k1 = id_sort_expr()
            frame = frame.filter((k0 > ms) | ((k0 == ms) & (k1 > seq)))
        # A batch rewritten after a crash may overlap the files of the run that died: one row per id; and
        # one per record key (the first logged), whatever a retried append put in the log twice.
        # (Quarantine rows come from both logs, whose ids are independent: one row per stream and id.)
        frame = frame.sort(id_sort_expr()).unique(subset=["stream", "id"] if table == QUARANTINE_TABLE else "id",
                                                  keep="first", maintain_order=True)
        if table in RECORD_KEY:
            key = RECORD_KEY[table]
            frame = frame.filter(pl.col(key).is_null() | pl.col(key).is_first_distinct())
        return frame.select(list(schema))

    def read_events(self, *, after_id: str | None = None, since_day: date | None = None) -> pl.DataFrame:
        return self.read(EVENTS_TABLE, after_id=after_id, since_day=since_day)

    def newest_event_id(self) -> str | None:
        files = self.files(EVENTS_TABLE)
        return max((f.last_id for f in files), key=id_key) if files else None

    # ---- upkeep ---------------------------------------------------------------------------------
    def drop_partitions_before(self, day: date) -> int:
        """Retention: delete whole date partitions older than `day`; returns how many."""
        dropped = 0
        for table in TABLES:
            for part in sorted((self.root / table).glob("date=*")):
                try:
                    part_day = date.fromisoformat(part.name.removeprefix("date="))
                except ValueError:
                    continue
                if part_day < day:
                    shutil.rmtree(part, ignore_errors=True)
                    dropped += 1
        return dropped

    def remove_users(self, hashes: Iterable[str], user_hash: Callable[[str], str]) -> int:
        """Rewrite every file holding a row of a user whose hash is in `hashes`; returns rows removed.

        `user_hash` maps a user id to its hash (the lake stores plain ids, the forget list only hashes).
        Each file is replaced atomically, so a reader sees it before or after, never half written.
        """
        wanted = set(hashes)
        removed = 0
        for table in TABLES:
            for f in self.files(table):
                frame = pl.read_parquet(f.path)
                users = [u for u in frame["user_id"].drop_nulls().unique().to_list() if user_hash(u) in wanted]
                if not users:
                    continue
                kept = frame.filter(~pl.col("user_id").is_in(users) | pl.col("user_id").is_null())
                removed += frame.height - kept.height
                write_atomic(f.path, kept)
        return removed


def utc_day(ts: float) -> date:
    return datetime.fromtimestamp(ts, timezone.utc).date()


def retention_floor(now: float, days: float) -> date:
    return utc_day(now) - timedelta(days=days)
