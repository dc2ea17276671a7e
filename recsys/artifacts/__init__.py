"""Artifacts: the registry of bundles and ranker models, their manifests, pointers, promote and rollback."""

from __future__ import annotations

from pathlib import Path

from recsys.artifacts.manifests import BundleManifest, ModelManifest
from recsys.artifacts.registry import ArtifactRegistry
from recsys.artifacts.storage import ArtifactStorage, FileStorage

__all__ = ["ArtifactRegistry", "ArtifactStorage", "BundleManifest", "FileStorage", "ModelManifest", "open_registry"]


def open_registry(artifacts_dir: Path) -> ArtifactRegistry:
    """The registry over the artifacts directory (`RECSYS_ARTIFACTS_DIR`)."""
    return ArtifactRegistry(FileStorage(artifacts_dir))
