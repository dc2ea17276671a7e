"""`recsys ingest`: drain the event and impression logs into the lake, exactly once as readers see it.

Per stream, in batches of `loop.ingest_batch` entries:

1. remove the files an earlier run left past the lake's committed id (it died before committing);
2. read the entries after the committed id from the store's log;
3. decode and validate them (the data contract's row rules, `recsys.data.schema.row_problems`); rows
   of users with a pending forget request are dropped; bad records go to the quarantine table with
   the reason;
4. write one file per date partition, named by the batch's id range (temporary name, fsync, rename);
5. commit the batch's last id in the lake's state (same dance), then acknowledge it in the store;

and after the last batch trim the log up to the acknowledged id. Then apply pending forget requests
to the lake (rewrite the files holding those users) and drop partitions past retention.

A kill between 4 and 5 leaves files past the committed id: the next run deletes them (step 1) and
reads the same entries again. A kill between the lake commit and the store acknowledgement leaves the
store behind the lake: the next run acknowledges the lake's committed id first. Nothing is trimmed
from the store that the lake has not committed. Readers skip temporary files and drop repeated ids.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import orjson
import polars as pl

from recsys.config import Settings, lake_dir
from recsys.data.lake import (
    EVENT_SCHEMA,
    EVENTS_TABLE,
    IMPRESSION_SCHEMA,
    IMPRESSIONS_TABLE,
    QUARANTINE_SCHEMA,
    QUARANTINE_TABLE,
    Lake,
    retention_floor,
    utc_day,
    write_atomic,
)
from recsys.data.schema import EVENT_WEIGHTS, row_problems
from recsys.events.records import user_hash
from recsys.store import EVENTS, IMPRESSIONS, STREAMS, Store

log = logging.getLogger(__name__)

TABLE_OF = {EVENTS: EVENTS_TABLE, IMPRESSIONS: IMPRESSIONS_TABLE}


@dataclass
class StreamIngest:
    """What one ingest did to one stream."""

    read: int = 0
    written: int = 0
    quarantined: int = 0
    forgotten: int = 0  # rows of users with a pending forget request, dropped
    files: int = 0
    batches: int = 0
    trimmed: int = 0
    uncommitted_removed: int = 0
    committed: str | None = None


@dataclass
class IngestResult:
    streams: dict[str, StreamIngest] = field(default_factory=dict)
    forget_requests: int = 0
    lake_rows_forgotten: int = 0
    partitions_dropped: int = 0
    seconds: float = 0.0

    @property
    def read(self) -> int:
        return sum(s.read for s in self.streams.values())

    @property
    def records_per_second(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Batch:
    good: pl.DataFrame
    bad: list[dict[str, object]]
    forgotten: int = 0


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _bad(log_id: str, stream: str, reason: str, raw: bytes, user: object = None, ts: object = None
         ) -> dict[str, object]:
    return {"id": log_id, "stream": stream, "timestamp": int(ts) if _is_num(ts) else None,  # type: ignore[call-overload]
            "user_id": user if isinstance(user, str) else None, "reason": reason,
            "record": raw.decode("utf-8", "replace")}


_EVENT_COLUMNS = {"user_id": pl.String, "item_id": pl.String, "event": pl.String, "ts": pl.Float64,
                  "rec_id": pl.String, "eid": pl.String}


def _decode_events_fast(rows: Sequence[tuple[str, bytes]]) -> pl.DataFrame | None:
    """All records as one JSON array into one frame (strict types); None when any record is malformed."""
    try:
        values = orjson.loads(b"[" + b",".join(raw for _, raw in rows) + b"]")
        frame = pl.DataFrame(values, schema=_EVENT_COLUMNS, orient="row", strict=True)
    except (orjson.JSONDecodeError, TypeError, ValueError, pl.exceptions.PolarsError):
        return None
    # Rows of the wrong length raise (ShapeError); a JSON object would be taken as a row by its keys.
    if frame.height != len(rows) or set(map(type, values)) != {list}:
        return None
    return frame.with_columns(pl.Series("id", [i for i, _ in rows], dtype=pl.String))


def decode_events(rows: Sequence[tuple[str, bytes]], now: float) -> _Batch:
    """Decode and validate a batch; bad records (undecodable, wrong types, contract rules) to quarantine.

    The common case (every record well formed) decodes as one JSON array into one frame; a batch with a
    malformed record takes the per-record path, which names each bad one.
    """
    fast = _decode_events_fast(rows)
    if fast is not None:
        return _validated_events(fast, [], now)
    cols: dict[str, list[object]] = {c: [] for c in ("id", "user_id", "item_id", "event", "ts", "rec_id", "eid")}
    bad: list[dict[str, object]] = []
    for log_id, raw in rows:
        try:
            user, item, event, ts, rec_id, eid = orjson.loads(raw)
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            bad.append(_bad(log_id, EVENTS, f"undecodable event record: {exc}", raw))
            continue
        if not (type(user) is str and type(item) is str and type(event) is str and _is_num(ts)
                and (rec_id is None or type(rec_id) is str) and type(eid) is str):
            bad.append(_bad(log_id, EVENTS, "event record has a field of the wrong type", raw, user, ts))
            continue
        for name, value in zip(cols, (log_id, user, item, event, float(ts), rec_id, eid), strict=True):
            cols[name].append(value)
    frame = pl.DataFrame(cols, schema={"id": pl.String, **_EVENT_COLUMNS})
    return _validated_events(frame, bad, now)


def _validated_events(frame: pl.DataFrame, bad: list[dict[str, object]], now: float) -> _Batch:
    frame = frame.with_columns(pl.col("ts").floor().cast(pl.Int64).alias("timestamp"),
                               pl.col("event").replace_strict(EVENT_WEIGHTS, default=1.0,
                                                              return_dtype=pl.Float32).alias("weight"))
    problems = row_problems(frame, now=now)
    for row in frame.filter(problems.is_not_null()).with_columns(problems.filter(problems.is_not_null())
                                                                  .alias("reason")).iter_rows(named=True):
        raw = orjson.dumps([row["user_id"], row["item_id"], row["event"], row["ts"], row["rec_id"], row["eid"]])
        bad.append(_bad(row["id"], EVENTS, str(row["reason"]), raw, row["user_id"], row["ts"]))
    good = frame.filter(problems.is_null() & pl.col("eid").is_first_distinct())  # a retried append, logged twice
    return _Batch(good.select(list(EVENT_SCHEMA)), bad)


def decode_impressions(rows: Sequence[tuple[str, bytes]], now: float) -> _Batch:
    keys = ("rec_id", "user_id", "items", "scores", "model_version", "candidates_version", "fallback", "variant",
            "experiment", "teams")
    cols: dict[str, list[object]] = {c: [] for c in ("id", "ts", *keys)}
    bad: list[dict[str, object]] = []
    for log_id, raw in rows:
        try:
            value = orjson.loads(raw)
            ts = value["ts"]
            ok = (isinstance(value, dict) and type(value["rec_id"]) is str and type(value["user_id"]) is str
                  and _is_num(ts) and isinstance(value["items"], list) and isinstance(value["scores"], list)
                  and len(value["items"]) == len(value["scores"])
                  and (value.get("teams") is None or (isinstance(value["teams"], list)
                                                      and len(value["teams"]) == len(value["items"]))))
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            bad.append(_bad(log_id, IMPRESSIONS, f"undecodable impression record: {exc}", raw))
            continue
        if not ok:
            bad.append(_bad(log_id, IMPRESSIONS, "impression record has a field of the wrong type", raw,
                            value.get("user_id"), ts))
            continue
        cols["id"].append(log_id)
        cols["ts"].append(float(ts))
        for k in keys:
            cols[k].append(value.get(k))
    frame = pl.DataFrame(cols, schema={k: v for k, v in IMPRESSION_SCHEMA.items() if k != "timestamp"},
                         strict=False)
    frame = frame.with_columns(pl.col("ts").floor().cast(pl.Int64).alias("timestamp")).select(list(IMPRESSION_SCHEMA))
    return _Batch(frame.filter(pl.col("rec_id").is_first_distinct()), bad)  # a retried append, logged twice


class Ingester:
    """Drains the logs of one store into one lake. One ingest at a time (the job lock) per lake."""

    def __init__(self, settings: Settings, store: Store, lake: Lake | None = None, *,
                 before_commit: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.lake = lake or Lake(lake_dir(settings))
        self.batch = settings.loop.ingest_batch
        self.before_commit = before_commit

    def run(self, *, now: float | None = None) -> IngestResult:
        t0 = time.perf_counter()
        now = time.time() if now is None else now
        result = IngestResult()
        forget = self.store.event_log.forget_requests()
        hashes = set(forget)
        for stream in STREAMS:
            result.streams[stream] = self._drain(stream, hashes, now)
        if forget:
            result.lake_rows_forgotten = self.lake.remove_users(hashes, user_hash)
            self.store.event_log.clear_forget_requests(forget)
            result.forget_requests = len(forget)
        result.partitions_dropped = self.lake.drop_partitions_before(
            retention_floor(now, self.settings.lake_retention_days))
        result.seconds = time.perf_counter() - t0
        log.info("event=ingest_done %s forget_requests=%d lake_rows_forgotten=%d partitions_dropped=%d seconds=%.3f",
                 " ".join(f"{k}_read={s.read} {k}_written={s.written} {k}_quarantined={s.quarantined}"
                          for k, s in result.streams.items()),
                 result.forget_requests, result.lake_rows_forgotten, result.partitions_dropped, result.seconds)
        return result

    def _drain(self, stream: str, hashes: set[str], now: float) -> StreamIngest:
        out = StreamIngest()
        lake, log_store = self.lake, self.store.event_log
        out.uncommitted_removed = lake.remove_uncommitted(stream)
        committed = lake.committed(stream)
        if committed is not None:
            log_store.acknowledge(stream, committed)  # a run killed after its lake commit
        # The next batch is read while this one is decoded and written: the store serialises its reply
        # (another process, often another core) while this process works. Reading changes nothing, so a
        # prefetched batch that is never processed is simply read again by the next run.
        with ThreadPoolExecutor(1, thread_name_prefix="recsys-ingest-read") as pool:
            future = pool.submit(log_store.read, stream, committed, self.batch)
            while rows := future.result():
                future = pool.submit(log_store.read, stream, rows[-1][0], self.batch)
                committed = self._batch(stream, rows, hashes, now, out)
        out.committed = committed
        out.trimmed = log_store.trim_acknowledged(stream)
        return out

    def _batch(self, stream: str, rows: list[tuple[str, bytes]], hashes: set[str], now: float,
               out: StreamIngest) -> str:
        """Decode, validate, write, commit and acknowledge one batch; returns its last id."""
        lake, log_store = self.lake, self.store.event_log
        first, last = rows[0][0], rows[-1][0]
        batch = (decode_events if stream == EVENTS else decode_impressions)(rows, now)
        if hashes and batch.good.height:
            users = batch.good["user_id"].unique().to_list()
            gone = [u for u in users if user_hash(u) in hashes]
            if gone:
                kept = batch.good.filter(~pl.col("user_id").is_in(gone))
                batch.forgotten = batch.good.height - kept.height
                batch.good = kept
            batch.bad = [b for b in batch.bad if not (isinstance(b["user_id"], str)
                                                      and user_hash(b["user_id"]) in hashes)]
        out.files += self._write(stream, first, last, batch, now)
        if self.before_commit is not None:
            self.before_commit()
        lake.commit(stream, last)
        log_store.acknowledge(stream, last)
        out.read += len(rows)
        out.written += batch.good.height
        out.quarantined += len(batch.bad)
        out.forgotten += batch.forgotten
        out.batches += 1
        return last

    def _write(self, stream: str, first: str, last: str, batch: _Batch, now: float) -> int:
        files = 0
        table = TABLE_OF[stream]
        if batch.good.height:
            days = batch.good.with_columns(pl.from_epoch("timestamp", time_unit="s").dt.date().alias("_day"))
            for part in days.partition_by("_day", maintain_order=True):
                day: date = part["_day"][0]
                write_atomic(self.lake.file_path(table, day, stream, first, last), part.drop("_day"))
                files += 1
        if batch.bad:
            frame = pl.DataFrame(batch.bad, schema=QUARANTINE_SCHEMA)
            write_atomic(self.lake.file_path(QUARANTINE_TABLE, utc_day(now), stream, first, last), frame)
            files += 1
            log.warning("event=ingest_quarantined stream=%s records=%d first_reason=%r", stream, len(batch.bad),
                        batch.bad[0]["reason"])
        return files


def run_ingest(settings: Settings, store: Store, *, lake: Lake | None = None,
               before_commit: Callable[[], None] | None = None, now: float | None = None) -> IngestResult:
    return Ingester(settings, store, lake, before_commit=before_commit).run(now=now)
