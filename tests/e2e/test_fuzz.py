"""Schemathesis against the live API (uvicorn on loopback, real HTTP): no 5xx, every error documented.

A bounded run (a few dozen cases per operation, all checks). The long run with the coverage and
stateful phases is benchmarks/fuzz_api.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
import uvicorn  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.core.parameters import ParameterLocation  # noqa: E402

from api.app import create_app  # noqa: E402
from recsys.config import Settings  # noqa: E402
from recsys.data.loaders import Dataset  # noqa: E402
from recsys.engines.local import run_refresh  # noqa: E402
from recsys.ranking.train import TrainResult  # noqa: E402
from recsys.store import open_store  # noqa: E402
from tests.redis_server import free_port  # noqa: E402
from tests.schemathesis_hooks import prepared  # noqa: E402

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def live_api(trained_artifacts: tuple[Settings, Dataset, TrainResult],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    settings, ds, _ = trained_artifacts
    store = open_store(f"embedded://{tmp_path_factory.mktemp('fuzz') / 'store.sqlite'}")
    run_refresh(settings, store, ds)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, store), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", settings.admin_token
    server.should_exit = True
    thread.join(10)
    store.close()


# The schema is the app's own OpenAPI document (built without starting the app); requests go to the
# live server. (schemathesis.pytest.from_fixture does not work with pytest 9.)
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: Any, live_api: tuple[str, str]) -> None:
    if case.body is not None and not isinstance(case.body, str | bytes):
        case.body = prepared(case.body)  # see tests/schemathesis_hooks.py
    # The admin token goes with every request, except when the fuzzer generated the headers negative on
    # purpose (e.g. the required Authorization dropped): adding it back would turn that case into a valid
    # request, and the negative-data check would then blame the server for accepting it.
    meta = getattr(case, "meta", None)
    broken_headers = meta is not None and meta.is_negative_at(ParameterLocation.HEADER)
    headers = {} if broken_headers else {"Authorization": f"Bearer {live_api[1]}"}
    response = case.call_and_validate(base_url=live_api[0], headers=headers)
    assert response.status_code < 500


def test_oversized_request_line_is_a_documented_400(live_api: tuple[str, str]) -> None:
    """uvicorn refuses a URL over 64 KiB before the app sees it: a 400 the schema documents for every operation."""
    import http.client
    import json
    from urllib.parse import urlsplit

    netloc = urlsplit(live_api[0]).netloc

    def get(path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(netloc, timeout=10)  # httpx itself refuses such URLs
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    assert get("/v1/users/u1/recommendations?exclude=" + "i" * 20_000)[0] == 200
    assert get("/v1/users/u1/recommendations?exclude=" + "i" * 70_000)[0] == 400
    spec = json.loads(get("/openapi.json")[1])
    assert all("400" in op["responses"] for ops in spec["paths"].values() for op in ops.values())
