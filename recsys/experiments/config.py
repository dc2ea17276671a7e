"""What an experiment is: a name, a salt, a slice of traffic, and variants naming what serves them.

Definitions are validated here, once, whoever writes them (admin API, CLI, a stored value read back):
a bad definition is a ConfigError that says which field is wrong and what would work.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from recsys.errors import ConfigError

# What serves a variant. "model": the promoted LightGBM reranker (the full online path); "als": the
# candidates in ALS order (ranking off: the list the reranker would have reordered).
RANKERS = ("model", "als")
KINDS = ("ab", "interleaving")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SHARE_TOLERANCE = 1e-6
RUNNING, STOPPED = "running", "stopped"


class Variant(BaseModel):
    model_config = {"extra": "forbid", "frozen": True}

    name: str = Field(pattern=NAME_PATTERN, description="variant name, e.g. control, treatment")
    share: float = Field(gt=0.0, le=1.0, description="share of the experiment's users (A/B; shares add up to 1)")
    ranker: Literal["model", "als"] = Field("model", description="model: the reranker; als: candidates in "
                                            "ALS order (ranking off)")


class Experiment(BaseModel):
    model_config = {"extra": "forbid", "frozen": True}

    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["ab", "interleaving"] = "ab"
    variants: tuple[Variant, ...] = Field(min_length=2)
    # The salt makes an experiment's assignment independent of every other's; the default is the name.
    salt: str = Field("", max_length=128)
    traffic: float = Field(1.0, gt=0.0, le=1.0, description="share of all users in this experiment")
    # Where the experiment's slice of the traffic starts in [0, 1): set when it is created, so running
    # experiments never share a user and a new one never moves another's users.
    slot_start: float = Field(0.0, ge=0.0, lt=1.0)
    status: Literal["running", "stopped"] = "running"
    created_at: float = Field(default_factory=time.time)
    stopped_at: float | None = None
    # Relative lift the experiment must be able to detect (0.05 = 5 %): the report says how many users
    # that needs when the data cannot decide yet.
    min_detectable_effect: float = Field(0.05, gt=0.0, le=10.0)

    @field_validator("salt")
    @classmethod
    def _salt_text(cls, v: str) -> str:
        if v and not re.fullmatch(r"[\x21-\x7e]+", v):
            raise ValueError("salt must be printable ASCII without spaces")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must differ, got {names}")
        if self.kind == "interleaving" and len(self.variants) != 2:
            raise ValueError("an interleaving experiment has exactly two variants (the two lists it interleaves)")
        total = sum(v.share for v in self.variants)
        if self.kind == "ab" and abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValueError(f"variant shares must add up to 1, they add up to {total:g}")
        if self.slot_start + self.traffic > 1.0 + SHARE_TOLERANCE:
            raise ValueError(f"slot {self.slot_start:g} + traffic {self.traffic:g} passes 1")
        return self

    @property
    def effective_salt(self) -> str:
        return self.salt or self.name

    @property
    def running(self) -> bool:
        return self.status == RUNNING

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def parse_experiment(value: dict[str, Any]) -> Experiment:
    """An Experiment from its JSON form, or a ConfigError naming each bad field."""
    try:
        return Experiment.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'experiment'}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"invalid experiment definition: {problems}") from None


def parse_variant_spec(spec: str) -> Variant:
    """`name:ranker:share` (CLI form, e.g. `control:model:0.5`), or a ConfigError saying the form."""
    parts = spec.split(":")
    if len(parts) != 3:
        raise ConfigError(f"variant {spec!r}: expected NAME:RANKER:SHARE with RANKER one of {', '.join(RANKERS)}, "
                          "e.g. control:model:0.5")
    name, ranker, share = parts
    try:
        return Variant.model_validate({"name": name, "ranker": ranker, "share": float(share)})
    except (ValueError, ValidationError) as exc:
        raise ConfigError(f"variant {spec!r}: {exc}".splitlines()[0] + f" (NAME:RANKER:SHARE, RANKER one of "
                          f"{', '.join(RANKERS)})") from None
