"""Circuit breaker state machine on a fake clock: open on failure, one probe after the cool-down."""

from __future__ import annotations

import threading

import pytest

from recsys.store.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_closed_breaker_lets_every_call_through() -> None:
    b = CircuitBreaker("t", 1.0, clock=FakeClock())
    assert all(b.allow() for _ in range(10))
    assert b.state == CLOSED and b.rejected_count == 0


def test_failure_opens_then_one_probe_after_cooldown() -> None:
    clock = FakeClock()
    b = CircuitBreaker("t", 1.0, clock=clock)
    b.record_failure()
    assert b.state == OPEN and b.opened_count == 1
    assert not b.allow() and not b.allow()
    assert b.rejected_count == 2
    clock.now += 0.4
    assert not b.allow()
    assert abs(b.retry_in() - 0.6) < 1e-9
    clock.now += 0.6
    assert b.allow()  # the probe
    assert b.state == HALF_OPEN
    assert not b.allow()  # everyone else still fails fast while the probe is out
    b.record_success()
    assert b.state == CLOSED and b.allow() and b.retry_in() == 0.0


def test_failed_probe_reopens_for_a_full_cooldown() -> None:
    clock = FakeClock()
    b = CircuitBreaker("t", 2.0, clock=clock)
    b.record_failure()
    clock.now += 2.0
    assert b.allow()
    clock.now += 0.5  # the probe takes its socket timeout, then fails
    b.record_failure()
    assert b.state == OPEN and b.opened_count == 1  # still the same outage
    clock.now += 1.9
    assert not b.allow()
    clock.now += 0.1
    assert b.allow()


def test_probe_that_never_reports_does_not_wedge_the_breaker() -> None:
    clock = FakeClock()
    b = CircuitBreaker("t", 1.0, clock=clock)
    b.record_failure()
    clock.now += 1.0
    assert b.allow()  # probe goes out and its caller dies without reporting
    clock.now += 0.5
    assert not b.allow()
    clock.now += 0.5
    assert b.allow()  # a second probe after another cool-down


def test_zero_cooldown_disables_the_breaker() -> None:
    b = CircuitBreaker("t", 0.0, clock=FakeClock())
    b.record_failure()
    assert b.allow() and b.state == CLOSED and b.opened_count == 0


def test_exactly_one_probe_among_concurrent_callers() -> None:
    clock = FakeClock()
    b = CircuitBreaker("t", 1.0, clock=clock)
    b.record_failure()
    clock.now += 1.0
    allowed: list[bool] = []
    barrier = threading.Barrier(16)

    def call() -> None:
        barrier.wait()
        allowed.append(b.allow())

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 1 and len(allowed) == 16


def test_store_errors_and_breaker_logs_never_carry_the_password(caplog: pytest.LogCaptureFixture) -> None:
    from recsys.errors import StoreUnavailableError
    from recsys.store.redis_backend import RedisBackend
    from tests.redis_server import free_port

    backend = RedisBackend(f"redis://:hunter2@127.0.0.1:{free_port()}/3", timeout_s=0.2)  # nothing listens
    for _ in range(2):  # a refused connection, then the open circuit
        with pytest.raises(StoreUnavailableError) as err:
            backend.get("k")
        assert "hunter2" not in str(err.value) and ":***@127.0.0.1" in str(err.value)
    assert "circuit open" in str(err.value)
    assert caplog.records and all("hunter2" not in r.getMessage() for r in caplog.records)
