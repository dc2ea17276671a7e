"""Is a published candidate version complete and readable? (after a crash, in the kill benchmark)

The atomic pointer flip promises that readers only ever see a version whose every key was written.
This checks the promise from the outside, as a reader would: the pointer resolves, the meta and item
keys are there and agree with each other, every expected user has a decodable candidate list and
history whose indices lie inside the catalogue, and the item-side bundle on disk loads with its
checksums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recsys.bundle import ItemBundle, bundles_dir
from recsys.errors import ArtifactError, RecsysError
from recsys.store.candidate_store import CandidateStore
from recsys.store.codec import decode_candidates, decode_indices
from recsys.store.keys import LAYOUT_VERSION


@dataclass
class VersionCheck:
    version: str | None
    users_expected: int
    users_ok: int = 0
    items: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, message: str, limit: int = 20) -> None:
        if len(self.problems) < limit:
            self.problems.append(message)


def check_version(store: CandidateStore, artifacts_dir: Path, user_ids: Sequence[str], *,
                  version: str | None = None, batch_size: int = 5000) -> VersionCheck:
    """Check the published (or the given) version against the users it must hold. Never raises on bad data."""
    version = version or store.current_version()
    check = VersionCheck(version, len(user_ids))
    if version is None:
        check.problem("no version published")
        return check
    meta = store.meta(version)
    if meta is None:
        check.problem(f"version {version}: meta key missing")
        return check
    if meta.get("layout") != LAYOUT_VERSION or meta.get("version") != version:
        check.problem(f"version {version}: meta names layout={meta.get('layout')} version={meta.get('version')}")
    if meta.get("users") != len(user_ids):
        check.problem(f"version {version}: meta counts {meta.get('users')} users, expected {len(user_ids)}")
    item_ids = store.item_ids(version)
    check.items = len(item_ids)
    if not item_ids or meta.get("items") != len(item_ids):
        check.problem(f"version {version}: {len(item_ids)} item ids stored, meta says {meta.get('items')}")
    n_items = len(item_ids)
    for start in range(0, len(user_ids), batch_size):
        chunk = list(user_ids[start:start + batch_size])
        keys = [k for u in chunk for k in (store.keys.candidates(version, u), store.keys.history(version, u))]
        values, _ = store.backend.read_user(keys, None)
        for i, user in enumerate(chunk):
            cand_blob, hist_blob = values[2 * i], values[2 * i + 1]
            if cand_blob is None or hist_blob is None:
                check.problem(f"user {user!r}: {'candidates' if cand_blob is None else 'history'} key missing")
                continue
            try:
                idx, scores, n_primary = decode_candidates(cand_blob)
                hist = decode_indices(hist_blob)
            except ArtifactError as exc:
                check.problem(f"user {user!r}: undecodable value: {exc}")
                continue
            if idx.size == 0 or n_primary > idx.size or not np.all(np.isfinite(scores)) \
                    or (idx.size and int(idx.max()) >= n_items) or (hist.size and int(hist.max()) >= n_items):
                check.problem(f"user {user!r}: candidate list inconsistent with {n_items} items")
                continue
            check.users_ok += 1
    try:
        bundle = ItemBundle.load(bundles_dir(artifacts_dir) / version, verify=True)
        if bundle.item_ids != item_ids:
            check.problem(f"bundle {version}: item ids differ from the store's")
    except (RecsysError, OSError, ValueError) as exc:
        check.problem(f"bundle {version}: does not load: {exc}")
    return check


def orphaned_versions(store: CandidateStore, scan_keys: Sequence[str]) -> set[str]:
    """Versions with keys in the store that neither the pointer nor the versions list knows (never collected)."""
    prefix = f"{store.keys.ns}:v:"
    present = {k[len(prefix):].split(":", 1)[0] for k in scan_keys if k.startswith(prefix)}
    known = {str(v["version"]) for v in store.versions()}
    current = store.current_version()
    if current is not None:
        known.add(current)
    return present - known
