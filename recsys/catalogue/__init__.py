"""The item catalogue: the rules an item must meet (items.py), file import/export, and the per-bundle
arrays the online path filters with (view.py). Stored by `recsys.store.CatalogueStore`."""

from __future__ import annotations

from recsys.catalogue.items import (
    ITEM_FIELDS,
    attribute_kind,
    check_attribute_kinds,
    frame_from_records,
    item_from_fields,
    read_item_file,
    records_from_frame,
)
from recsys.catalogue.view import CatalogueView
from recsys.catalogue.writes import MAX_BULK_ITEMS, delete_items, patch_item, put_items

__all__ = ["ITEM_FIELDS", "MAX_BULK_ITEMS", "CatalogueView", "attribute_kind", "check_attribute_kinds",
           "delete_items", "frame_from_records", "item_from_fields", "patch_item", "put_items", "read_item_file",
           "records_from_frame"]
