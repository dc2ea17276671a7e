"""Adding a feature is one complete definition in the registry; incomplete ones are refused."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from recsys.features import REGISTRY, Feature, FeatureContext, FeatureRegistry
from recsys.features.registry import GROUPS, NAME_PATTERN


def test_every_registered_feature_is_complete() -> None:
    assert REGISTRY.names, "the registry is empty"
    for feature in REGISTRY:
        assert NAME_PATTERN.fullmatch(feature.name), feature.name
        assert feature.group in GROUPS, (feature.name, feature.group)
        assert len(feature.description.strip()) >= 10, f"{feature.name}: describe what the feature measures"
        assert callable(feature.compute), feature.name
        params = list(inspect.signature(feature.compute).parameters)
        assert len(params) == 1, f"{feature.name}: compute takes exactly one FeatureContext"
    # Coverage by the train/serve consistency test: it compares the offline and online matrices of
    # REGISTRY.names, so a feature registered here is covered there with no further step.
    from tests.e2e import test_train_serve_consistency as consistency

    assert "REGISTRY.names" in inspect.getsource(consistency.test_offline_and_served_features_are_identical)


def _fn(ctx: FeatureContext) -> np.ndarray:
    return np.zeros(ctx.n, dtype=np.float32)


@pytest.mark.parametrize("feature, message", [
    (Feature("Bad Name", "item", "a description here", _fn), "must match"),
    (Feature("__probe", "item", "a description here", _fn), "must match"),
    (Feature("ok_name", "nowhere", "a description here", _fn), "unknown group"),
    (Feature("ok_name", "item", "   ", _fn), "needs a description"),
    (Feature("ok_name", "item", "a description here", None), "compute must be"),  # type: ignore[arg-type]
])
def test_incomplete_definitions_are_refused(feature: Feature, message: str) -> None:
    registry = FeatureRegistry()
    with pytest.raises(ValueError, match=message):
        registry.add(feature)
    assert registry.names == []


def test_register_is_one_definition_and_names_are_unique() -> None:
    registry = FeatureRegistry()

    @registry.register("twice", "item", "registered once only")
    def twice(ctx: FeatureContext) -> np.ndarray:
        return _fn(ctx)

    assert registry.names == ["twice"] and registry["twice"].compute is twice
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("twice", "item", "a second definition")(_fn)
    registry.remove("twice")
    assert "twice" not in registry
