"""Prometheus metrics and a lean ASGI middleware that times every request by route template.

Per-request metrics are counted here; scrape-time ones (serving versions and ages, feature log, jobs,
drift) come from `recsys.monitoring.prometheus.ServiceCollector`, registered on the same registry.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from api.asgi import HttpMiddleware
from api.collector import ServiceCollector
from recsys.serving import FallbackReason

BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    """One registry per app, so tests and several apps in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram("recsys_request_seconds", "Request latency by endpoint", ["endpoint", "method"],
                                 buckets=BUCKETS, registry=r)
        self.requests = Counter("recsys_requests_total", "Requests by endpoint and status",
                                ["endpoint", "method", "status"], registry=r)
        self.fallbacks = Counter("recsys_fallbacks_total", "Responses served by a fallback, by reason", ["reason"],
                                 registry=r)
        for reason in FallbackReason:
            self.fallbacks.labels(reason.value)  # every reason exported from the start, at 0
        self.cache_misses = Counter("recsys_candidate_cache_misses_total",
                                    "Recommendation requests for users without cached candidates", registry=r)
        self.events = Counter("recsys_events_total", "Session events accepted", registry=r)
        self.experiment_impressions = Counter("recsys_experiment_impressions_total",
                                              "Served lists by running experiment and variant",
                                              ["experiment", "variant"], registry=r)
        self.service = ServiceCollector()
        r.register(self.service)
        self.circuit_open = Gauge("recsys_store_circuit_open",
                                  "1 while the store circuit breaker fails calls fast after a connection failure",
                                  registry=r)
        self.circuit_rejected = Gauge("recsys_store_circuit_rejected_calls",
                                      "Store calls failed fast by the circuit breaker since start", registry=r)
        self.circuit_outages = Gauge("recsys_store_circuit_outages",
                                     "Times the store circuit breaker opened since start", registry=r)


class MetricsMiddleware(HttpMiddleware):
    """Latency histogram + status counter per route template."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.latency.labels(endpoint, method).observe(time.perf_counter() - start)
            self.metrics.requests.labels(endpoint, method, str(status["code"])).inc()
