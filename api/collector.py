"""Scrape-time Prometheus metrics of a running RecommendationService: serving state, feature log, jobs, drift.

Request metrics (latency, status, fallbacks) are counted where requests are handled (api/metrics.py);
everything here is read when /metrics is scraped, so it is as fresh as the scrape and costs nothing per
request. Job and drift figures come from the shared job history (see recsys.monitoring.job_stats for why),
one store read per scrape; if the store cannot be read, those families are left out and
`recsys_metrics_store_errors_total` counts it; the other families are still served.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from recsys.events.sink import LoopSinks
from recsys.monitoring.job_stats import summarise_drift, summarise_jobs
from recsys.serving.feature_sink import FeatureLogSink
from recsys.serving.service import RecommendationService
from recsys.store import STREAMS, LogState
from recsys.store.backend import parse_log_id

log = logging.getLogger(__name__)


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels or [])


class ServiceCollector(Collector):
    """Register once per registry; `attach` the service when it exists (the app's lifespan opens it)."""

    def __init__(self) -> None:
        self._service: RecommendationService | None = None
        self._loop: LoopSinks | None = None
        self._store_errors = 0
        self._lock = threading.Lock()

    def attach(self, service: RecommendationService | None, loop: LoopSinks | None = None) -> None:
        self._service = service
        self._loop = loop

    def describe(self) -> list[Metric]:
        return []  # names vary with the state; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        service = self._service
        if service is None:
            return
        now = time.time()
        yield from self._serving(service, now)
        if isinstance(service.feature_sink, FeatureLogSink):
            yield from self._feature_log(service.feature_sink)
        if self._loop is not None:
            yield from self._log_sinks(self._loop)
        try:
            states = [service.store.event_log.state(stream) for stream in STREAMS]
        except Exception as exc:
            log.warning("event=metrics_log_state_unavailable error=%r", str(exc))
            states = []
        yield from self._log_states(states, now)
        try:
            runs = service.store.jobs.runs(limit=None)
        except Exception as exc:  # a scrape must not fail because the store is down
            with self._lock:
                self._store_errors += 1
            log.warning("event=metrics_job_history_unavailable error=%r", str(exc))
            runs = None
        errors = CounterMetricFamily("recsys_metrics_store_errors", "Scrapes whose job/drift figures could "
                                     "not be read from the store")
        errors.add_metric([], self._store_errors)
        yield errors
        if runs is not None:
            yield from self._jobs(runs)
            yield from self._drift(runs)

    # ---- families -------------------------------------------------------------------------------
    @staticmethod
    def _serving(service: RecommendationService, now: float) -> Iterator[Metric]:
        state = service.state
        info = _gauge("recsys_serving_info", "The candidate version and ranker model being served (value 1)",
                      ["candidates_version", "model_version"])
        info.add_metric([state.candidates_version or "", state.model.version if state.model else ""], 1)
        yield info
        if state.bundle is not None and state.bundle.manifest is not None:
            age = _gauge("recsys_candidates_version_age_seconds", "Age of the serving candidate version "
                         "(since its refresh built it)")
            age.add_metric([], now - state.bundle.manifest.created_at)
            yield age
        if state.model is not None:
            age = _gauge("recsys_model_age_seconds", "Age of the serving ranker model (since it was trained)")
            age.add_metric([], now - state.model.manifest.created_at)
            yield age

    @staticmethod
    def _feature_log(sink: FeatureLogSink) -> Iterator[Metric]:
        s = sink.stats()
        rate = _gauge("recsys_feature_log_sample_rate", "Share of served feature rows sampled into the log")
        rate.add_metric([], s.rate)
        yield rate
        served = CounterMetricFamily("recsys_feature_log_served_rows", "Feature rows scored by the ranker")
        served.add_metric([], s.rows_seen)
        yield served
        rows = CounterMetricFamily("recsys_feature_log_rows", "Sampled feature rows by outcome: sampled, "
                                   "written, dropped (writer queue full), failed (store error)", labels=["outcome"])
        for outcome, value in (("sampled", s.rows_sampled), ("written", s.rows_written),
                               ("dropped", s.rows_dropped), ("failed", s.rows_failed)):
            rows.add_metric([outcome], value)
        yield rows
        errors = CounterMetricFamily("recsys_feature_log_errors", "Feature log errors swallowed so requests "
                                     "never fail: store writes and the sink itself", labels=["kind"])
        errors.add_metric(["store_write"], s.write_errors)
        errors.add_metric(["sink"], s.sink_errors)
        yield errors
        pending = _gauge("recsys_feature_log_pending_rows", "Sampled rows waiting for the background writer")
        pending.add_metric([], s.pending_rows)
        yield pending

    @staticmethod
    def _log_sinks(loop: LoopSinks) -> Iterator[Metric]:
        records = CounterMetricFamily("recsys_log_records", "Event/impression log records by outcome: submitted "
                                      "(by requests), written (to the store), dropped (writer queue full)",
                                      labels=["stream", "outcome"])
        errors = CounterMetricFamily("recsys_log_errors", "Log append errors swallowed so requests never fail "
                                     "(store_write: the batch is kept and retried)", labels=["stream", "kind"])
        pending = _gauge("recsys_log_pending_records", "Records waiting for the background log writer", ["stream"])
        for sink in loop.all():
            st = sink.stats()
            for outcome, value in (("submitted", st.submitted), ("written", st.written), ("dropped", st.dropped)):
                records.add_metric([st.stream, outcome], value)
            errors.add_metric([st.stream, "store_write"], st.write_errors)
            errors.add_metric([st.stream, "sink"], st.sink_errors)
            pending.add_metric([st.stream], st.pending)
        yield from (records, errors, pending)

    @staticmethod
    def _log_states(states: list[LogState], now: float) -> Iterator[Metric]:
        length = _gauge("recsys_log_length", "Entries in the store's log (not yet trimmed: ~ the ingest lag)",
                        ["stream"])
        fill = _gauge("recsys_log_fill_ratio", "Log length / its cap: alert above 0.8 (entries past the cap are "
                      "trimmed unread)", ["stream"])
        lag = _gauge("recsys_log_ingest_lag_seconds", "Age of the oldest entry the lake ingest has not "
                     "acknowledged (0 when none)", ["stream"])
        for st in states:
            length.add_metric([st.stream], st.length)
            fill.add_metric([st.stream], st.fill)
            oldest = 0.0
            if st.first_id is not None and (st.acked_id is None
                                             or parse_log_id(st.first_id) > parse_log_id(st.acked_id)):
                oldest = max(0.0, now - parse_log_id(st.first_id)[0] / 1000.0)
            lag.add_metric([st.stream], oldest)
        yield from (length, fill, lag)

    @staticmethod
    def _jobs(runs: list[dict[str, Any]]) -> Iterator[Metric]:
        summaries = summarise_jobs(runs)
        counts = _gauge("recsys_job_runs", "Runs in the retained job history by status (a window, not a "
                        "counter)", ["job", "status"])
        running = _gauge("recsys_job_running", "1 while a run of the job is in progress", ["job"])
        duration = _gauge("recsys_job_last_duration_seconds", "Duration of the newest finished run",
                          ["job"])
        success = _gauge("recsys_job_last_success_timestamp_seconds", "End of the newest successful run "
                         "(unix time)", ["job"])
        failure = _gauge("recsys_job_last_failure_timestamp_seconds", "End of the newest failed or lost run "
                         "(unix time)", ["job"])
        streak = _gauge("recsys_job_consecutive_failures", "Failed or lost runs since the newest success",
                        ["job"])
        for name, s in sorted(summaries.items()):
            for status, n in sorted(s.runs.items()):
                counts.add_metric([name, status], n)
            running.add_metric([name], 1.0 if s.running else 0.0)
            streak.add_metric([name], s.consecutive_failures)
            if s.last_duration_s is not None:
                duration.add_metric([name], s.last_duration_s)
            if s.last_success_ts is not None:
                success.add_metric([name], s.last_success_ts)
            if s.last_failure_ts is not None:
                failure.add_metric([name], s.last_failure_ts)
        yield from (counts, running, duration, success, failure, streak)

    @staticmethod
    def _drift(runs: list[dict[str, Any]]) -> Iterator[Metric]:
        d = summarise_drift(runs)
        if d.last_check_ts is not None:
            last = _gauge("recsys_drift_last_check_timestamp_seconds", "End of the newest completed drift "
                          "check (unix time)")
            last.add_metric([], d.last_check_ts)
            yield last
            status = _gauge("recsys_drift_last_status", "Verdict of the newest drift check (value 1)",
                            ["status"])
            status.add_metric([str(d.last_status)], 1)
            yield status
        if d.share is not None:
            share = _gauge("recsys_drift_share", "Share of the ranker's features drifted in the newest drift "
                           "check that reached a verdict", ["model_version"])
            share.add_metric([str(d.share_model_version or "")], d.share)
            yield share
            detected = _gauge("recsys_drift_detected", "1 when that check found drift (share above the "
                              "threshold: retrain triggered)", ["model_version"])
            detected.add_metric([str(d.share_model_version or "")], 1.0 if d.detected else 0.0)
            yield detected
