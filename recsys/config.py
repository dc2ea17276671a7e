"""The one Settings object of the process, read from the environment (prefix RECSYS_) at the edges."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ARTIFACTS_DIR = Path("data/artifacts")


class ALSConfig(BaseModel):
    """Parameters of the implicit ALS candidate model (defaults tuned on the session-holdout protocol)."""

    factors: int = Field(32, ge=2, le=1024)
    regularization: float = Field(0.05, ge=0.0)
    alpha: float = Field(2.0, gt=0.0)
    iterations: int = Field(15, ge=1, le=500)
    random_state: int = 42


class CandidateConfig(BaseModel):
    """How the per-user candidate lists are generated."""

    n_candidates: int = Field(100, ge=1, le=1000)
    index: str = Field("flat", pattern="^(flat|ivf|hnsw)$")
    # Weight of the item-kNN source blended into the ALS scores (0 disables it).
    itemknn_weight: float = Field(0.0, ge=0.0)
    recent_window_days: float = Field(30.0, gt=0)
    covisit_neighbours: int = Field(50, ge=1, le=1000)
    covisit_window: int = Field(5, ge=1, le=100)


class Settings(BaseSettings):
    """Process-wide settings. Every field is also an env var: RECSYS_<FIELD>, nested with `__`."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", env_nested_delimiter="__", extra="ignore")

    store_url: str = Field(
        "embedded://data/artifacts/store.sqlite",
        description="redis://host:port/db for Redis, embedded://PATH for the single-file embedded store",
    )
    store_namespace: str = Field("recsys", pattern=r"^[A-Za-z0-9_.-]+$",
                                 description="Key prefix, so several deployments can share one Redis")
    artifacts_dir: Path = DEFAULT_ARTIFACTS_DIR
    admin_token: str = Field("", description="Bearer token for /v1/admin/*; empty disables admin endpoints")
    version_grace_seconds: int = Field(3600, ge=0, description="How long superseded versions stay readable")
    session_ttl_seconds: int = Field(1800, ge=1)
    session_max_events: int = Field(50, ge=1, le=1000)
    publish_batch_size: int = Field(2000, ge=1)
    als: ALSConfig = ALSConfig()
    candidates: CandidateConfig = CandidateConfig()
    seed: int = 42
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    reload_interval_seconds: float = Field(2.0, gt=0)
    log_level: str = "INFO"


def get_settings(**overrides: object) -> Settings:
    """Build Settings from the environment, with explicit overrides (CLI options) on top."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)  # type: ignore[arg-type]
