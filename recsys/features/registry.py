"""Feature registry: a feature is one definition (name, group, description, vectorised compute).

`build_matrix(names, ctx)` is the only way a feature matrix is made, offline and online alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recsys.errors import ArtifactError
from recsys.features.context import FeatureContext

ComputeFn = Callable[[FeatureContext], np.ndarray]
GROUPS = ("candidate", "item", "user", "session", "history")
# Lower-case identifiers: valid LightGBM feature names, safe as JSON keys and env values; names that
# start with "__" are reserved (the pruning policy's noise probes).
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")


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
            self.add(Feature(name, group, description, fn))
            return fn

        return wrap

    def add(self, feature: Feature) -> None:
        """Register a complete definition: the report, the logs and LightGBM all rely on these fields."""
        if not NAME_PATTERN.fullmatch(feature.name):
            raise ValueError(f"feature name {feature.name!r} must match {NAME_PATTERN.pattern}")
        if feature.group not in GROUPS:
            raise ValueError(f"feature {feature.name!r}: unknown group {feature.group!r}; use one of {GROUPS}")
        if not feature.description.strip():
            raise ValueError(f"feature {feature.name!r} needs a description")
        if not callable(feature.compute):
            raise ValueError(f"feature {feature.name!r}: compute must be a function of a FeatureContext")
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
