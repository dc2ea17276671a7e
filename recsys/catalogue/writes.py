"""Catalogue writes (admin API, `recsys items import`): every record checked, one locked store write each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from recsys.catalogue.items import check_attribute_kinds, item_from_fields
from recsys.errors import DataValidationError
from recsys.store import CatalogueSnapshot, ItemRecord, Store

MAX_BULK_ITEMS = 1000


def put_items(store: Store, items: Sequence[tuple[str, Mapping[str, Any]]] | Sequence[ItemRecord], *,
              max_items: int | None = MAX_BULK_ITEMS) -> CatalogueSnapshot:
    """Create or replace items (all or none: one bad item refuses the whole batch)."""
    if max_items is not None and len(items) > max_items:
        raise DataValidationError(f"at most {max_items} items per write, got {len(items)}; split the batch")
    # An item given twice in one write: the last one wins, as if written one after the other.
    records = list({r.item_id: r for r in (it if isinstance(it, ItemRecord) else item_from_fields(it[0], it[1])
                                            for it in items)}.values())

    def change(current: dict[str, ItemRecord]) -> list[ItemRecord]:
        # created_at is when the item was first put, unless given: a replace keeps it.
        out = [replace(r, created_at=current[r.item_id].created_at)
               if r.item_id in current and not current[r.item_id].deleted and current[r.item_id].created_at
               and not _gave_created(items, r.item_id) else r for r in records]
        check_attribute_kinds(current, out)
        return out

    return store.catalogue.write(change)[0]


def _gave_created(items: Sequence[Any], item_id: str) -> bool:
    for it in reversed(items):  # the last one wins
        if isinstance(it, ItemRecord) and it.item_id == item_id:
            return it.created_at is not None
        if not isinstance(it, ItemRecord) and it[0] == item_id:
            return "created_at" in it[1]
    return False


def patch_item(store: Store, item_id: str, fields: Mapping[str, Any]) -> tuple[CatalogueSnapshot, ItemRecord | None]:
    """Change some fields of an existing item; (snapshot, None) when the catalogue has no such item."""
    found: list[ItemRecord] = []

    def change(current: dict[str, ItemRecord]) -> list[ItemRecord]:
        base = current.get(item_id)
        if base is None or base.deleted:
            return []
        record = item_from_fields(item_id, fields, base=base)
        check_attribute_kinds(current, [record])
        found.append(record)
        return [record]

    snapshot, _ = store.catalogue.write(change)
    return snapshot, (found[0] if found else None)


def delete_items(store: Store, item_ids: Sequence[str]) -> tuple[CatalogueSnapshot, int]:
    """Mark items deleted (tombstones: never served again, by any candidate version, until put again).

    Items unknown to the catalogue are recorded too: an item of a candidate version that the catalogue
    never held can be deleted as well."""
    if len(item_ids) > MAX_BULK_ITEMS:
        raise DataValidationError(f"at most {MAX_BULK_ITEMS} items per write, got {len(item_ids)}")

    def change(current: dict[str, ItemRecord]) -> list[ItemRecord]:
        return [replace(current[i], deleted=True) if i in current else ItemRecord(i, deleted=True)
                for i in dict.fromkeys(item_ids) if i not in current or not current[i].deleted]

    snapshot, written = store.catalogue.write(change)
    return snapshot, len(written)
