"""Feature registry: one definition per feature, one build function for training and serving."""

from recsys.features import definitions as _definitions  # noqa: F401  (registers the features)
from recsys.features.context import FeatureContext, make_context
from recsys.features.registry import REGISTRY, Feature, FeatureRegistry

__all__ = ["REGISTRY", "Feature", "FeatureContext", "FeatureRegistry", "make_context"]
