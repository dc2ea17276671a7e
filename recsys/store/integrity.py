"""Is a published candidate version complete and readable? (after a crash, in the kill benchmark)

The atomic pointer flip promises that readers only ever see a version whose every key was written.
This checks the promise from the outside, as a reader would: the pointer resolves, the meta and item
keys are there and agree with each other, and every expected user has a decodable value (candidates,
user vector, history) whose indices lie inside the catalogue. (The item-side bundle is the artifact registry's to
check: `ArtifactRegistry.verify_bundle`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from recsys.errors import CorruptValueError
from recsys.store import Store
from recsys.store.codec import decode_user
from recsys.store.keys import LAYOUT_VERSION


@dataclass
class VersionCheck:
    version: str | None
    users_expected: int
    users_ok: int = 0
    items: int = 0
    item_ids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, message: str, limit: int = 20) -> None:
        if len(self.problems) < limit:
            self.problems.append(message)


def check_version(store: Store, user_ids: Sequence[str], *, version: str | None = None,
                  batch_size: int = 5000) -> VersionCheck:
    """Check the published (or the given) version against the users it must hold. Never raises on bad data."""
    versions = store.candidates
    version = version or versions.current_version()
    check = VersionCheck(version, len(user_ids))
    if version is None:
        check.problem("no version published")
        return check
    meta = versions.meta(version)
    if meta is None:
        check.problem(f"version {version}: meta key missing")
        return check
    if meta.get("layout") != LAYOUT_VERSION or meta.get("version") != version:
        check.problem(f"version {version}: meta names layout={meta.get('layout')} version={meta.get('version')}")
    if meta.get("users") != len(user_ids):
        check.problem(f"version {version}: meta counts {meta.get('users')} users, expected {len(user_ids)}")
    item_ids = versions.item_ids(version)
    check.items, check.item_ids = len(item_ids), item_ids
    if not item_ids or meta.get("items") != len(item_ids):
        check.problem(f"version {version}: {len(item_ids)} item ids stored, meta says {meta.get('items')}")
    for start in range(0, len(user_ids), batch_size):
        chunk = list(user_ids[start:start + batch_size])
        for user, blob in zip(chunk, store.read_user_blobs(version, chunk), strict=True):
            _check_user(check, user, blob, len(item_ids))
    return check


def _check_user(check: VersionCheck, user: str, blob: bytes | None, n_items: int) -> None:
    if blob is None:
        check.problem(f"user {user!r}: value missing")
        return
    try:
        value = decode_user(blob, n_items)  # checks indices against the catalogue and a finite user vector
    except CorruptValueError as exc:
        check.problem(f"user {user!r}: undecodable value: {exc}")
        return
    if value.candidates.size == 0:
        check.problem(f"user {user!r}: empty candidate list")
        return
    check.users_ok += 1


def orphaned_versions(store: Store, scan_keys: Sequence[str]) -> set[str]:
    """Versions with keys in the store that neither the pointer nor the versions list knows (never collected)."""
    return store.candidates.version_keys_present(scan_keys)
