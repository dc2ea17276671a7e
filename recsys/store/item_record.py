"""One item of the catalogue as the store holds it (validated on the way in by recsys.catalogue.items)."""

from __future__ import annotations

from dataclasses import dataclass, field

AttributeValue = str | float | bool

AVAILABLE, HIDDEN = "available", "hidden"
AVAILABILITY = (AVAILABLE, HIDDEN)


@dataclass(frozen=True)
class ItemRecord:
    """Availability, categories, typed attributes and creation time of one item.

    `deleted` is a tombstone: a deleted item stays known so that it is never served, even by a candidate
    version that still holds it, until it is put again.
    """

    item_id: str
    availability: str = AVAILABLE
    available_until: float | None = None  # unix seconds; unavailable from then on
    categories: tuple[str, ...] = ()
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    created_at: float | None = None
    title: str | None = None
    deleted: bool = False

    def available_at(self, now: float) -> bool:
        return (not self.deleted and self.availability == AVAILABLE
                and (self.available_until is None or now < self.available_until))
