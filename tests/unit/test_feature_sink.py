"""The API's feature-log sink: sampling rate, point-in-time rows, and that logging never slows or fails a call."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from recsys.errors import StoreUnavailableError
from recsys.monitoring.feature_log import read_feature_log
from recsys.serving.feature_sink import FeatureLogSink
from recsys.store import Store, open_backend

NAMES = ["a", "b", "c"]
MakeSink = Callable[..., FeatureLogSink]


class FlakyBackend:
    """Wraps a backend; list_append fails while `down` is set and takes `delay` seconds."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.down = threading.Event()
        self.delay = 0.0
        self.calls = 0

    def list_append(self, *args: object, **kwargs: object) -> None:
        self.calls += 1
        time.sleep(self.delay)
        if self.down.is_set():
            raise StoreUnavailableError("injected outage")
        self.inner.list_append(*args, **kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.fixture
def backend() -> FlakyBackend:
    return FlakyBackend(open_backend("embedded://:memory:"))


@pytest.fixture
def store(backend: FlakyBackend) -> Iterator[Store]:
    """A real in-memory store over a backend the test can slow down or take down."""
    st = Store(backend, namespace="sinktest")  # type: ignore[arg-type]
    yield st
    st.close()


@pytest.fixture
def make_sink() -> Iterator[MakeSink]:
    """Sinks closed at teardown even when a test fails (before the store fixture closes the store)."""
    made: list[FeatureLogSink] = []

    def make(store: Store, **kwargs: object) -> FeatureLogSink:
        made.append(FeatureLogSink(store, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for sink in made:
        sink.close(timeout=5)


def serve(sink: FeatureLogSink, requests: int, seed: int, rows: int = 100) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrices = rng.normal(size=(requests, rows, len(NAMES))).astype(np.float32)
    for i, m in enumerate(matrices):
        sink(f"u{i}", "m1", NAMES, m)
    return matrices.reshape(-1, len(NAMES))


def test_samples_whole_rows_at_the_configured_rate(store: Store, make_sink: MakeSink) -> None:
    sink = make_sink(store, rate=0.25, max_rows=10_000, seed=1)
    served = serve(sink, 40, seed=2)
    assert sink.flush(5)
    sink.close()
    s = sink.stats()
    # Binomial(4000, 0.25): mean 1000, sd ~27.
    assert 900 <= s.rows_sampled <= 1100
    assert s.rows_seen == 4000 and s.requests_seen == 40
    assert s.rows_written == s.rows_sampled and s.rows_dropped == s.rows_failed == s.pending_rows == 0
    frame = read_feature_log(store, model_version="m1")
    assert len(frame) == s.rows_written
    # Every logged row is one served row, bit for bit (float32 → JSON → float32 is exact).
    logged = frame[NAMES].to_numpy().astype(np.float32)
    served_rows = {tuple(r) for r in served.tolist()}
    assert all(tuple(r) in served_rows for r in logged.tolist())
    assert set(frame["user_id"]) <= {f"u{i}" for i in range(40)}


def test_same_seed_same_sample(backend: FlakyBackend, make_sink: MakeSink) -> None:
    logs = []
    for ns in ("one", "two"):
        st = Store(backend, namespace=ns)  # type: ignore[arg-type]
        sink = make_sink(st, rate=0.1, max_rows=10_000, seed=7)
        serve(sink, 10, seed=3)
        sink.close()
        logs.append(read_feature_log(st)[NAMES].to_numpy())
    assert logs[0].shape[0] > 0 and np.array_equal(logs[0], logs[1])


def test_rows_are_what_was_scored_at_call_time(backend: FlakyBackend, store: Store, make_sink: MakeSink) -> None:
    """Point in time: a caller reusing its buffer after the call cannot change the logged rows."""
    sink = make_sink(store, rate=1.0, max_rows=100, seed=0)
    backend.delay = 0.2  # the writer is still busy when the buffer changes
    matrix = np.arange(6, dtype=np.float32).reshape(2, 3)
    sink("u", "m1", NAMES, matrix)
    matrix[:] = -1.0
    sink.close()
    assert read_feature_log(store)[NAMES].to_numpy().tolist() == [[0, 1, 2], [3, 4, 5]]


def test_store_outage_is_swallowed_counted_and_recovers(backend: FlakyBackend, store: Store,
                                                        make_sink: MakeSink) -> None:
    sink = make_sink(store, rate=1.0, max_rows=10_000, seed=0, retry_after_s=0.05)
    backend.down.set()
    serve(sink, 5, seed=4, rows=10)  # raises nothing
    assert sink.flush(5)
    s = sink.stats()
    assert s.rows_written == 0 and s.rows_failed == 50 and s.write_errors >= 1
    backend.down.clear()
    time.sleep(0.1)  # past the back-off
    serve(sink, 3, seed=5, rows=10)
    assert sink.flush(5)
    sink.close()
    assert sink.stats().rows_written == 30
    assert len(read_feature_log(store)) == 30


def test_slow_store_never_slows_the_caller_and_drops_beyond_the_queue(backend: FlakyBackend, store: Store,
                                                                     make_sink: MakeSink) -> None:
    backend.delay = 0.5  # every write takes half a second
    sink = make_sink(store, rate=1.0, max_rows=10_000, seed=0, queue_rows=300)
    t = time.perf_counter()
    serve(sink, 50, seed=6)  # 5000 rows offered, 300 may wait
    elapsed = time.perf_counter() - t
    # Writing in the caller would take >= 50 x 0.5 s; the bound is loose only for a loaded machine.
    assert elapsed < 1.0, f"50 sink calls took {elapsed:.3f} s with a 0.5 s store"
    s = sink.stats()
    # At most the queue plus what the writer took: one queue-full batch per 0.5 s write started.
    assert s.rows_dropped >= 5000 - 300 * (2 + int(elapsed / 0.5))
    sink.close(timeout=5)
    s = sink.stats()
    assert s.rows_written + s.rows_dropped == 5000 and s.rows_failed == 0


def test_a_broken_call_is_counted_not_raised(store: Store, make_sink: MakeSink) -> None:
    sink = make_sink(store, rate=1.0, max_rows=100, seed=0)
    sink("u", "m1", NAMES, "not a matrix")  # type: ignore[arg-type]
    sink.close()
    assert sink.stats().sink_errors == 1
