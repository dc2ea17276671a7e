"""The online path: service, serving state and its reload, fallback chain, event buffer, feature sink."""

from recsys.serving.fallback import FallbackReason
from recsys.serving.service import Recommendations, RecommendationService, ScoredItem
from recsys.serving.state import ServingState

__all__ = ["FallbackReason", "RecommendationService", "Recommendations", "ScoredItem", "ServingState"]
