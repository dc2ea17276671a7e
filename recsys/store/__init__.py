"""Candidate and session store: one layout, Redis or embedded backend chosen by URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recsys.errors import ConfigError
from recsys.store.backend import KVBackend
from recsys.store.candidate_store import CandidateStore, SessionEvent, UserRecord, VersionWriter

if TYPE_CHECKING:
    from recsys.config import Settings

__all__ = ["CandidateStore", "KVBackend", "SessionEvent", "UserRecord", "VersionWriter", "open_backend",
           "open_store",
           "store_from_settings"]


def open_backend(url: str, *, batch_size: int = 2000, breaker_cooldown_s: float = 1.0) -> KVBackend:
    """`redis://…`/`rediss://…` for Redis, `embedded://PATH` or `embedded://:memory:` for SQLite."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from recsys.store.redis_backend import RedisBackend

        return RedisBackend(url, batch_size=batch_size, breaker_cooldown_s=breaker_cooldown_s)
    if url.startswith("embedded://"):
        from recsys.store.embedded_backend import EmbeddedBackend

        path = url[len("embedded://"):] or "data/artifacts/store.sqlite"
        return EmbeddedBackend(url, path=path)
    raise ConfigError(f"unsupported store URL {url!r}: use redis://host:port/db or embedded://PATH")


def store_from_settings(settings: Settings) -> CandidateStore:
    """The store the process's Settings describe (URL, namespace, grace period, batch size)."""
    return open_store(settings.store_url, namespace=settings.store_namespace,
                      grace_seconds=settings.version_grace_seconds, batch_size=settings.publish_batch_size,
                      breaker_cooldown_s=settings.store_breaker_cooldown_seconds)


def open_store(url: str, *, namespace: str = "recsys", grace_seconds: int = 3600,
               batch_size: int = 2000, breaker_cooldown_s: float = 1.0) -> CandidateStore:
    return CandidateStore(open_backend(url, batch_size=batch_size, breaker_cooldown_s=breaker_cooldown_s),
                          namespace=namespace, grace_seconds=grace_seconds)
