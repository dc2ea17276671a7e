"""Artifacts: the registry of bundles and ranker models, their manifests, pointers, promote and rollback."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from recsys.artifacts.manifests import BundleManifest, ModelManifest
from recsys.artifacts.registry import ArtifactRegistry
from recsys.artifacts.storage import ArtifactStorage, FileStorage

if TYPE_CHECKING:
    from recsys.config import Settings
    from recsys.store import Store

__all__ = ["ArtifactRegistry", "ArtifactStorage", "BundleManifest", "FileStorage", "ModelManifest",
           "artifacts_in_store", "open_registry", "registry_for"]


def open_registry(artifacts_dir: Path) -> ArtifactRegistry:
    """The registry over an artifacts directory (files)."""
    return ArtifactRegistry(FileStorage(artifacts_dir))


def artifacts_in_store(settings: Settings) -> bool:
    """`RECSYS_ARTIFACTS_STORAGE`: auto keeps artifacts in the store whenever the store is a server."""
    if settings.artifacts_storage == "auto":
        return not settings.store_url.startswith("embedded://")
    return settings.artifacts_storage == "store"


def registry_for(settings: Settings, store: Store | None = None) -> ArtifactRegistry:
    """The registry the process's settings describe: the store's (`store`, or one opened from the
    settings) when artifacts live in the store, else the files under `artifacts_dir`."""
    if artifacts_in_store(settings):
        from recsys.store import store_from_settings

        return ArtifactRegistry((store or store_from_settings(settings)).artifacts)
    return open_registry(settings.artifacts_dir)
