"""The artifact registry: the only code that knows where bundles and models live.

Bundles (one per candidate version) and ranker models are versioned sets of files with a typed
manifest that lists each file's sha256; the registry writes a version all at once, verifies
checksums when it reads, keeps the `CURRENT` model pointer, and records every promotion so that a
rollback knows where to go. Storage is behind `ArtifactStorage` (files today; the store later), so
nothing else depends on the layout.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from recsys.artifacts.manifests import BundleManifest, ModelManifest
from recsys.artifacts.storage import ArtifactStorage
from recsys.errors import ArtifactError

log = logging.getLogger(__name__)

BUNDLES = "bundles"
MODELS = "models"
MANIFEST = "manifest.json"
CURRENT = "CURRENT"
PROMOTIONS = "history"  # models/history.jsonl: promotions, newest last


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactRegistry:
    def __init__(self, storage: ArtifactStorage) -> None:
        self.storage = storage

    # ---- generic ---------------------------------------------------------------------------------
    def _save(self, kind: str, version: str, files: Mapping[str, bytes], manifest: dict[str, Any]) -> dict[str, Any]:
        body = {**manifest, "files": {name: sha256(data) for name, data in files.items()}}
        self.storage.put(kind, version, {**files, MANIFEST: json.dumps(body, indent=2).encode()})
        return body

    def _manifest_json(self, kind: str, version: str) -> dict[str, Any]:
        raw = self.storage.get_file(kind, version, MANIFEST)
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ArtifactError(f"{kind[:-1]} {version}: manifest.json is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ArtifactError(f"{kind[:-1]} {version}: manifest.json is not an object")
        return body

    def _file(self, kind: str, version: str, name: str, checksums: Mapping[str, str], *, verify: bool) -> bytes:
        data = self.storage.get_file(kind, version, name)
        expected = checksums.get(name)
        if verify and expected is not None and sha256(data) != expected:
            raise ArtifactError(f"{kind[:-1]} {version}: checksum mismatch for {name} "
                                f"({self.storage.location(kind, version)}): the file changed after it was written")
        return data

    # ---- bundles ---------------------------------------------------------------------------------
    def save_bundle(self, version: str, files: Mapping[str, bytes], manifest: dict[str, Any]) -> BundleManifest:
        return BundleManifest.model_validate(self._save(BUNDLES, version, files, {**manifest, "version": version}))

    def bundle_manifest(self, version: str) -> BundleManifest:
        try:
            return BundleManifest.model_validate(self._manifest_json(BUNDLES, version))
        except ValidationError as exc:
            raise ArtifactError(f"bundle {version}: invalid manifest: {_first_error(exc)}") from exc

    def bundle_files(self, version: str, names: list[str] | None = None, *, verify: bool = True
                     ) -> tuple[BundleManifest, dict[str, bytes]]:
        """The manifest and the named files (all listed files by default), checksums verified."""
        manifest = self.bundle_manifest(version)
        wanted = list(manifest.files) if names is None else names
        return manifest, {n: self._file(BUNDLES, version, n, manifest.files, verify=verify) for n in wanted}

    def verify_bundle(self, version: str) -> None:
        """Raise ArtifactError unless every file of the bundle is present and matches its checksum."""
        self.bundle_files(version, verify=True)

    def bundle_versions(self) -> list[str]:
        return self.storage.versions(BUNDLES)

    def bundle_location(self, version: str) -> str:
        return self.storage.location(BUNDLES, version)

    def delete_bundle(self, version: str) -> None:
        self.storage.delete(BUNDLES, version)

    def prune_bundles(self, keep: set[str], max_kept: int = 5) -> None:
        """Delete old bundles beyond the newest `max_kept`, never one in `keep` (versions still readable)."""
        versions = self.bundle_versions()
        for version in versions[:-max_kept]:
            if version not in keep:
                self.storage.delete(BUNDLES, version)

    # ---- models ----------------------------------------------------------------------------------
    def save_model(self, version: str, files: Mapping[str, bytes], manifest: dict[str, Any]) -> ModelManifest:
        return ModelManifest.model_validate(self._save(MODELS, version, files, {**manifest, "model_version": version}))

    def model_manifest(self, version: str) -> ModelManifest:
        body = self._manifest_json(MODELS, version)
        try:
            return ModelManifest.model_validate(body)
        except ValidationError as exc:
            raise ArtifactError(f"model {version}: invalid manifest: {_first_error(exc)}") from exc

    def model_file(self, version: str, name: str, *, verify: bool = True) -> bytes:
        return self._file(MODELS, version, name, self.model_manifest(version).files, verify=verify)

    def has_model_file(self, version: str, name: str) -> bool:
        return self.storage.has_file(MODELS, version, name)

    def add_model_file(self, version: str, name: str, data: bytes) -> None:
        """A file produced after training (the drift check's served reference); not in the checksums."""
        self.storage.add_file(MODELS, version, name, data)

    def model_versions(self) -> list[str]:
        return self.storage.versions(MODELS)

    def model_location(self, version: str | None = None) -> str:
        return self.storage.location(MODELS, version)

    def model_summaries(self) -> list[ModelSummary]:
        """One line per model, oldest first, with its last promotion (a model whose manifest does not load
        is listed with what is known)."""
        current = self.current_model()
        last_promotion = {str(p.get("model_version")): str(p.get("reason", "")) for p in self.promotions()}
        out = []
        for version in self.model_versions():
            try:
                m = self.model_manifest(version)
            except ArtifactError as exc:
                out.append(ModelSummary(version=version, serving=version == current, problem=str(exc)))
                continue
            out.append(ModelSummary(version=version, created_at=m.created_at, valid_ndcg=m.valid_ndcg,
                                    features=len(m.features), trees=m.best_iteration,
                                    data_source=m.extra("data_source"), serving=version == current,
                                    promotion=last_promotion.get(version)))
        return out

    def current_model(self) -> str | None:
        """The promoted model version (CURRENT), None before the first promotion."""
        return self.storage.get_pointer(MODELS, CURRENT)

    def promote(self, version: str, reason: str, **details: Any) -> None:
        """Point CURRENT at `version` (one atomic write) and record the promotion."""
        if version not in self.model_versions():
            raise ArtifactError(f"cannot promote {version}: no such model in {self.model_location()}")
        self.model_manifest(version)  # a model whose manifest does not load must never become CURRENT
        previous = self.current_model()
        self.storage.set_pointer(MODELS, CURRENT, version)
        record = {"ts": time.time(), "model_version": version, "previous": previous, "reason": reason, **details}
        self.storage.append_lines(MODELS, PROMOTIONS, [json.dumps(record, default=str)])
        log.info("event=model_promoted model_version=%s previous=%s reason=%r", version, previous, reason)

    def promotions(self) -> list[dict[str, Any]]:
        """Every promotion, oldest first."""
        return self.read_records(PROMOTIONS)

    def rollback(self) -> str:
        """Re-promote the model that was promoted before the current one; returns its version."""
        current = self.current_model()
        earlier = [str(p["model_version"]) for p in self.promotions()
                   if p.get("model_version") != current and p.get("model_version") in set(self.model_versions())]
        if not earlier:
            raise ArtifactError("no earlier model to roll back to")
        self.promote(earlier[-1], reason=f"rollback from {current}")
        return earlier[-1]

    # ---- logs --------------------------------------------------------------------------------------
    def append_records(self, log_name: str, records: list[dict[str, Any]]) -> None:
        """Append JSON records to a log kept with the models (importances, pruning decisions, promotions)."""
        if records:
            self.storage.append_lines(MODELS, log_name, [json.dumps(r, default=str, sort_keys=True) for r in records])

    def read_records(self, log_name: str) -> list[dict[str, Any]]:
        out = []
        for line in self.storage.read_lines(MODELS, log_name):
            try:
                record = json.loads(line)
            except ValueError:
                log.warning("event=bad_log_line log=%s", log_name)
                continue
            if isinstance(record, dict):
                out.append(record)
        return out


class ModelSummary(BaseModel):
    version: str
    created_at: float | None = None
    valid_ndcg: float | None = None
    features: int = 0
    trees: int = 0
    data_source: str | None = None
    serving: bool = False
    promotion: str | None = None  # the reason of its last promotion, if it was ever promoted
    problem: str | None = None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "manifest"
    if err.get("type") == "missing":
        return f"missing field {where!r}" + (" (the list of features the model needs, in order)"
                                             if where == "features" else "")
    return f"{where}: {err.get('msg', '')}"
