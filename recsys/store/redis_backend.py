"""Redis backend: pipelined writes, one round trip per online read, Lua for compare-and-set."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain, islice

import redis

from recsys.errors import StoreUnavailableError

_CAS_DELETE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_CAS_EXPIRE = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
               "else return 0 end")


class RedisBackend:
    """`redis://host:port/db`. Short timeouts so an outage turns into a fallback, not a hang."""

    def __init__(self, url: str, *, timeout_s: float = 0.5, batch_size: int = 2000) -> None:
        self.url = url
        self.batch_size = batch_size
        self._client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                            health_check_interval=0)
        self._cas_delete = self._client.register_script(_CAS_DELETE)
        self._cas_expire = self._client.register_script(_CAS_EXPIRE)

    def _call(self, fn, *args):  # type: ignore[no-untyped-def]
        try:
            return fn(*args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailableError(f"redis at {self.url} unavailable: {exc}") from exc

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    def get(self, key: str) -> bytes | None:
        return self._call(self._client.get, key)

    def set(self, key: str, value: bytes, ttl_ms: int | None = None) -> None:
        self._call(lambda: self._client.set(key, value, px=ttl_ms))

    def set_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        """One MSET per batch: a single command instead of a pipeline of SETs (~3x fewer client cycles)."""
        it = iter(items)
        while batch := list(islice(it, self.batch_size)):
            self._call(self._client.execute_command, "MSET", *chain.from_iterable(batch))

    def delete(self, *keys: str) -> None:
        if keys:
            self._call(self._client.delete, *keys)

    def set_if_absent(self, key: str, value: bytes, ttl_ms: int) -> bool:
        return bool(self._call(lambda: self._client.set(key, value, nx=True, px=ttl_ms)))

    def compare_and_delete(self, key: str, value: bytes) -> bool:
        return bool(self._call(lambda: self._cas_delete(keys=[key], args=[value])))

    def compare_and_expire(self, key: str, value: bytes, ttl_ms: int) -> bool:
        return bool(self._call(lambda: self._cas_expire(keys=[key], args=[value, ttl_ms])))

    def expire_prefix(self, prefix: str, ttl_ms: int) -> int:
        def run() -> int:
            n = 0
            pipe = self._client.pipeline(transaction=False)
            for key in self._client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=5000):
                if ttl_ms <= 0:
                    pipe.unlink(key)
                else:
                    pipe.pexpire(key, ttl_ms)
                n += 1
                if n % self.batch_size == 0:
                    pipe.execute()
            pipe.execute()
            return n
        return self._call(run)

    def list_append(self, key: str, values: list[bytes], max_len: int, ttl_ms: int | None) -> None:
        def run() -> None:
            pipe = self._client.pipeline(transaction=True)
            pipe.rpush(key, *values)
            pipe.ltrim(key, -max_len, -1)
            if ttl_ms:
                pipe.pexpire(key, ttl_ms)
            pipe.execute()
        self._call(run)

    def list_range(self, key: str) -> list[bytes]:
        return self._call(self._client.lrange, key, 0, -1)

    def read_user(self, keys: list[str], list_key: str | None) -> tuple[list[bytes | None], list[bytes]]:
        def run() -> tuple[list[bytes | None], list[bytes]]:
            pipe = self._client.pipeline(transaction=False)
            for k in keys:
                pipe.get(k)
            if list_key is not None:
                pipe.lrange(list_key, 0, -1)
            out = pipe.execute()
            return out[:len(keys)], (out[len(keys)] if list_key is not None else [])
        return self._call(run)

    def memory_usage(self, key: str) -> int | None:
        return self._call(lambda: self._client.memory_usage(key, samples=0))

    def flush_prefix(self, prefix: str) -> int:
        """Delete every key under `prefix` (tests, `recsys store wipe`)."""
        return self.expire_prefix(prefix, 0)

    def close(self) -> None:
        self._client.close()
