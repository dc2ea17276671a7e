"""What a catalogue item may hold, checked the same way for the admin API and for files.

    availability      "available" (default) or "hidden"
    available_until   unix seconds, or null: the item is unavailable from then on
    categories        up to 50 names, 1-100 characters each
    attributes        up to 50 typed values: string (<= 256 chars), number (finite) or bool; an attribute
                      keeps one type across the catalogue (the filters compare by it; a conflict is a 409)
    created_at        unix seconds (default: when first put); times lie between 1990 and 2100
    title             up to 512 characters

Files (`recsys items import`): CSV or Parquet with `item_id` and any of `title`, `categories` (a list, or
`|`-separated text), `availability`, `available_until`, `created_at`, and one `attr.NAME` column per
attribute (its type from the column's: numbers, booleans, text; empty cells leave the attribute out).
A MovieLens directory imports its titles and genres (the data loaders' item table).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from recsys.data.schema import ID_MAX_LENGTH, ID_PATTERN, ID_RULE, MIN_TIMESTAMP
from recsys.errors import ConflictError, DataValidationError
from recsys.store import AVAILABILITY, AVAILABLE, AttributeValue, ItemRecord

ITEM_FIELDS = ("availability", "available_until", "categories", "attributes", "created_at", "title")
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_CATEGORIES, CATEGORY_MAX_LENGTH = 50, 100
MAX_ATTRIBUTES, STRING_MAX_LENGTH, TITLE_MAX_LENGTH = 50, 256, 512
ATTR_PREFIX = "attr."
# Item times (available_until, created_at) lie between 1990 and 2100: later is a typo or milliseconds.
MIN_ITEM_TIME, MAX_ITEM_TIME = float(MIN_TIMESTAMP), 4_102_444_800.0
_ID = re.compile(ID_PATTERN)


def _bad(item_id: str, field: str, problem: str) -> DataValidationError:
    return DataValidationError(f"item {item_id!r}: {field}: {problem}", column=field)


def _time(item_id: str, field: str, value: object) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    except OverflowError:
        seconds = math.nan
    if not math.isfinite(seconds):
        raise _bad(item_id, field, f"expected unix seconds or null, got {str(value)[:40]!r}")
    if not MIN_ITEM_TIME <= seconds <= MAX_ITEM_TIME:
        raise _bad(item_id, field, f"{seconds:g} is not unix seconds between 1990-01-01 and 2100-01-01 "
                   "(milliseconds?)")
    return seconds


def attribute_kind(value: AttributeValue) -> str:
    return "bool" if isinstance(value, bool) else "number" if isinstance(value, float | int) else "string"


def _attributes(item_id: str, value: object) -> dict[str, AttributeValue]:
    if not isinstance(value, Mapping):
        raise _bad(item_id, "attributes", "expected an object of name -> string, number or bool")
    if len(value) > MAX_ATTRIBUTES:
        raise _bad(item_id, "attributes", f"at most {MAX_ATTRIBUTES}, got {len(value)}")
    out: dict[str, AttributeValue] = {}
    for name, v in value.items():
        if not isinstance(name, str) or not ATTRIBUTE_NAME.match(name):
            raise _bad(item_id, "attributes", f"name {name!r} must match {ATTRIBUTE_NAME.pattern}")
        if isinstance(v, bool):
            out[name] = v
        elif isinstance(v, int | float):
            try:
                number = float(v)
            except OverflowError:  # a JSON integer beyond float range
                number = math.inf
            if not math.isfinite(number):
                raise _bad(item_id, f"attributes.{name}", "numbers must be finite")
            out[name] = number
        elif isinstance(v, str):
            if len(v) > STRING_MAX_LENGTH:
                raise _bad(item_id, f"attributes.{name}", f"strings are at most {STRING_MAX_LENGTH} characters")
            out[name] = v
        else:
            raise _bad(item_id, f"attributes.{name}", f"expected a string, number or bool, got {v!r}")
    return out


def _categories(item_id: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(c, str) for c in value):
        raise _bad(item_id, "categories", "expected a list of category names")
    cats = tuple(dict.fromkeys(c for c in value))  # order kept, duplicates dropped
    if len(cats) > MAX_CATEGORIES:
        raise _bad(item_id, "categories", f"at most {MAX_CATEGORIES}, got {len(cats)}")
    for c in cats:
        if not 1 <= len(c) <= CATEGORY_MAX_LENGTH or not _ID.match(c):
            raise _bad(item_id, "categories", f"{c!r}: 1 to {CATEGORY_MAX_LENGTH} characters, not blank, "
                       "no tab or newline")
    return cats


def item_from_fields(item_id: str, fields: Mapping[str, Any], *, base: ItemRecord | None = None,
                     now: float | None = None) -> ItemRecord:
    """A checked record: `fields` over `base` (PATCH) or over the defaults (PUT, import).

    Fields absent from `fields` keep `base`'s values; `attributes` given in a PATCH are merged into
    the existing ones, a null value removing that attribute.
    """
    if not isinstance(item_id, str) or not 1 <= len(item_id) <= ID_MAX_LENGTH or not _ID.match(item_id):
        raise DataValidationError(f"item_id {item_id!r}: {ID_RULE}", column="item_id")
    unknown = sorted(set(fields) - set(ITEM_FIELDS))
    if unknown:
        raise _bad(item_id, unknown[0], f"unknown field; an item has {list(ITEM_FIELDS)}")
    old = base if base is not None and not base.deleted else None
    # An explicit null is the field's empty value (created_at: keep or default).
    nulls = {"availability": AVAILABLE, "categories": [], "attributes": {}}
    fields = {k: nulls.get(k, v) if v is None else v for k, v in fields.items()
              if not (k == "created_at" and v is None)}
    availability = fields.get("availability", old.availability if old else AVAILABLE)
    if availability not in AVAILABILITY:
        raise _bad(item_id, "availability", f"one of {list(AVAILABILITY)}, got {availability!r}")
    until = _time(item_id, "available_until", fields["available_until"]) if "available_until" in fields else (
        old.available_until if old else None)
    created = _time(item_id, "created_at", fields["created_at"]) if "created_at" in fields else (
        old.created_at if old else None)
    cats = _categories(item_id, fields["categories"]) if "categories" in fields else (old.categories if old else ())
    attrs: dict[str, AttributeValue] = dict(old.attributes) if old else {}
    if "attributes" in fields:
        given = fields["attributes"]
        if isinstance(given, Mapping) and old is not None and given:
            for name in [n for n, v in given.items() if v is None]:
                attrs.pop(name, None)
            attrs.update(_attributes(item_id, {n: v for n, v in given.items() if v is not None}))
        else:  # a PUT, or attributes {} / null in a PATCH: the given set replaces the old one
            attrs = _attributes(item_id, {n: v for n, v in given.items() if v is not None}
                                if isinstance(given, Mapping) else given)
        if len(attrs) > MAX_ATTRIBUTES:
            raise _bad(item_id, "attributes", f"at most {MAX_ATTRIBUTES}, got {len(attrs)}")
    title = fields.get("title", old.title if old else None)
    if title is not None and (not isinstance(title, str) or len(title) > TITLE_MAX_LENGTH):
        raise _bad(item_id, "title", f"text of at most {TITLE_MAX_LENGTH} characters")
    if created is None:
        created = time.time() if now is None else now
    return ItemRecord(item_id, availability, until, cats, attrs, created, title)


def check_attribute_kinds(existing: Mapping[str, ItemRecord], written: Iterable[ItemRecord]) -> None:
    """An attribute keeps one type across the catalogue: a write that changes it is refused whole."""
    kinds: dict[str, tuple[str, str]] = {}
    written = list(written)
    replaced = {it.item_id for it in written}
    for it in [r for r in existing.values() if r.item_id not in replaced and not r.deleted] + written:
        for name, value in it.attributes.items():
            kind = attribute_kind(value)
            seen = kinds.setdefault(name, (kind, it.item_id))
            if seen[0] != kind:
                raise ConflictError(f"item {it.item_id!r}: attributes.{name} is a {kind} here but a {seen[0]} on "
                                    f"item {seen[1]!r}: an attribute keeps one type across the catalogue")


# ---- files ---------------------------------------------------------------------------------------
def read_item_file(path: Path) -> list[ItemRecord]:
    """Records from a CSV/Parquet item table, or a MovieLens directory's titles and genres."""
    if path.is_dir():
        from recsys.data.loaders import load_dataset

        dataset = load_dataset(path)
        if dataset.items is None:
            raise DataValidationError("this data set has no item table to import", path=str(path))
        frame = dataset.items
    else:
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".parquet"):
            raise DataValidationError(f"unsupported file type {suffix!r} (use .csv or .parquet)", path=str(path))
        try:
            frame = pl.read_parquet(path) if suffix == ".parquet" else pl.read_csv(path, infer_schema_length=10_000)
        except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
            raise DataValidationError(f"cannot read table: {exc}", path=str(path)) from exc
    return records_from_frame(frame, str(path))


def records_from_frame(frame: pl.DataFrame, source: str = "<table>") -> list[ItemRecord]:
    """Every row checked by `item_from_fields`; the first bad row names the file, column and row."""
    if "item_id" not in frame.columns:
        raise DataValidationError(f"item table lacks item_id; found {frame.columns}", path=source, column="item_id")
    known = {"item_id", *ITEM_FIELDS}
    extra = [c for c in frame.columns if c not in known and not c.startswith(ATTR_PREFIX)]
    if extra:
        raise DataValidationError(f"unknown columns {extra}: use {sorted(known - {'attributes'})} and "
                                  f"'{ATTR_PREFIX}NAME' per attribute", path=source)
    if frame["item_id"].n_unique() != frame.height:
        raise DataValidationError("item_id is not unique", path=source, column="item_id",
                                  bad_rows=frame.height - frame["item_id"].n_unique())
    if "categories" in frame.columns and frame["categories"].dtype == pl.String:
        frame = frame.with_columns(pl.col("categories").fill_null("").str.split("|").list.eval(
            pl.element().filter(pl.element() != "")))
    attr_cols = [c for c in frame.columns if c.startswith(ATTR_PREFIX)]
    now = time.time()
    out = []
    for row_no, row in enumerate(frame.iter_rows(named=True)):
        fields: dict[str, Any] = {k: row[k] for k in ITEM_FIELDS if k in row and k != "attributes"
                                  and row[k] is not None}
        if "categories" in fields:
            fields["categories"] = list(fields["categories"])
        if attr_cols:
            fields["attributes"] = {c[len(ATTR_PREFIX):]: row[c] for c in attr_cols if row[c] is not None}
        try:
            out.append(item_from_fields(str(row["item_id"]), fields, now=now))
        except DataValidationError as exc:
            raise DataValidationError(f"{exc} (row {row_no + 1})", path=source) from exc
    check_attribute_kinds({}, out)
    return out


def frame_from_records(records: Iterable[ItemRecord]) -> pl.DataFrame:
    """The export table (the import's format): one `attr.NAME` column per attribute."""
    rows = [r for r in records if not r.deleted]
    names = sorted({n for r in rows for n in r.attributes})
    data: dict[str, list[Any]] = {
        "item_id": [r.item_id for r in rows], "title": [r.title for r in rows],
        "categories": [list(r.categories) for r in rows], "availability": [r.availability for r in rows],
        "available_until": [r.available_until for r in rows], "created_at": [r.created_at for r in rows]}
    for n in names:
        data[ATTR_PREFIX + n] = [r.attributes.get(n) for r in rows]
    schema: dict[str, Any] = {"item_id": pl.String, "title": pl.String, "categories": pl.List(pl.String),
                              "availability": pl.String, "available_until": pl.Float64, "created_at": pl.Float64}
    for n in names:
        kinds = {attribute_kind(r.attributes[n]) for r in rows if n in r.attributes}
        schema[ATTR_PREFIX + n] = pl.Boolean if kinds == {"bool"} else pl.Float64 if kinds == {"number"} else pl.String
    return pl.DataFrame(data, schema=schema)
