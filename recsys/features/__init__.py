"""Feature registry: one definition per feature, one build function for training and serving."""

from recsys.features import definitions as _definitions  # noqa: F401  (registers the features)
from recsys.features.context import EVENT_WEIGHTS, FeatureContext, ItemSide
from recsys.features.registry import REGISTRY, Feature, FeatureRegistry

__all__ = ["EVENT_WEIGHTS", "REGISTRY", "Feature", "FeatureContext", "FeatureRegistry", "ItemSide"]
