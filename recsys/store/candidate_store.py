"""CandidateStore: versioned candidate lists with an atomic pointer flip, sessions and job locks.

Written once on top of KVBackend, so Redis and the embedded file behave the same (contract tests).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from recsys.errors import NoVersionPublishedError, PublishAbortedError
from recsys.store.backend import KVBackend
from recsys.store.codec import decode_candidates, decode_indices
from recsys.store.keys import LAYOUT_VERSION, Keys

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class SessionEvent:
    item_id: str
    event: str
    timestamp: float

    def encode(self) -> bytes:
        return f"{self.item_id}\t{self.event}\t{self.timestamp:.3f}".encode()

    @classmethod
    def decode(cls, raw: bytes) -> SessionEvent:
        item, event, ts = raw.decode().split("\t")
        return cls(item, event, float(ts))


@dataclass
class UserRecord:
    """What the online path reads for one user in one round trip."""

    candidates: tuple[np.ndarray, np.ndarray, int] | None  # (item indices, scores, n_primary)
    history: np.ndarray | None
    session: list[SessionEvent]
    # The published pointer, read in the same round trip: None when the store has lost it (restarted
    # empty), so a miss can be told apart from an unknown user without a second request.
    published: str | None = None


def new_version_id() -> str:
    """UTC timestamp to the millisecond: sortable, short (keys stay small), unique per refresh."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}"


class VersionWriter:
    """Writes one version's keys; nothing is visible to readers until CandidateStore.publish."""

    def __init__(self, store: CandidateStore, version: str) -> None:
        self.store = store
        self.version = version
        self.users_written = 0

    def write_users(self, user_ids: Sequence[str], candidate_blobs: Sequence[bytes],
                    history_blobs: Sequence[bytes] | None = None, *, batch_size: int = 2000,
                    progress: ProgressCallback | None = None) -> None:
        keys = self.store.keys
        for start in range(0, len(user_ids), batch_size):
            stop = min(start + batch_size, len(user_ids))
            items: list[tuple[str, bytes]] = [
                (keys.candidates(self.version, user_ids[i]), candidate_blobs[i]) for i in range(start, stop)]
            if history_blobs is not None:
                items.extend((keys.history(self.version, user_ids[i]), history_blobs[i])
                             for i in range(start, stop))
            self.store.backend.set_many(items)
            self.users_written += stop - start
            if progress is not None:
                progress(stop - start)

    def write_items(self, item_ids: Sequence[str]) -> None:
        self.store.backend.set(self.store.keys.items(self.version), "\n".join(item_ids).encode())

    def write_meta(self, meta: dict[str, object]) -> None:
        body = {"layout": LAYOUT_VERSION, "version": self.version, "users": self.users_written, **meta}
        self.store.backend.set(self.store.keys.meta(self.version), json.dumps(body).encode())


class CandidateStore:
    """The candidate and session store of DESIGN.md §4 over any KVBackend."""

    def __init__(self, backend: KVBackend, *, namespace: str = "recsys", grace_seconds: int = 3600) -> None:
        self.backend = backend
        self.keys = Keys(namespace)
        self.grace_seconds = grace_seconds

    # ---- versions -------------------------------------------------------------------------
    def current_version(self) -> str | None:
        raw = self.backend.get(self.keys.pointer)
        return raw.decode() if raw else None

    def require_version(self) -> str:
        version = self.current_version()
        if version is None:
            raise NoVersionPublishedError("no candidate version published yet: run `recsys refresh --data PATH`")
        return version

    def versions(self) -> list[dict[str, object]]:
        raw = self.backend.get(self.keys.versions)
        return json.loads(raw) if raw else []

    def _save_versions(self, versions: list[dict[str, object]], *, keep: int = 50) -> None:
        """Save the list, trimmed to `keep` entries: the oldest go first, but never the live version.

        An entry that falls off the list is never garbage-collected (its keys have no TTL), and the
        live one also tells the bundle pruner what to keep; trimming must not drop it, however many
        refreshes died before publishing.
        """
        current = self.current_version()
        live = [v for v in versions if v["version"] == current]
        others = [v for v in versions if v["version"] != current]
        trimmed = others[-(keep - len(live)):] if keep > len(live) else []
        chosen = {id(v) for v in live + trimmed}
        kept = [v for v in versions if id(v) in chosen]  # in their original order
        self.backend.set(self.keys.versions, json.dumps(kept).encode())

    def begin(self, version: str | None = None) -> VersionWriter:
        """Register a staging version (so a crashed write is cleaned up later) and return its writer.

        Collects garbage first: staging versions left by refreshes that died before publishing are
        removed by the next refresh that starts, not only by the next one that succeeds.
        """
        version = version or new_version_id()
        self.collect_garbage()
        versions = [v for v in self.versions() if v["version"] != version]
        versions.append({"version": version, "state": "staging", "started_at": time.time()})
        self._save_versions(versions)
        return VersionWriter(self, version)

    def meta(self, version: str) -> dict[str, object] | None:
        raw = self.backend.get(self.keys.meta(version))
        return json.loads(raw) if raw else None

    def item_ids(self, version: str) -> list[str]:
        raw = self.backend.get(self.keys.items(version))
        return raw.decode().split("\n") if raw else []

    def publish(self, version: str) -> None:
        """Flip the pointer to `version` in one write, then expire what it superseded."""
        if self.meta(version) is None:
            raise PublishAbortedError(f"version {version} has no meta key: its write did not complete")
        previous = self.current_version()
        self.backend.set(self.keys.pointer, version.encode())
        now = time.time()
        versions = self.versions()
        for v in versions:
            if v["version"] == version:
                v["state"], v["published_at"] = "live", now
            elif v["state"] == "live":
                v["state"], v["superseded_at"] = "superseded", now
        self._save_versions(versions)
        log.info("event=version_published version=%s previous=%s", version, previous)
        self.collect_garbage()

    def collect_garbage(self) -> int:
        """Expire superseded versions after the grace period; delete abandoned staging writes."""
        current = self.current_version()
        versions, kept, touched = self.versions(), [], 0
        grace_ms = self.grace_seconds * 1000
        now = time.time()
        for v in versions:
            name = str(v["version"])
            prefix = self.keys.version_prefix(name)
            if name == current:
                kept.append(v)
            elif v["state"] == "superseded":
                if not v.get("expiry_set"):
                    touched += self.backend.expire_prefix(prefix, grace_ms)
                    v["expiry_set"] = True
                if now - float(v.get("superseded_at", now)) < self.grace_seconds:
                    kept.append(v)
            elif v["state"] == "staging" and now - float(v.get("started_at", now)) > 60:
                # A staging version older than a minute that is not current was abandoned by a
                # refresh that died; a running refresh registers its version seconds before writing.
                touched += self.backend.expire_prefix(prefix, 0)
            else:
                kept.append(v)
        self._save_versions(kept)
        return touched

    def abandon(self, version: str) -> None:
        """Remove a version that failed before publish (the pointer never pointed at it)."""
        if version == self.current_version():
            return
        self.backend.expire_prefix(self.keys.version_prefix(version), 0)
        self._save_versions([v for v in self.versions() if v["version"] != version])

    # ---- reads ----------------------------------------------------------------------------
    def read_user(self, version: str, user_id: str, *, with_session: bool = True) -> UserRecord:
        """Candidates + history + live session of one user (and the pointer) in a single round trip."""
        (cand, hist, pointer), session = self.backend.read_user(
            [self.keys.candidates(version, user_id), self.keys.history(version, user_id), self.keys.pointer],
            self.keys.session(user_id) if with_session else None)
        return UserRecord(
            candidates=decode_candidates(cand) if cand else None,
            history=decode_indices(hist) if hist else None,
            session=[SessionEvent.decode(raw) for raw in session],
            published=pointer.decode() if pointer else None,
        )

    # ---- sessions -------------------------------------------------------------------------
    def append_session(self, user_id: str, events: Iterable[SessionEvent], *, max_events: int,
                       ttl_seconds: int) -> None:
        payload = [e.encode() for e in events]
        if payload:
            self.backend.list_append(self.keys.session(user_id), payload, max_events, ttl_seconds * 1000)

    def session(self, user_id: str) -> list[SessionEvent]:
        return [SessionEvent.decode(raw) for raw in self.backend.list_range(self.keys.session(user_id))]

    # ---- job locks ------------------------------------------------------------------------
    def acquire_lock(self, name: str, ttl_seconds: float) -> str | None:
        token = secrets.token_hex(8)
        ok = self.backend.set_if_absent(self.keys.lock(name), token.encode(), int(ttl_seconds * 1000))
        return token if ok else None

    def renew_lock(self, name: str, token: str, ttl_seconds: float) -> bool:
        return self.backend.compare_and_expire(self.keys.lock(name), token.encode(), int(ttl_seconds * 1000))

    def release_lock(self, name: str, token: str) -> bool:
        return self.backend.compare_and_delete(self.keys.lock(name), token.encode())

    def ping(self) -> bool:
        return self.backend.ping()

    def close(self) -> None:
        self.backend.close()
