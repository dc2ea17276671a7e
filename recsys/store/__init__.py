"""The store: one key layout (keys.py) over a byte-only backend chosen by URL, reached through domain stores.

    store = open_store("redis://127.0.0.1:6379/0")   # or embedded://PATH (default), embedded://:memory:
    store.candidates   versions, pointer flip, meta and item ids        (candidates.py)
    store.sessions     live sessions                                    (sessions.py)
    store.feature_log  sampled served feature rows                      (feature_log.py)
    store.jobs         job history                                      (job_history.py)
    store.locks        job locks                                        (locks.py)
    store.event_log    event and impression logs, their acks, forget requests (event_log.py)
    store.artifacts    bundles and models, chunked (an ArtifactStorage) (artifact_files.py)
    store.catalogue    the item catalogue and its version counter       (catalogue.py)
    store.experiments  experiment definitions (experiments.py)
    store.read_user    the serving read: the user's value (candidates, user vector, history) + session +
                       pointer, one round trip

Nothing outside this package touches a backend or a key: a new use of the store is a named method
here, so the layout stays written down in one place and every backend keeps the same contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from recsys.errors import ConfigError, CorruptValueError
from recsys.store.artifact_files import ArtifactFiles
from recsys.store.backend import BreakerStats, KVBackend
from recsys.store.candidates import CandidateVersions, VersionWriter, new_version_id
from recsys.store.catalogue import CatalogueSnapshot, CatalogueStore, parse_catalogue_version
from recsys.store.codec import decode_user
from recsys.store.event_log import DEFAULT_MAX_LEN, EVENTS, IMPRESSIONS, STREAMS, EventLogStore, LogState
from recsys.store.experiments import ExperimentStore
from recsys.store.feature_log import FeatureLogStore
from recsys.store.item_record import AVAILABILITY, AVAILABLE, HIDDEN, AttributeValue, ItemRecord
from recsys.store.job_history import JobHistory, JobRun
from recsys.store.keys import Keys
from recsys.store.locks import LockStore
from recsys.store.sessions import SessionEvent, SessionStore, decode_session

if TYPE_CHECKING:
    from recsys.config import Settings

__all__ = ["AVAILABILITY", "AVAILABLE", "EVENTS", "HIDDEN", "IMPRESSIONS", "STREAMS", "AttributeValue", "BreakerStats",
           "CandidateVersions", "CatalogueSnapshot", "CatalogueStore", "EventLogStore", "ExperimentStore", "ItemRecord",
           "JobRun", "LogState", "SessionEvent", "Store", "UserRecord", "VersionWriter", "new_version_id",
           "open_backend", "open_store", "store_from_settings"]


@dataclass
class UserRecord:
    """What the online path reads for one user in one round trip."""

    # (item indices, ALS user vector, n_primary): the ALS scores are item_factors[indices] @ vector
    # (`CachedList.scores`), recomputed by the reader exactly as ranker training does.
    candidates: tuple[np.ndarray, np.ndarray, int] | None
    history: np.ndarray | None
    session: list[SessionEvent]
    # The published pointer, read in the same round trip: None when the store has lost it (restarted
    # empty), so a miss can be told apart from an unknown user without a second request. On a Redis
    # Cluster the pointer lives in another slot and is not read here (`pointer_read` False): the reload
    # poller's copy, at most one poll interval old, decides instead.
    published: str | None = None
    pointer_read: bool = True
    # (key, why) when the user's value did not decode: then candidates and history are None, and the
    # user is served by the fallback chain.
    corrupt: tuple[str, str] | None = None
    # Why each malformed session entry was skipped (the well-formed ones are in `session`).
    session_skipped: list[str] = field(default_factory=list)
    session_key: str = ""
    # The catalogue version counter, read in the same round trip (None when not read: on a cluster it
    # lives in another slot and the service reads it apart).
    catalogue_version: int | None = None


class Store:
    """Every domain store over one backend and one namespace."""

    def __init__(self, backend: KVBackend, *, namespace: str = "recsys", grace_seconds: int = 3600,
                 session_max_events: int = 50, session_ttl_seconds: int = 1800,
                 job_history_max_runs: int = 1000, event_log_max_len: int = DEFAULT_MAX_LEN) -> None:
        self._backend = backend
        self._keys = Keys(namespace)
        self.candidates = CandidateVersions(backend, self._keys, grace_seconds=grace_seconds)
        self.sessions = SessionStore(backend, self._keys, max_events=session_max_events,
                                     ttl_seconds=session_ttl_seconds)
        self.feature_log = FeatureLogStore(backend, self._keys)
        self.locks = LockStore(backend, self._keys)
        self.jobs = JobHistory(backend, self._keys, self.locks, max_runs=job_history_max_runs)
        self.event_log = EventLogStore(backend, self._keys, max_len=event_log_max_len)
        self.artifacts = ArtifactFiles(backend, namespace)
        self.catalogue = CatalogueStore(backend, self._keys, self.locks)
        self.experiments = ExperimentStore(backend, self._keys, self.locks)

    @property
    def url(self) -> str:
        return self._backend.url

    @property
    def namespace(self) -> str:
        return self._keys.ns

    def read_user(self, version: str, user_id: str, *, with_session: bool = True,
                  n_items: int | None = None) -> UserRecord:
        """The user's value (candidates + user vector + history), live session and the pointer in a single
        round trip.

        Never trusts the bytes: the value is decoded and checked (item indices below `n_items`, the
        serving catalogue's size); what does not decode is reported in `corrupt`, never raised.
        """
        keys = self._keys
        user_key, session_key = keys.user(version, user_id), keys.session(user_id)
        wanted = [user_key]
        with_pointer = not self._backend.clustered
        if with_pointer:
            wanted += [keys.pointer, keys.catalogue_version]
        values, lists = self._backend.fetch(wanted, [session_key] if with_session else [])
        blob = values[0]
        pointer = values[1] if with_pointer else None
        catalogue_version = parse_catalogue_version(values[2]) if with_pointer else None
        corrupt: tuple[str, str] | None = None
        candidates: tuple[np.ndarray, np.ndarray, int] | None = None
        history: np.ndarray | None = None
        if blob is not None:
            try:
                value = decode_user(blob, n_items)
                candidates = (value.candidates, value.user_vector, value.n_primary)
                history = value.history
            except CorruptValueError as exc:
                corrupt = (user_key, str(exc))
        session, skipped = decode_session(lists[0]) if lists else ([], [])
        return UserRecord(candidates=candidates, history=history, session=session,
                          published=pointer.decode("utf-8", "replace") if pointer else None,
                          pointer_read=with_pointer, corrupt=corrupt, session_skipped=skipped,
                          session_key=session_key, catalogue_version=catalogue_version)

    def read_user_blobs(self, version: str, user_ids: list[str]) -> list[bytes | None]:
        """Raw values of many users in one round trip, undecoded (integrity checks, the update)."""
        values, _ = self._backend.fetch([self._keys.user(version, u) for u in user_ids], [])
        return values

    def scan_all(self) -> list[tuple[str, bytes]]:
        """Every key of this namespace with its raw value(s) concatenated (tests: "is X stored anywhere?").

        Not for serving: it walks the whole namespace. Lists and logs come back as the join of their items.
        """
        return self._backend.dump_prefix(f"{self._keys.ns}:")

    def ping(self) -> bool:
        return self._backend.ping()

    def breaker(self) -> BreakerStats | None:
        return self._backend.breaker()

    def wipe(self) -> int:
        """Delete every key of this namespace (tests, benchmarks): returns how many."""
        return self._backend.expire_prefix(f"{self._keys.ns}:", 0)

    def close(self) -> None:
        self._backend.close()


def open_backend(url: str, *, breaker_cooldown_s: float = 1.0) -> KVBackend:
    """`redis://…`/`rediss://…` for Redis, `redis-cluster://host:port,…` for a Redis Cluster,
    `embedded://PATH` or `embedded://:memory:` for SQLite."""
    if url.startswith("redis-cluster://"):
        from recsys.store.redis_backend import RedisClusterBackend

        return RedisClusterBackend(url, breaker_cooldown_s=breaker_cooldown_s)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from recsys.store.redis_backend import RedisBackend

        return RedisBackend(url, breaker_cooldown_s=breaker_cooldown_s)
    if url.startswith("embedded://"):
        from recsys.store.embedded_backend import EmbeddedBackend

        path = url[len("embedded://"):] or "data/artifacts/store.sqlite"
        return EmbeddedBackend(url, path=path)
    raise ConfigError(f"unsupported store URL {url!r}: use redis://host:port/db, "
                      "redis-cluster://host:port[,host:port…] or embedded://PATH")


def open_store(url: str, *, namespace: str = "recsys", grace_seconds: int = 3600,
               breaker_cooldown_s: float = 1.0, session_max_events: int = 50, session_ttl_seconds: int = 1800,
               job_history_max_runs: int = 1000, event_log_max_len: int = DEFAULT_MAX_LEN) -> Store:
    return Store(open_backend(url, breaker_cooldown_s=breaker_cooldown_s), namespace=namespace,
                 grace_seconds=grace_seconds, session_max_events=session_max_events,
                 session_ttl_seconds=session_ttl_seconds, job_history_max_runs=job_history_max_runs,
                 event_log_max_len=event_log_max_len)


def store_from_settings(settings: Settings) -> Store:
    """The store the process's Settings describe."""
    return open_store(settings.store_url, namespace=settings.store_namespace,
                      grace_seconds=settings.version_grace_seconds,
                      breaker_cooldown_s=settings.store_breaker_cooldown_seconds,
                      session_max_events=settings.session_max_events,
                      session_ttl_seconds=settings.session_ttl_seconds,
                      job_history_max_runs=settings.scheduler.history_max_runs,
                      event_log_max_len=settings.loop.log_max_len)
