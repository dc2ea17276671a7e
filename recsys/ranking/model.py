"""The serving ranker: LightGBM text model + JSON manifest; a models directory with a CURRENT pointer.

    <artifacts>/models/<model_version>/model.txt       LightGBM text format (no pickle)
    <artifacts>/models/<model_version>/manifest.json   features in order, params, metrics, versions
    <artifacts>/models/<model_version>/reference.parquet  sample of training feature rows (drift reference)
    <artifacts>/models/CURRENT                          the promoted model version
    <artifacts>/models/history.jsonl                    promotions, newest last (rollback)
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np

from recsys.errors import ArtifactError
from recsys.features import REGISTRY


def models_dir(artifacts_dir: Path) -> Path:
    return artifacts_dir / "models"


def current_model_version(artifacts_dir: Path) -> str | None:
    pointer = models_dir(artifacts_dir) / "CURRENT"
    if not pointer.exists():
        return None
    text = pointer.read_text().strip()
    return text or None


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def promote(artifacts_dir: Path, model_version: str, reason: str) -> None:
    """Point CURRENT at `model_version` (one rename) and record it in the history."""
    root = models_dir(artifacts_dir)
    if not (root / model_version / "manifest.json").exists():
        raise ArtifactError(f"cannot promote {model_version}: no such model in {root}")
    _atomic_write(root / "CURRENT", model_version + "\n")
    with (root / "history.jsonl").open("a") as fh:
        fh.write(json.dumps({"ts": time.time(), "model_version": model_version, "reason": reason}) + "\n")


def rollback(artifacts_dir: Path) -> str:
    """Re-promote the model promoted before the current one."""
    root = models_dir(artifacts_dir)
    history = [json.loads(line) for line in (root / "history.jsonl").read_text().splitlines() if line.strip()] \
        if (root / "history.jsonl").exists() else []
    current = current_model_version(artifacts_dir)
    previous = [h["model_version"] for h in history if h["model_version"] != current]
    if not previous:
        raise ArtifactError("no earlier model to roll back to")
    promote(artifacts_dir, previous[-1], reason=f"rollback from {current}")
    return str(previous[-1])


@dataclass
class RankerModel:
    """A loaded LightGBM ranker and the features it needs, in order."""

    version: str
    booster: lgb.Booster
    feature_names: list[str]
    manifest: dict[str, object]

    @classmethod
    def load(cls, path: Path) -> RankerModel:
        manifest_path, model_path = path / "manifest.json", path / "model.txt"
        if not manifest_path.exists() or not model_path.exists():
            raise ArtifactError(f"model {path} is incomplete (needs manifest.json and model.txt)")
        try:
            manifest = json.loads(manifest_path.read_text())
            booster = lgb.Booster(model_file=str(model_path))
        except (ValueError, lgb.basic.LightGBMError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"model {path} is corrupt: {exc}") from exc
        names = list(manifest["features"])
        REGISTRY.check(names)
        if booster.num_feature() != len(names):
            raise ArtifactError(f"model {path}: booster has {booster.num_feature()} features, manifest {len(names)}")
        return cls(str(manifest["model_version"]), booster, names, manifest)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """One call per request on the whole candidate matrix (the sklearn wrapper costs ~5x more)."""
        return self.booster.predict(features, num_threads=1)


def load_current(artifacts_dir: Path) -> RankerModel | None:
    version = current_model_version(artifacts_dir)
    if version is None:
        return None
    return RankerModel.load(models_dir(artifacts_dir) / version)
