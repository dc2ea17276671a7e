"""A Redis that stops answering (frozen) or refuses connections: store calls fail fast, then recover.

Uses a private redis-server (free port) so the test can freeze and kill it.
"""

from __future__ import annotations

import time

import pytest

from recsys.errors import StoreUnavailableError
from recsys.store.backend import BreakerStats
from recsys.store.redis_backend import RedisBackend
from tests.redis_server import PrivateRedis

TIMEOUT_S = 0.5


def _timed_failures(backend: RedisBackend, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        with pytest.raises(StoreUnavailableError):
            backend.get("k")
        out.append(time.perf_counter() - t)
    return out


def test_frozen_redis_costs_one_timeout_per_cooldown_not_per_call(private_redis: PrivateRedis) -> None:
    backend = RedisBackend(private_redis.url, timeout_s=TIMEOUT_S, breaker_cooldown_s=1.0)
    backend.set("k", b"v")
    private_redis.freeze()
    try:
        took = _timed_failures(backend, 50)
        assert took[0] >= TIMEOUT_S * 0.9  # the first call pays the socket timeout and opens the circuit
        assert max(took[1:]) < 0.05 and sum(took[1:]) < 0.25  # the other 49 fail at once
        assert backend.breaker() == BreakerStats(open=True, rejected_calls=49, outages=1)
        assert not backend.ping()  # readiness answers at once too
        time.sleep(1.0)
        took = _timed_failures(backend, 2)  # after the cool-down one probe pays the timeout again
        assert took[0] >= TIMEOUT_S * 0.9 and took[1] < 0.05
    finally:
        private_redis.thaw()
    time.sleep(1.0)
    assert backend.get("k") == b"v"  # the probe succeeds and closes the circuit
    assert not backend.breaker().open
    backend.close()


def test_without_breaker_every_call_waits_for_the_timeout(private_redis: PrivateRedis) -> None:
    """The baseline the breaker fixes (0 disables it): 4 calls cost 4 socket timeouts."""
    backend = RedisBackend(private_redis.url, timeout_s=0.25, breaker_cooldown_s=0.0)
    backend.set("k", b"v")
    private_redis.freeze()
    try:
        took = _timed_failures(backend, 4)
    finally:
        private_redis.thaw()
    assert min(took) >= 0.25 * 0.9
    backend.close()


def test_killed_redis_opens_circuit_and_restart_recovers(private_redis: PrivateRedis) -> None:
    backend = RedisBackend(private_redis.url, breaker_cooldown_s=0.3)
    backend.set("k", b"v")
    private_redis.kill()
    _timed_failures(backend, 3)
    assert backend.breaker().open and backend.breaker().outages == 1
    private_redis.start()  # same port, comes back empty
    deadline = time.monotonic() + 3
    while not backend.ping() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not backend.breaker().open
    assert backend.get("k") is None
    backend.set("k", b"w")
    assert backend.get("k") == b"w"
    backend.close()


def test_command_refused_by_server_is_store_unavailable_not_a_crash(private_redis: PrivateRedis) -> None:
    """A server that answers with an error (here: OOM at maxmemory 1 byte) maps to StoreUnavailableError."""
    backend = RedisBackend(private_redis.url)
    backend._client.config_set("maxmemory", 1)
    backend._client.config_set("maxmemory-policy", "noeviction")
    with pytest.raises(StoreUnavailableError, match="refused"):
        backend.set("big", b"x" * 10_000)
    assert not backend.breaker().open  # it answered: not an outage
    backend.close()
