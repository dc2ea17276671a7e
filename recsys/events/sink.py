"""The API side of the logs: records encoded on the request, appended by a background thread.

A request pays for encoding one record (a few µs) and a queue append; a daemon thread appends the
queued records to the store's log in batches (one pipeline of XADDs on Redis, one transaction on the
embedded file). Nothing here can slow or fail a request:

- while the store is down or slow, the batch that failed goes back to the head of the queue and the
  writer retries after a back-off: records are kept (in order), not lost, up to `queue_records`;
- past that bound new records are dropped and counted (`/metrics`: recsys_log_records_total
  {outcome="dropped"}), so an outage never grows the API's memory;
- an error inside the sink itself is counted and swallowed.

A process that dies loses what its queue holds (at most `FLUSH_INTERVAL_S` of records in steady
state); see docs/loop.md for what each failure costs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from recsys.config import Settings
from recsys.events.records import Impression, encode_event
from recsys.logging_setup import Throttle
from recsys.serving.service import Recommendations
from recsys.store import EVENTS, IMPRESSIONS, Store

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.1
_ERROR_LOG_INTERVAL_S = 60.0


@dataclass(frozen=True)
class LogSinkStats:
    stream: str
    submitted: int
    written: int
    dropped: int
    write_errors: int
    sink_errors: int
    pending: int


class LogSink:
    """Background, batched, bounded appends of encoded records to one log of the store."""

    def __init__(self, store: Store, stream: str, *, queue_records: int = 100_000, batch_records: int = 1000,
                 retry_after_s: float = 1.0) -> None:
        self.store = store
        self.stream = stream
        self.queue_records = queue_records
        self.batch_records = batch_records
        self.retry_after_s = retry_after_s
        self._cond = threading.Condition()
        self._pending: deque[bytes] = deque()
        self._in_flight = 0
        self._flushing = 0
        self._closing = False
        self._closed = threading.Event()
        self._error_log = Throttle(_ERROR_LOG_INTERVAL_S)
        self._counts = {"submitted": 0, "written": 0, "dropped": 0, "write_errors": 0, "sink_errors": 0}
        self._thread = threading.Thread(target=self._loop, name=f"recsys-log-{stream}", daemon=True)
        self._thread.start()

    # ---- request thread -------------------------------------------------------------------------
    def submit(self, records: list[bytes]) -> None:
        """Queue encoded records; never raises, never waits for the store."""
        with self._cond:
            self._counts["submitted"] += len(records)
            if self._closing or len(self._pending) + self._in_flight + len(records) > self.queue_records:
                self._counts["dropped"] += len(records)
                return
            self._pending.extend(records)
            # Wake the writer only for a full batch: a wake-up per request costs thread switches under load.
            if len(self._pending) >= self.batch_records:
                self._cond.notify()

    def count_error(self) -> None:
        with self._cond:
            self._counts["sink_errors"] += 1

    # ---- writer thread --------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closing and not self._flushing and len(self._pending) < self.batch_records:
                    if not self._cond.wait(FLUSH_INTERVAL_S) and self._pending:
                        break
                if not self._pending:
                    if self._closing:
                        return
                    if self._flushing:
                        self._cond.wait(FLUSH_INTERVAL_S)
                    continue
                n = min(len(self._pending), self.batch_records)
                batch = [self._pending.popleft() for _ in range(n)]
                self._in_flight = n
            failed = False
            try:
                self.store.event_log.append(self.stream, batch)
            except Exception as exc:
                failed = True
                self._log_error(exc, n)
            with self._cond:
                self._in_flight = 0
                if failed:
                    self._counts["write_errors"] += 1
                    self._pending.extendleft(reversed(batch))  # kept, in order, for the retry
                else:
                    self._counts["written"] += n
                self._cond.notify_all()
                give_up = failed and self._closing
            if give_up:
                return
            if failed:
                self._closed.wait(self.retry_after_s)

    def _log_error(self, exc: Exception, n: int) -> None:
        if self._error_log.ready():
            log.warning("event=log_append_failed stream=%s records=%d error=%r (kept for retry; further errors "
                        "counted in /metrics, logged once a minute)", self.stream, n, str(exc))

    # ---- control --------------------------------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued is written; False on timeout (e.g. the store is down)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._pending or self._in_flight:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                return True
            finally:
                self._flushing -= 1

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self._closed.set()
        with self._cond:
            lost = len(self._pending) + self._in_flight
        if lost:
            log.warning("event=log_sink_closed_with_pending stream=%s records=%d", self.stream, lost)

    def stats(self) -> LogSinkStats:
        with self._cond:
            return LogSinkStats(self.stream, pending=len(self._pending) + self._in_flight, **self._counts)


class LoopSinks:
    """The API's two log sinks; either may be off (settings.loop.log_events / log_impressions)."""

    def __init__(self, events: LogSink | None, impressions: LogSink | None) -> None:
        self.events = events
        self.impressions = impressions

    @classmethod
    def from_settings(cls, store: Store, settings: Settings) -> LoopSinks:
        cfg = settings.loop

        def sink(stream: str, on: bool) -> LogSink | None:
            return LogSink(store, stream, queue_records=cfg.sink_queue_records,
                           batch_records=cfg.sink_batch_records) if on else None

        return cls(sink(EVENTS, cfg.log_events), sink(IMPRESSIONS, cfg.log_impressions))

    def record_events(self, events: list[tuple[str, str, str, float, str | None]]) -> None:
        """(user, item, event, ts, rec_id) tuples of accepted events; never raises."""
        if self.events is None:
            return
        try:
            self.events.submit([encode_event(*e) for e in events])
        except Exception:
            self.events.count_error()
            log.exception("event=event_log_sink_error")

    def record_recommendation(self, rec: Recommendations) -> None:
        """The service's impression sink: one record per served list."""
        if self.impressions is None:
            return
        try:
            impression = Impression(rec.rec_id, rec.user_id, [i.item_id for i in rec.items],
                                    [i.score for i in rec.items], rec.model_version, rec.candidates_version,
                                    rec.fallback.value if rec.fallback is not None else None, rec.served_at,
                                    variant=rec.variant, experiment=rec.experiment, teams=rec.teams)
            self.impressions.submit([impression.encode()])
        except Exception:
            self.impressions.count_error()
            log.exception("event=impression_log_sink_error")

    def all(self) -> list[LogSink]:
        return [s for s in (self.events, self.impressions) if s is not None]

    def flush(self, timeout: float = 5.0) -> bool:
        return all([s.flush(timeout) for s in self.all()])

    def close(self, timeout: float = 5.0) -> None:
        for s in self.all():
            s.close(timeout)
