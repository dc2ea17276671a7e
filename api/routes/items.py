"""The item catalogue (admin): create, replace, change, delete items; a change applies on the next request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from api.deps import AdminDep, ServiceDep
from api.errors import error_responses
from api.schemas import Id, ItemFields, ItemOut, ItemsBulk, ItemsWritten
from recsys.catalogue import delete_items, patch_item, put_items
from recsys.store import ItemRecord

router = APIRouter(prefix="/v1/items", tags=["catalogue"])

ItemPath = Annotated[Id, Path()]
ADMIN_ERRORS = error_responses(401, 403, 413, 422, 503)


def _out(record: ItemRecord) -> ItemOut:
    return ItemOut(item_id=record.item_id, availability=record.availability, available_until=record.available_until,
                   categories=list(record.categories), attributes=dict(record.attributes),
                   created_at=record.created_at, title=record.title, deleted=record.deleted)


@router.get("/{item_id}", response_model=ItemOut, responses=error_responses(401, 403, 404, 422, 503))
def get_item(item_id: ItemPath, _: AdminDep, service: ServiceDep) -> ItemOut:
    """One item as the catalogue holds it (a deleted item shows `deleted: true`)."""
    record = service.store.catalogue.snapshot().items.get(item_id)
    if record is None:
        raise HTTPException(404, f"item {item_id!r} is not in the catalogue")
    return _out(record)


@router.put("/{item_id}", response_model=ItemsWritten, responses=ADMIN_ERRORS)
def put_item(item_id: ItemPath, body: ItemFields, _: AdminDep, service: ServiceDep) -> ItemsWritten:
    """Create or replace an item (fields not given take their defaults)."""
    snapshot = put_items(service.store, [(item_id, body.given())])
    return ItemsWritten(written=1, catalogue_version=snapshot.version)


@router.patch("/{item_id}", response_model=ItemsWritten, responses=error_responses(401, 403, 404, 413, 422, 503))
def patch(item_id: ItemPath, body: ItemFields, _: AdminDep, service: ServiceDep) -> ItemsWritten:
    """Change the given fields of an item in the catalogue (404 when it is not there: PUT creates)."""
    snapshot, record = patch_item(service.store, item_id, body.given())
    if record is None:
        raise HTTPException(404, f"item {item_id!r} is not in the catalogue (PUT /v1/items/{item_id} creates it)")
    return ItemsWritten(written=1, catalogue_version=snapshot.version)


@router.delete("/{item_id}", response_model=ItemsWritten, responses=error_responses(401, 403, 422, 503))
def delete(item_id: ItemPath, _: AdminDep, service: ServiceDep) -> ItemsWritten:
    """Delete an item: never served again (by any candidate version) until it is put again."""
    snapshot, n = delete_items(service.store, [item_id])
    return ItemsWritten(written=n, catalogue_version=snapshot.version)


@router.post("", response_model=ItemsWritten, responses=ADMIN_ERRORS)
def bulk(body: ItemsBulk, _: AdminDep, service: ServiceDep) -> ItemsWritten:
    """Create or replace up to 1,000 items in one write (all or none)."""
    items = [(it.item_id, {k: v for k, v in it.given().items() if k != "item_id"}) for it in body.items]
    snapshot = put_items(service.store, items)
    return ItemsWritten(written=len(items), catalogue_version=snapshot.version)
