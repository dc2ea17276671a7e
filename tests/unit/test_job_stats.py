"""Job and drift figures derived from the job history, and their Prometheus exposition."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.collector import ServiceCollector
from recsys.monitoring.job_stats import summarise_drift, summarise_jobs
from recsys.serving.feature_sink import FeatureLogSink
from recsys.serving.service import ServingState
from recsys.store import JobRun, Store, open_store


@pytest.fixture
def store() -> Iterator[Store]:
    st = open_store("embedded://:memory:", namespace="statstest")
    yield st
    st.close()


def run(job: str, status: str, start: float, end: float | None, **details: Any) -> dict[str, Any]:
    return {"job": job, "status": status, "start": start, "end": end, "details": details}


# Newest first, as list_job_runs returns them.
HISTORY = [
    run("refresh", "running", 100.0, None),
    run("refresh", "failed", 90.0, 95.0),
    run("refresh", "skipped: already running (another run holds its lock)", 85.0, 85.0),
    run("refresh", "lost", 80.0, None),
    run("refresh", "ok", 70.0, 78.5),
    run("refresh", "failed", 60.0, 61.0),
    run("refresh", "ok", 50.0, 52.0),
    run("drift", "ok", 45.0, 46.0, drift_status="insufficient_data", drifted_share=None),
    run("drift", "ok", 40.0, 42.0, drift_status="drift", drifted_share=0.8, model_version="m2"),
    run("drift", "ok", 30.0, 31.0, drift_status="no_drift", drifted_share=0.1, model_version="m1"),
    run("train-ranker", "abandoned", 20.0, 21.0),
]


def test_job_summary_known_answers() -> None:
    s = summarise_jobs(HISTORY)
    refresh = s["refresh"]
    assert refresh.running
    assert refresh.runs == {"running": 1, "failed": 2, "skipped": 1, "lost": 1, "ok": 2}
    assert refresh.last_duration_s == pytest.approx(5.0)  # the newest finished run that did work
    assert refresh.last_success_ts == 78.5
    assert refresh.last_failure_ts == 95.0
    assert refresh.consecutive_failures == 2  # failed at 90 and lost at 80; the one at 60 is older than an ok
    train = s["train-ranker"]
    assert train.consecutive_failures == 0 and train.last_success_ts is None and train.last_duration_s == 1.0


def test_drift_summary_uses_newest_verdict() -> None:
    d = summarise_drift(HISTORY)
    assert d.last_status == "insufficient_data" and d.last_check_ts == 46.0
    assert d.share == 0.8 and d.share_model_version == "m2" and d.detected and d.share_checked_ts == 42.0
    assert summarise_drift(HISTORY[:7]).share is None


@dataclass
class StubService:
    """The attributes ServiceCollector reads from a RecommendationService."""

    store: Store
    feature_sink: object = None
    state: ServingState = field(default_factory=lambda: ServingState(None, None, None, None))


def scrape(registry: CollectorRegistry) -> dict[str, dict[tuple, float]]:
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_collector_reads_history_and_sink_from_the_store(store: Store) -> None:
    ok = JobRun(job="refresh", start=1000.0, trigger="schedule")
    store.jobs.record_start(ok)
    ok.status, ok.end, ok.version = "ok", 1012.5, "v1"
    store.jobs.record_end(ok)
    bad = JobRun(job="refresh", start=2000.0)
    bad.status, bad.end, bad.error = "failed", 2001.0, "boom"
    store.jobs.record_end(bad)
    drift = JobRun(job="drift", start=3000.0)
    drift.status, drift.end = "ok", 3002.0
    drift.details = {"drift_status": "no_drift", "drifted_share": 0.25, "model_version": "m7"}
    store.jobs.record_end(drift)
    assert len(store.jobs.runs(limit=None)) == 3

    sink = FeatureLogSink(store, rate=0.5, max_rows=1000, seed=0)
    sink("u", "m7", ["a", "b"], np.ones((40, 2)))
    sink.close()

    registry = CollectorRegistry()
    collector = ServiceCollector()
    registry.register(collector)
    assert scrape(registry) == {}  # nothing before a service is attached
    collector.attach(StubService(store, sink))  # type: ignore[arg-type]
    m = scrape(registry)
    assert m["recsys_job_last_success_timestamp_seconds"] == {(("job", "refresh"),): 1012.5,
                                                              (("job", "drift"),): 3002.0}
    assert m["recsys_job_last_failure_timestamp_seconds"] == {(("job", "refresh"),): 2001.0}
    assert m["recsys_job_consecutive_failures"][(("job", "refresh"),)] == 1
    assert m["recsys_job_last_duration_seconds"][(("job", "refresh"),)] == pytest.approx(1.0)
    assert m["recsys_job_runs"][(("job", "refresh"), ("status", "ok"))] == 1
    assert m["recsys_drift_share"] == {(("model_version", "m7"),): 0.25}
    assert m["recsys_drift_detected"] == {(("model_version", "m7"),): 0.0}
    assert m["recsys_drift_last_status"] == {(("status", "no_drift"),): 1.0}
    stats = sink.stats()
    assert m["recsys_feature_log_rows_total"][(("outcome", "written"),)] == stats.rows_written > 0
    assert m["recsys_feature_log_served_rows_total"][()] == 40
    assert m["recsys_feature_log_sample_rate"][()] == 0.5
    assert m["recsys_metrics_store_errors_total"][()] == 0

    store.close()  # the store goes away: the scrape still works and counts the failure
    m = scrape(registry)
    assert m["recsys_metrics_store_errors_total"][()] == 1
    assert "recsys_job_runs" not in m and "recsys_feature_log_sample_rate" in m
