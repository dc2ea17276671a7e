"""The serving side of the feature log: sample the rows the ranker scored, write them off the request path.

`RecommendationService` calls the sink with the exact matrix it passed to `model.predict` (point in
time: what the ranker saw, under the model version that saw it). The request draws the sample and
JSON-encodes the kept rows (~7 µs a row; at the default 2 % of ~130 candidates ~3 rows, ~20 µs); a
daemon thread writes them in batches with one capped list append (RPUSH + LTRIM in one MULTI on
Redis, one transaction on the embedded file).

Why encode on the request path: encoded on the writer thread, each batch (~400 rows every 0.25 s at
200 requests/s and the then default 5 %) held the GIL for ~2.5 ms at a time, and the requests that
arrived meanwhile waited: p99 latency rose by about a millisecond. A steady few tens of µs per
request cost less than those bursts.
Logging never fails a request and never waits on the store:

- a store error costs the rows of that batch (counted in `rows_failed`, logged at most once a minute)
  and a short back-off, never an exception in the request;
- when the writer falls behind (store slow or down), new rows beyond `queue_rows` are dropped and
  counted in `rows_dropped`, so memory stays bounded;
- an error inside the sink itself is counted in `sink_errors` and swallowed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from recsys.config import Settings
from recsys.logging_setup import Throttle
from recsys.monitoring.feature_log import encode_feature_rows
from recsys.store import Store

log = logging.getLogger(__name__)

_ERROR_LOG_INTERVAL_S = 60.0
FLUSH_INTERVAL_S = 0.25  # the writer writes at least this often when rows are waiting


@dataclass(frozen=True)
class FeatureLogStats:
    """Counters since start (rows unless named otherwise), read by the /metrics collector."""

    rate: float
    requests_seen: int
    rows_seen: int
    rows_sampled: int
    rows_written: int
    rows_dropped: int
    rows_failed: int
    write_errors: int
    sink_errors: int
    pending_rows: int


@dataclass(frozen=True)
class _Entry:
    payload: list[bytes]  # encoded rows


class FeatureLogSink:
    """A `FeatureSink` for RecommendationService: per-row Bernoulli(rate) sample, asynchronous capped writes."""

    def __init__(self, store: Store, *, rate: float, max_rows: int, seed: int,
                 queue_rows: int = 20_000, batch_rows: int = 2000, retry_after_s: float = 1.0) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"feature log rate must be in [0, 1], got {rate}")
        self.store = store
        self.rate = rate
        self.max_rows = max_rows
        self.queue_rows = queue_rows
        self.batch_rows = batch_rows
        self.retry_after_s = retry_after_s
        self._rng = np.random.default_rng(seed)
        self._rng_lock = threading.Lock()  # numpy Generators are not thread-safe; POST requests run in a pool
        self._cond = threading.Condition()
        self._pending: deque[_Entry] = deque()
        self._pending_rows = 0
        self._flushing = 0  # callers waiting in flush(): the writer writes at once
        self._in_flight = 0
        self._closing = False
        self._closed = threading.Event()  # wakes a back-off early only on close, not on every new row
        self._error_log = Throttle(_ERROR_LOG_INTERVAL_S)
        self._counts = {"requests_seen": 0, "rows_seen": 0, "rows_sampled": 0, "rows_written": 0,
                        "rows_dropped": 0, "rows_failed": 0, "write_errors": 0, "sink_errors": 0}
        self._thread = threading.Thread(target=self._write_loop, name="recsys-feature-log", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, store: Store, settings: Settings) -> FeatureLogSink:
        cfg = settings.drift
        return cls(store, rate=cfg.feature_log_rate, max_rows=cfg.feature_log_max_rows, seed=settings.seed,
                   queue_rows=cfg.feature_log_queue_rows)

    # ---- request thread -------------------------------------------------------------------------
    def __call__(self, user_id: str, model_version: str, names: list[str], matrix: np.ndarray) -> None:
        """Sample rows of the scored matrix and queue them; never raises."""
        try:
            n = int(matrix.shape[0])
            with self._rng_lock:
                draws = self._rng.random(n)
            keep = np.flatnonzero(draws < self.rate)
            payload = encode_feature_rows(model_version, user_id, names, matrix[keep], time.time()) \
                if keep.size else []
            with self._cond:
                self._counts["requests_seen"] += 1
                self._counts["rows_seen"] += n
                if keep.size == 0:
                    return
                self._counts["rows_sampled"] += int(keep.size)
                if self._closing or self._pending_rows + keep.size > self.queue_rows:
                    self._counts["rows_dropped"] += int(keep.size)
                    return
                self._pending.append(_Entry(payload))
                self._pending_rows += int(keep.size)
                # Wake the writer only for a full batch; otherwise it wakes on its own every
                # FLUSH_INTERVAL_S. Waking it per request cost a thread switch (and GIL hand-offs)
                # on every request, which under load stalled serving for hundreds of milliseconds.
                if self._pending_rows >= self.batch_rows:
                    self._cond.notify()
        except Exception:
            with self._cond:
                self._counts["sink_errors"] += 1
            log.exception("event=feature_log_sink_error user_id=%s", user_id)

    # ---- writer thread --------------------------------------------------------------------------
    def _take_batch(self) -> list[_Entry]:
        batch: list[_Entry] = []
        rows = 0
        while self._pending and (not batch or rows + len(self._pending[0].payload) <= self.batch_rows):
            entry = self._pending.popleft()
            batch.append(entry)
            rows += len(entry.payload)
        self._pending_rows -= rows
        self._in_flight = rows
        return batch

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._closing and not self._flushing and self._pending_rows < self.batch_rows:
                    if not self._cond.wait(FLUSH_INTERVAL_S) and self._pending:
                        break  # interval elapsed: write what there is
                if not self._pending:
                    if self._closing:
                        return
                    if self._flushing:  # nothing to write for a waiting flush(): don't spin
                        self._cond.wait(FLUSH_INTERVAL_S)
                    continue
                batch = self._take_batch()
            n = sum(len(e.payload) for e in batch)
            failed = False
            try:
                payload = [row for e in batch for row in e.payload]
                self.store.feature_log.append(payload, self.max_rows)
            except Exception as exc:
                failed = True
                self._log_write_error(exc, n)
            with self._cond:
                self._in_flight = 0
                if failed:
                    self._counts["write_errors"] += 1
                    self._counts["rows_failed"] += n
                else:
                    self._counts["rows_written"] += n
                self._cond.notify_all()
            if failed:
                # Back off so an outage costs one store timeout a second, not one per queued batch.
                self._closed.wait(self.retry_after_s)

    def _log_write_error(self, exc: Exception, rows: int) -> None:
        if self._error_log.ready():
            log.warning("event=feature_log_write_failed rows=%d error=%r (further errors counted in "
                        "recsys_feature_log_rows_total{outcome=\"failed\"}, logged once a minute)", rows, str(exc))

    # ---- control --------------------------------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued row is written (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()  # the writer may be waiting out its interval
        try:
            return self._wait_drained(deadline)
        finally:
            with self._cond:
                self._flushing -= 1

    def _wait_drained(self, deadline: float) -> bool:
        with self._cond:
            while self._pending or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (up to `timeout`), then stop the writer thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._closed.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            with self._cond:
                lost = self._pending_rows
            log.warning("event=feature_log_close_timeout rows_not_written=%d", lost)

    def stats(self) -> FeatureLogStats:
        with self._cond:
            return FeatureLogStats(rate=self.rate, pending_rows=self._pending_rows + self._in_flight,
                                   **self._counts)
