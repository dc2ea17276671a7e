"""The serving ranker: a LightGBM text model and the features it needs, stored in the artifact registry.

    model.txt            LightGBM text format (no pickle)
    reference.parquet    a sample of training feature rows (drift reference)
    manifest.json        features in order, params, metrics, importances (ModelManifest)
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from recsys.artifacts import ArtifactRegistry, ModelManifest
from recsys.errors import ArtifactError
from recsys.features import REGISTRY

MODEL_FILE = "model.txt"
REFERENCE_FILE = "reference.parquet"


@dataclass
class RankerModel:
    """A loaded LightGBM ranker and the features it needs, in order."""

    version: str
    booster: lgb.Booster
    feature_names: list[str]
    manifest: ModelManifest

    @classmethod
    def load(cls, registry: ArtifactRegistry, version: str) -> RankerModel:
        """Load and check a model: its manifest, its file's checksum, and that this build defines its features."""
        manifest = registry.model_manifest(version)
        text = registry.model_file(version, MODEL_FILE)
        try:
            booster = lgb.Booster(model_str=text.decode())
        except (ValueError, UnicodeDecodeError, lgb.basic.LightGBMError) as exc:
            raise ArtifactError(f"model {version} is corrupt: {exc}") from exc
        names = list(manifest.features)
        REGISTRY.check(names)
        if booster.num_feature() != len(names):
            raise ArtifactError(f"model {version}: booster has {booster.num_feature()} features, manifest {len(names)}")
        return cls(version, booster, names, manifest)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """One call per request on the whole candidate matrix (the sklearn wrapper costs ~5x more)."""
        return np.asarray(self.booster.predict(features, num_threads=1))


def load_current(registry: ArtifactRegistry) -> RankerModel | None:
    version = registry.current_model()
    return None if version is None else RankerModel.load(registry, version)
