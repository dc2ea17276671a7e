"""Is a published version whole, as readers see it: the store's keys and the item-side bundle together.

Used after crashes (the kill benchmark and its test): the store side is checked by
`recsys.store.integrity.check_version`, the bundle by the artifact registry (checksums, and the same
item ids in the same order as the store's).
"""

from __future__ import annotations

from collections.abc import Sequence

from recsys.artifacts import ArtifactRegistry
from recsys.candidates.bundle import ItemBundle
from recsys.errors import RecsysError
from recsys.store import Store
from recsys.store.integrity import VersionCheck, check_version


def verify_published(store: Store, registry: ArtifactRegistry, user_ids: Sequence[str], *,
                     version: str | None = None) -> VersionCheck:
    """Check the published (or the given) version; never raises on bad data (problems are listed)."""
    check = check_version(store, user_ids, version=version)
    if check.version is None:
        return check
    try:
        bundle = ItemBundle.load(registry, check.version, with_index=False)
        if bundle.item_ids != check.item_ids:
            check.problem(f"bundle {check.version}: item ids differ from the store's")
    except (RecsysError, OSError, ValueError) as exc:
        check.problem(f"bundle {check.version}: does not load: {exc}")
    return check
