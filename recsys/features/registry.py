"""Feature registry: a feature is one definition (name, group, description, vectorised compute).

`build_matrix(names, ctx)` is the only way a feature matrix is made, offline and online alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recsys.errors import ArtifactError
from recsys.features.context import FeatureContext

ComputeFn = Callable[[FeatureContext], np.ndarray]
GROUPS = ("candidate", "item", "user", "session", "history")


@dataclass(frozen=True)
class Feature:
    name: str
    group: str
    description: str
    compute: ComputeFn


class FeatureRegistry:
    def __init__(self) -> None:
        self._features: dict[str, Feature] = {}

    def register(self, name: str, group: str, description: str) -> Callable[[ComputeFn], ComputeFn]:
        """Decorator: adding a feature is this one definition."""
        if group not in GROUPS:
            raise ValueError(f"unknown feature group {group!r}; use one of {GROUPS}")

        def wrap(fn: ComputeFn) -> ComputeFn:
            if name in self._features:
                raise ValueError(f"feature {name!r} registered twice")
            self._features[name] = Feature(name, group, description, fn)
            return fn

        return wrap

    def add(self, feature: Feature) -> None:
        if feature.name in self._features:
            raise ValueError(f"feature {feature.name!r} registered twice")
        self._features[feature.name] = feature

    def remove(self, name: str) -> None:
        self._features.pop(name, None)

    @property
    def names(self) -> list[str]:
        return list(self._features)

    def __getitem__(self, name: str) -> Feature:
        return self._features[name]

    def __contains__(self, name: object) -> bool:
        return name in self._features

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._features.values())

    def check(self, names: Sequence[str]) -> None:
        """A model names the features it needs; loading fails clearly if any is unknown."""
        missing = [n for n in names if n not in self._features]
        if missing:
            raise ArtifactError(f"model needs features this build does not define: {missing}")

    def build_matrix(self, names: Sequence[str], ctx: FeatureContext) -> np.ndarray:
        """candidates × features float32 matrix, columns in `names` order."""
        out = np.empty((ctx.n, len(names)), dtype=np.float32)
        for j, name in enumerate(names):
            out[:, j] = self._features[name].compute(ctx)
        return out


REGISTRY = FeatureRegistry()
