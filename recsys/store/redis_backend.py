"""Redis backends: one server (`redis://`) or a Redis Cluster (`redis-cluster://`).

Pipelined writes, one round trip per online read, Lua for the atomic read-modify-write steps. The
cluster backend differs only where keys span slots: batched writes are grouped by slot, a prefix is
scanned on every primary, and `clustered` tells the store that one request may read one slot only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import redis

from recsys.errors import ConfigError, StoreUnavailableError
from recsys.redact import redact_url
from recsys.store.backend import BreakerStats, LogInfo, format_log_id, parse_log_id
from recsys.store.breaker import CLOSED, CircuitBreaker

_T = TypeVar("_T")

_CAS_DELETE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_CAS_EXPIRE = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
               "else return 0 end")
# RPUSH + LTRIM (+ PEXPIRE when ARGV[2] > 0) as one atomic step on one key (a cluster has no MULTI across
# pipelines, and one script is one round trip on both kinds of server). ARGV: max_len, ttl_ms, values...
_LIST_APPEND = ("redis.call('rpush', KEYS[1], unpack(ARGV, 3)) "
                "redis.call('ltrim', KEYS[1], -tonumber(ARGV[1]), -1) "
                "if tonumber(ARGV[2]) > 0 then redis.call('pexpire', KEYS[1], ARGV[2]) end return 1")
# Errors that mean "the cluster cannot serve this slot right now" (failover in progress, node gone)
# but are not RedisError subclasses in redis-py.
_UNAVAILABLE: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError,
                                                  redis.exceptions.RedisClusterException)


def _raw(response: Any, **options: Any) -> Any:
    return response


def _expire_keys(pipe: Any, keys: Iterable[Any], ttl_ms: int, batch: int) -> int:
    """Unlink (ttl_ms <= 0) or expire every key, `batch` commands per round trip; how many there were."""
    n = 0
    for key in keys:
        if ttl_ms <= 0:
            pipe.unlink(key)
        else:
            pipe.pexpire(key, ttl_ms)
        n += 1
        if n % batch == 0:
            pipe.execute()
    pipe.execute()
    return n


class RedisBackend:
    """`redis://host:port/db`. Short timeouts so an outage turns into a fallback, not a hang.

    A circuit breaker (see breaker.py) makes the calls after a connection failure fail at once for
    `breaker_cooldown_s`, so only one call per cool-down pays the socket timeout while Redis is down.
    """

    clustered = False

    def __init__(self, url: str, *, timeout_s: float = 0.5, breaker_cooldown_s: float = 1.0,
                 scan_batch: int = 2000) -> None:
        self.url = url
        self.scan_batch = scan_batch
        self._name = redact_url(url)
        self._breaker = CircuitBreaker(self._name, breaker_cooldown_s)
        self._node_breakers: dict[str, CircuitBreaker] = {}  # cluster: one per master (RedisClusterBackend)
        self._client: Any = self._connect(url, timeout_s)
        # XRANGE replies stay raw ([[id, [field, value]], …]): redis-py's parser builds a dict per entry,
        # which cost more than the rest of the ingest (measured: 40 % of a 100k-entry ingest).
        self._client.set_response_callback("XRANGE", _raw)
        self._cas_delete = self._client.register_script(_CAS_DELETE)
        self._cas_expire = self._client.register_script(_CAS_EXPIRE)
        self._list_append = self._client.register_script(_LIST_APPEND)

    @staticmethod
    def _connect(url: str, timeout_s: float) -> Any:
        return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                    health_check_interval=0)

    def _breaker_for(self, route: str | None) -> CircuitBreaker:
        """The breaker guarding a call on key `route` (one server: one breaker for every call)."""
        return self._breaker

    def _call(self, fn: Callable[..., _T], *args: Any, route: str | None = None) -> _T:
        breaker = self._breaker_for(route)
        if not breaker.allow():
            raise StoreUnavailableError(f"redis at {self._name} unavailable: circuit open after a connection "
                                        f"failure, next probe in {breaker.retry_in():.2f}s")
        try:
            out = fn(*args)
        except _UNAVAILABLE as exc:
            breaker.record_failure()
            raise StoreUnavailableError(f"redis at {self._name} unavailable: {exc}") from exc
        except redis.RedisError as exc:
            # The server answered but refused (OOM, MISCONF, read-only replica): it is up, yet cannot
            # serve this call. Still the store being unavailable to the caller, not a bug (no 500).
            breaker.record_success()
            raise StoreUnavailableError(f"redis at {self._name} refused the command: {exc}") from exc
        except BaseException:
            breaker.record_success()  # not a connection failure: never leave a probe hanging
            raise
        breaker.record_success()
        return out

    def ping(self) -> bool:
        try:
            return bool(self._call(self._client.ping))
        except StoreUnavailableError:
            return False

    def get(self, key: str) -> bytes | None:
        return cast("bytes | None", self._call(self._client.get, key, route=key))  # no decode_responses: always bytes

    def set(self, key: str, value: bytes, ttl_ms: int | None = None) -> None:
        self._call(lambda: self._client.set(key, value, px=ttl_ms), route=key)

    def set_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """One MSET: a single command instead of a pipeline of SETs (~3x fewer client cycles)."""
        if items:
            self._call(self._client.execute_command, "MSET", *chain.from_iterable(items))

    def delete(self, *keys: str) -> None:
        if keys:
            self._call(self._client.delete, *keys)

    def set_if_absent(self, key: str, value: bytes, ttl_ms: int) -> bool:
        return bool(self._call(lambda: self._client.set(key, value, nx=True, px=ttl_ms), route=key))

    def compare_and_delete(self, key: str, value: bytes) -> bool:
        return bool(self._call(lambda: self._cas_delete(keys=[key], args=[value]), route=key))

    def compare_and_expire(self, key: str, value: bytes, ttl_ms: int) -> bool:
        return bool(self._call(lambda: self._cas_expire(keys=[key], args=[value, ttl_ms]), route=key))

    def expire_prefix(self, prefix: str, ttl_ms: int) -> int:
        def run() -> int:
            keys = self._client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=5000)
            return _expire_keys(self._client.pipeline(transaction=False), keys, ttl_ms, self.scan_batch)
        return self._call(run)

    def list_append(self, key: str, values: Sequence[bytes], max_len: int, ttl_ms: int | None) -> None:
        if values:
            self._call(lambda: self._list_append(keys=[key], args=[max_len, ttl_ms or 0, *values]), route=key)

    def list_range(self, key: str) -> list[bytes]:
        return cast("list[bytes]", self._call(lambda: self._client.lrange(key, 0, -1), route=key))

    def fetch(self, keys: Sequence[str], lists: Sequence[str]) -> tuple[list[bytes | None], list[list[bytes]]]:
        def run() -> tuple[list[bytes | None], list[list[bytes]]]:
            pipe = self._client.pipeline(transaction=False)
            for k in keys:
                pipe.get(k)
            for k in lists:
                pipe.lrange(k, 0, -1)
            out = pipe.execute()
            return out[:len(keys)], out[len(keys):]
        # One user's keys share a slot (keys.py): the first key routes the whole read on a cluster.
        return self._call(run, route=(keys[0] if keys else lists[0] if lists else None))

    def list_remove(self, key: str, values: Sequence[bytes]) -> int:
        if not values:
            return 0

        def run() -> int:
            pipe: Any = self._client.pipeline(transaction=False)
            for v in values:
                pipe.lrem(key, 0, v)
            return int(sum(pipe.execute()))
        return self._call(run)

    # ---- append-only logs: Redis Streams, one field "v" per entry -------------------------------
    def log_append(self, key: str, values: Sequence[bytes], max_len: int) -> list[str]:
        if not values:
            return []

        def run() -> list[str]:
            pipe = self._client.pipeline(transaction=False)
            for v in values:
                pipe.xadd(key, {b"v": v}, maxlen=max_len, approximate=True)
            return [i.decode() for i in pipe.execute()]
        return self._call(run)

    def log_read(self, key: str, after: str | None, count: int) -> list[tuple[str, bytes]]:
        start = f"({after}" if after else "-"
        client: Any = self._client  # no decode_responses: ids and values come back as bytes
        rows = self._call(lambda: client.xrange(key, min=start, max="+", count=count))
        if rows and isinstance(rows[0][1], dict):  # a cluster's node clients parse XRANGE themselves
            return [(i.decode(), fields[b"v"]) for i, fields in rows]
        return [(i.decode(), fields[1]) for i, fields in rows]  # one field per entry: [b"v", value]

    def log_trim(self, key: str, upto: str) -> int:
        ms, seq = parse_log_id(upto)
        # MINID keeps ids >= its argument: the successor of `upto` deletes everything up to it, exactly.
        return int(self._call(lambda: self._client.xtrim(key, minid=format_log_id(ms, seq + 1),
                                                          approximate=False)))

    def log_delete(self, key: str, ids: Sequence[str]) -> int:
        return int(self._call(self._client.xdel, key, *ids)) if ids else 0

    def log_info(self, key: str) -> LogInfo:
        def run() -> LogInfo:
            pipe = self._client.pipeline(transaction=False)
            pipe.xlen(key)
            pipe.xrange(key, count=1)
            pipe.xrevrange(key, count=1)
            length, first, last = pipe.execute()
            return LogInfo(int(length), first[0][0].decode() if first else None,
                           last[0][0].decode() if last else None)
        return self._call(run)

    def _scan(self, prefix: str) -> Any:
        return self._client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=5000)

    def dump_prefix(self, prefix: str) -> list[tuple[str, bytes]]:
        client: Any = self._client

        def run() -> list[tuple[str, bytes]]:
            out = []
            for raw in self._scan(prefix):
                key = raw.decode()
                kind = client.type(raw).decode()
                if kind == "string":
                    value = client.get(raw) or b""
                elif kind == "list":
                    value = b"\n".join(client.lrange(raw, 0, -1))
                elif kind == "stream":
                    value = b"\n".join(v for _, v in self.log_read(key, None, 10**9))
                elif kind == "none":
                    continue
                else:
                    value = repr(client.dump(raw)).encode()
                out.append((key, value))
            return out
        return self._call(run)

    def breaker(self) -> BreakerStats:
        breakers = self._breakers()
        return BreakerStats(open=any(b.state != CLOSED for b in breakers),
                            rejected_calls=sum(b.rejected_count for b in breakers),
                            outages=sum(b.opened_count for b in breakers))

    def _breakers(self) -> list[CircuitBreaker]:
        return [self._breaker]

    def close(self) -> None:
        self._client.close()


class RedisClusterBackend(RedisBackend):
    """`redis-cluster://host:port[,host:port…]` (password: `redis-cluster://:secret@host:port,…`).

    The hash tags of the key layout (keys.py) put everything one request reads for a user in one slot,
    so `fetch` of those keys is one round trip to one node; `Store.read_user` leaves the global version
    pointer out of that read on a cluster (it lives in another slot) and relies on the reload poller's
    copy instead — see docs/scale-out.md for why that is safe.
    """

    clustered = True

    def _breaker_for(self, route: str | None) -> CircuitBreaker:
        """One breaker per master: while one master is down (failover), only requests for its slots fail
        fast; the other masters' users are served as usual. Calls spanning slots use the shared one."""
        if route is None:
            return self._breaker
        try:
            node = self._client.get_node_from_key(route).name
        except Exception:  # topology not known yet (a node down at start-up): the shared breaker
            return self._breaker
        breaker = self._node_breakers.get(node)
        if breaker is None:
            breaker = self._node_breakers.setdefault(node, CircuitBreaker(f"{self._name} node {node}",
                                                                          self._breaker.cooldown_s))
        return breaker

    def _breakers(self) -> list[CircuitBreaker]:
        return [self._breaker, *self._node_breakers.values()]

    @staticmethod
    def _connect(url: str, timeout_s: float) -> Any:
        from redis.backoff import NoBackoff
        from redis.cluster import ClusterNode, RedisCluster
        from redis.retry import Retry

        parts = urlsplit(url.replace("redis-cluster://", "redis://", 1))
        hosts = parts.netloc.rsplit("@", 1)[-1]
        nodes = []
        for host_port in hosts.split(","):
            host, _, port = host_port.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"bad redis-cluster URL {redact_url(url)!r}: use redis-cluster://host:port[,host:port…]")
            nodes.append(ClusterNode(host, int(port)))  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        # One retry (after a topology refresh, e.g. a MOVED): during a failover a slot's requests should
        # fall back at once (the fallback chain takes over), not wait out ten rounds of refreshes.
        return RedisCluster(startup_nodes=nodes, password=parts.password, username=parts.username,
                            socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                            retry=Retry(NoBackoff(), 1), require_full_coverage=False)

    def set_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """MSET per slot, all slots of a node in one pipeline (keys of one user share a slot)."""
        if items:
            self._call(self._client.mset_nonatomic, dict(items))

    def _scan(self, prefix: str) -> Any:
        return self._client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=5000,
                                      target_nodes=self._client.PRIMARIES)

    def expire_prefix(self, prefix: str, ttl_ms: int) -> int:
        def run() -> int:
            keys = self._client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=5000,
                                          target_nodes=self._client.PRIMARIES)
            return _expire_keys(self._client.pipeline(), keys, ttl_ms, self.scan_batch)
        return self._call(run)
