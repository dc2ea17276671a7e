"""Versioned candidate lists with an atomic pointer flip (DESIGN.md §4).

A refresh writes every key of a new version through a `VersionWriter`, then `publish` flips one
pointer key: a reader resolves the pointer and reads only that version, so a refresh that dies half
way never serves a half-written set. Superseded versions expire after a grace period.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from recsys.errors import NoVersionPublishedError, PublishAbortedError
from recsys.store.backend import KVBackend
from recsys.store.keys import LAYOUT_VERSION, Keys

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int], None]
# A staging version older than this that is not current was abandoned by a refresh that died; a
# running refresh registers its version seconds before writing.
STAGING_ABANDONED_AFTER_S = 60.0


def new_version_id() -> str:
    """UTC timestamp to the millisecond: sortable, short (keys stay small), unique per refresh."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}"


class VersionWriter:
    """Writes one version's keys; nothing is visible to readers until `CandidateVersions.publish`."""

    def __init__(self, backend: KVBackend, keys: Keys, version: str) -> None:
        self._backend = backend
        self._keys = keys
        self.version = version
        self.users_written = 0

    def write_users(self, user_ids: Sequence[str], candidate_blobs: Sequence[bytes],
                    history_blobs: Sequence[bytes] | None = None, *,
                    progress: ProgressCallback | None = None) -> None:
        """One batch of users (one MSET / one transaction): the caller sizes the batch."""
        items = [(self._keys.candidates(self.version, u), blob)
                 for u, blob in zip(user_ids, candidate_blobs, strict=True)]
        if history_blobs is not None:
            items.extend((self._keys.history(self.version, u), blob)
                         for u, blob in zip(user_ids, history_blobs, strict=True))
        self._backend.set_many(items)
        self.users_written += len(user_ids)
        if progress is not None:
            progress(len(user_ids))

    def write_items(self, item_ids: Sequence[str]) -> None:
        self._backend.set(self._keys.items(self.version), "\n".join(item_ids).encode())

    def write_meta(self, meta: dict[str, object]) -> None:
        body = {"layout": LAYOUT_VERSION, "version": self.version, "users": self.users_written, **meta}
        self._backend.set(self._keys.meta(self.version), json.dumps(body).encode())


class CandidateVersions:
    """The versions list, the pointer, and each version's meta and item ids."""

    def __init__(self, backend: KVBackend, keys: Keys, *, grace_seconds: int = 3600) -> None:
        self._backend = backend
        self._keys = keys
        self.grace_seconds = grace_seconds

    # ---- pointer and versions ----------------------------------------------------------------
    def current_version(self) -> str | None:
        raw = self._backend.get(self._keys.pointer)
        return raw.decode("utf-8", "replace") if raw else None  # garbage names no bundle: reported, not raised

    def require_version(self) -> str:
        version = self.current_version()
        if version is None:
            raise NoVersionPublishedError("no candidate version published yet: run `recsys refresh --data PATH`")
        return version

    def versions(self) -> list[dict[str, Any]]:
        raw = self._backend.get(self._keys.versions)
        return json.loads(raw) if raw else []

    def _save_versions(self, versions: list[dict[str, Any]], *, keep: int = 50) -> None:
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
        self._backend.set(self._keys.versions, json.dumps(kept).encode())

    def meta(self, version: str) -> dict[str, Any] | None:
        raw = self._backend.get(self._keys.meta(version))
        return json.loads(raw) if raw else None

    def item_ids(self, version: str) -> list[str]:
        raw = self._backend.get(self._keys.items(version))
        return raw.decode().split("\n") if raw else []

    # ---- writing a version ---------------------------------------------------------------------
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
        return VersionWriter(self._backend, self._keys, version)

    def join(self, version: str) -> VersionWriter:
        """A writer for a staging version `begin` registered elsewhere: a Spark partition writes its users
        into the driver's version. Registers nothing and collects no garbage (the driver did both)."""
        return VersionWriter(self._backend, self._keys, version)

    def publish(self, version: str) -> None:
        """Flip the pointer to `version` in one write, then expire what it superseded."""
        if self.meta(version) is None:
            raise PublishAbortedError(f"version {version} has no meta key: its write did not complete")
        previous = self.current_version()
        self._backend.set(self._keys.pointer, version.encode())
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
        kept, touched = [], 0
        grace_ms = self.grace_seconds * 1000
        now = time.time()
        for v in self.versions():
            name = str(v["version"])
            prefix = self._keys.version_prefix(name)
            if name == current:
                kept.append(v)
            elif v["state"] == "superseded":
                if not v.get("expiry_set"):
                    touched += self._backend.expire_prefix(prefix, grace_ms)
                    v["expiry_set"] = True
                if now - float(v.get("superseded_at", now)) < self.grace_seconds:
                    kept.append(v)
            elif v["state"] == "staging" and now - float(v.get("started_at", now)) > STAGING_ABANDONED_AFTER_S:
                touched += self._backend.expire_prefix(prefix, 0)
            else:
                kept.append(v)
        self._save_versions(kept)
        return touched

    def abandon(self, version: str) -> None:
        """Remove a version that failed before publish (the pointer never pointed at it)."""
        if version == self.current_version():
            return
        self._backend.expire_prefix(self._keys.version_prefix(version), 0)
        self._save_versions([v for v in self.versions() if v["version"] != version])

    # ---- between refreshes: the micro-batch update and forgetting ---------------------------------
    def update_users(self, version: str, user_ids: Sequence[str], candidate_blobs: Sequence[bytes],
                     history_blobs: Sequence[bytes]) -> bool:
        """Replace users' candidates and history inside a published version (the micro-batch update).

        One MSET / one transaction for the batch, so each user's two keys change together. Returns False
        (and removes what it wrote) when `version` stopped being the published one meanwhile: the garbage
        collector may already have given the superseded version's keys their expiry, and keys written
        after that would never expire.
        """
        items = [(self._keys.candidates(version, u), c) for u, c in zip(user_ids, candidate_blobs, strict=True)]
        items += [(self._keys.history(version, u), h) for u, h in zip(user_ids, history_blobs, strict=True)]
        if not items:
            return True
        self._backend.set_many(items)
        if self.current_version() != version:
            self._backend.delete(*(k for k, _ in items))
            log.warning("event=update_discarded version=%s users=%d reason=superseded", version, len(user_ids))
            return False
        return True

    def updated_through(self, version: str) -> str | None:
        """Id of the newest lake event folded into `version` by the update (None: none yet)."""
        raw = self._backend.get(self._keys.updated_through(version))
        return raw.decode() if raw else None

    def set_updated_through(self, version: str, log_id: str) -> None:
        self._backend.set(self._keys.updated_through(version), log_id.encode())

    def forget_user(self, user_id: str) -> None:
        """Delete the user's candidates and history in every version the store knows."""
        names = {str(v["version"]) for v in self.versions()}
        current = self.current_version()
        if current is not None:
            names.add(current)
        keys = [k for v in sorted(names) for k in (self._keys.candidates(v, user_id), self._keys.history(v, user_id))]
        if keys:
            self._backend.delete(*keys)

    def version_keys_present(self, keys_found: Sequence[str]) -> set[str]:
        """Versions named by `keys_found` (e.g. a SCAN of the store) that neither the pointer nor the
        versions list knows: orphans that nothing would ever collect."""
        prefix = f"{self._keys.ns}:v:"
        present = {k[len(prefix):].split(":", 1)[0] for k in keys_found if k.startswith(prefix)}
        known = {str(v["version"]) for v in self.versions()}
        current = self.current_version()
        if current is not None:
            known.add(current)
        return present - known
