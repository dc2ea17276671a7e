"""Typed manifests of the two artifact kinds. Unknown keys are kept (older and newer writers agree)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class BundleManifest(BaseModel):
    """The item-side bundle of one candidate version (files listed with their sha256)."""

    model_config = ConfigDict(extra="allow")

    version: str
    created_at: float
    n_items: int = Field(ge=0)
    factors: int = Field(ge=0)
    category_names: list[str] = Field(default_factory=list)
    index_kind: str = "flat"
    files: dict[str, str] = Field(default_factory=dict)

    def extra(self, key: str, default: Any = None) -> Any:
        """A key written by the producer beyond the typed ones (source, users, als, …)."""
        return (self.model_extra or {}).get(key, default)


class ModelManifest(BaseModel):
    """A ranker model: the features it needs in order, how it was trained, how it scored."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model_version: str
    created_at: float
    features: list[str]
    params: dict[str, Any] = Field(default_factory=dict)
    best_iteration: int = 0
    metrics: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    importances: dict[str, dict[str, float]] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)

    def extra(self, key: str, default: Any = None) -> Any:
        return (self.model_extra or {}).get(key, default)

    @property
    def valid_ndcg(self) -> float | None:
        value = self.metrics.get("valid_ndcg@10")
        return float(value) if isinstance(value, int | float) else None
