"""Compact binary encoding of per-user candidate lists and histories (no JSON, no pickle).

Layout (little-endian):  magic u8 | flags u8 | n u16 | n_primary u16 | indices (u16 or u32) x n
                         | scores f16 x n (candidates only)
`n_primary` counts the leading entries from the primary source (ALS); the rest are popularity fill.
Item indices are internal to one artifact version and never leave it. Every blob the store holds is
encoded and decoded here, one user at a time or a whole batch of users at once.

Decoding never trusts the bytes: besides the header (magic, length), `n_items` (the serving bundle's
catalogue size) bounds every index and candidate scores must be finite; anything else is a
CorruptValueError. The checks are vectorised (a few µs for 100 entries: they run on every request).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable
from typing import Any

import numpy as np

from recsys.errors import CorruptValueError
from recsys.store.item_record import AVAILABILITY, ItemRecord

MAGIC_CANDIDATES = 0xC1
MAGIC_INDICES = 0xA1
_WIDE = 0x01
_HEADER = struct.Struct("<BBHH")


def needs_wide(indices: np.ndarray) -> bool:
    """Whether item indices need u32 (the u16 form stores indices up to 65534)."""
    return bool(indices.size and int(indices.max()) >= 65535)


def _index_dtype(indices: np.ndarray) -> tuple[np.dtype, int]:
    return (np.dtype("<u4"), _WIDE) if needs_wide(indices) else (np.dtype("<u2"), 0)


def encode_candidates(indices: np.ndarray, scores: np.ndarray, n_primary: int | None = None) -> bytes:
    """Pack item indices and float16 scores into one value (~4 bytes/candidate below 65k items)."""
    if indices.shape != scores.shape or indices.ndim != 1:
        raise ValueError("indices and scores must be 1-d arrays of equal length")
    n = int(indices.size)
    dtype, flags = _index_dtype(indices)
    primary = n if n_primary is None else int(n_primary)
    head = _HEADER.pack(MAGIC_CANDIDATES, flags, n, primary)
    return head + indices.astype(dtype).tobytes() + np.asarray(scores, dtype="<f2").tobytes()


def _read_header(blob: bytes, magic: int, kind: str, extra_bytes_per_entry: int) -> tuple[int, int, int]:
    """(entries, index width in bytes, n_primary) of a blob whose length must match its header."""
    if len(blob) < _HEADER.size:
        raise CorruptValueError(f"{kind} blob too short ({len(blob)} bytes)")
    found, flags, n, primary = _HEADER.unpack_from(blob)
    if found != magic:
        raise CorruptValueError(f"not a {kind} blob (magic {found:#x})")
    width = 4 if flags & _WIDE else 2
    expected = _HEADER.size + n * (width + extra_bytes_per_entry)
    if len(blob) != expected:
        raise CorruptValueError(f"{kind} blob has {len(blob)} bytes, its header says {expected}")
    return n, width, primary


def _indices(blob: bytes, n: int, width: int) -> np.ndarray:
    return np.frombuffer(blob, dtype="<u4" if width == 4 else "<u2", count=n, offset=_HEADER.size).astype(np.int64)


def _checked_range(indices: np.ndarray, n_items: int | None, kind: str) -> np.ndarray:
    if n_items is not None and indices.size and int(indices.max()) >= n_items:
        raise CorruptValueError(f"{kind} blob holds item index {int(indices.max())}, the catalogue has {n_items}")
    return indices


def decode_candidates(blob: bytes, n_items: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Inverse of encode_candidates: (indices int64, scores float32, n_primary), checked (see module doc)."""
    n, width, primary = _read_header(blob, MAGIC_CANDIDATES, "candidate", 2)
    if primary > n:
        raise CorruptValueError(f"candidate blob says {primary} primary entries of {n}")
    scores = np.frombuffer(blob, dtype="<f2", count=n, offset=_HEADER.size + n * width).astype(np.float32)
    if not math.isfinite(float(scores.sum())):  # one reduction: a NaN or inf anywhere makes the sum so
        raise CorruptValueError("candidate blob holds a NaN or infinite score")
    return _checked_range(_indices(blob, n, width), n_items, "candidate"), scores, int(primary)


def encode_indices(indices: np.ndarray) -> bytes:
    """Pack a list of item indices (a user's history, most recent last)."""
    dtype, flags = _index_dtype(indices)
    return _HEADER.pack(MAGIC_INDICES, flags, int(indices.size), 0) + indices.astype(dtype).tobytes()


def decode_indices(blob: bytes, n_items: int | None = None) -> np.ndarray:
    """Inverse of encode_indices, indices checked against `n_items`."""
    n, width, _ = _read_header(blob, MAGIC_INDICES, "index", 0)
    return _checked_range(_indices(blob, n, width), n_items, "index")


def encode_index_rows(indptr: np.ndarray, indices: np.ndarray, start: int, stop: int) -> list[bytes]:
    """`encode_indices` of rows start..stop of a CSR-like (indptr, indices) pair, in one vectorised pass.

    Byte-identical to encoding each row alone (a row needing u32 goes through `encode_indices`).
    """
    lo, hi = int(indptr[start]), int(indptr[stop])
    lengths = np.diff(indptr[start:stop + 1]).astype(np.int64)
    values = np.asarray(indices[lo:hi])
    if needs_wide(values):
        return [encode_indices(np.asarray(indices[indptr[r]:indptr[r + 1]])) for r in range(start, stop)]
    sizes = _HEADER.size + 2 * lengths
    ends = np.cumsum(sizes)
    starts = ends - sizes
    buf = np.zeros(int(ends[-1]) if ends.size else 0, dtype=np.uint8)
    head = np.zeros((lengths.size, _HEADER.size), dtype=np.uint8)
    head[:, 0] = MAGIC_INDICES
    head[:, 2:4] = lengths.astype("<u2").view(np.uint8).reshape(-1, 2)
    buf[starts[:, None] + np.arange(_HEADER.size)] = head
    row = np.repeat(np.arange(lengths.size), lengths)
    pos = starts[row] + _HEADER.size + 2 * (np.arange(values.size) - (np.cumsum(lengths) - lengths)[row])
    body = values.astype("<u2").view(np.uint8).reshape(-1, 2)
    buf[pos] = body[:, 0]
    buf[pos + 1] = body[:, 1]
    raw = buf.tobytes()
    return [raw[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]


def encode_candidate_rows(items: np.ndarray, scores: np.ndarray, n_primary: np.ndarray, *,
                          wide: bool) -> list[bytes]:
    """`encode_candidates` of every row of `items` (users × n, -1 = no item) at once, vectorised.

    Byte-identical to encoding each row alone with `encode_candidates` (rows with -1 entries go
    through it). `wide` is decided by the caller for the whole list (`needs_wide` of all items), so a
    user's blob does not depend on the batch it was encoded in.
    """
    n_users, n = items.shape
    header = np.zeros((n_users, _HEADER.size), dtype=np.uint8)
    header[:, 0] = MAGIC_CANDIDATES
    header[:, 1] = _WIDE if wide else 0
    header[:, 2:4] = np.full(n_users, n, dtype="<u2").view(np.uint8).reshape(-1, 2)
    header[:, 4:6] = n_primary.astype("<u2").view(np.uint8).reshape(-1, 2)
    idx = np.where(items < 0, 0, items).astype("<u4" if wide else "<u2")
    body = np.concatenate([header, idx.view(np.uint8).reshape(n_users, -1),
                           scores.astype("<f2").view(np.uint8).reshape(n_users, -1)], axis=1)
    out = [row.tobytes() for row in body]
    for u in np.flatnonzero(~(items >= 0).all(axis=1)):
        valid = items[u] >= 0
        row_items = items[u][valid]
        out[u] = encode_candidates(row_items, scores[u][valid], min(int(n_primary[u]), row_items.size))
    return out


# ---- the item catalogue ------------------------------------------------------------------------
# One JSON document (the catalogue is read whole, and only when its version counter changed):
#   {"format": 1, "version": n, "items": [{"id", "av", "until", "cats", "attrs", "created", "title", "del"}]}
CATALOGUE_FORMAT = 1


def encode_catalogue(version: int, items: Iterable[ItemRecord]) -> bytes:
    rows = []
    for it in items:
        row: dict[str, object] = {"id": it.item_id, "av": it.availability}
        if it.available_until is not None:
            row["until"] = it.available_until
        if it.categories:
            row["cats"] = list(it.categories)
        if it.attributes:
            row["attrs"] = dict(it.attributes)
        if it.created_at is not None:
            row["created"] = it.created_at
        if it.title is not None:
            row["title"] = it.title
        if it.deleted:
            row["del"] = True
        rows.append(row)
    return json.dumps({"format": CATALOGUE_FORMAT, "version": version, "items": rows},
                      separators=(",", ":"), allow_nan=False).encode()


def _finite(value: object, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CorruptValueError(f"catalogue blob: {what} is not a finite number ({value!r})")
    return float(value)


def _catalogue_row(row: object) -> ItemRecord:
    if not isinstance(row, dict) or not isinstance(row.get("id"), str) or not row["id"]:
        raise CorruptValueError(f"catalogue blob: malformed item {str(row)[:80]!r}")
    av = row.get("av")
    if av not in AVAILABILITY:
        raise CorruptValueError(f"catalogue blob: item {row['id']!r} has availability {av!r}")
    cats = row.get("cats", [])
    attrs = row.get("attrs", {})
    title = row.get("title")
    if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
        raise CorruptValueError(f"catalogue blob: item {row['id']!r} has malformed categories")
    if not isinstance(attrs, dict) or not all(
            isinstance(v, str | bool) or (isinstance(v, int | float) and math.isfinite(v)) for v in attrs.values()):
        raise CorruptValueError(f"catalogue blob: item {row['id']!r} has malformed attributes")
    if title is not None and not isinstance(title, str):
        raise CorruptValueError(f"catalogue blob: item {row['id']!r} has a non-text title")
    return ItemRecord(item_id=row["id"], availability=av, available_until=_finite(row.get("until"), "until"),
                      categories=tuple(cats),
                      attributes={k: (float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
                                  for k, v in attrs.items()},
                      created_at=_finite(row.get("created"), "created"), title=title,
                      deleted=bool(row.get("del", False)))


def decode_catalogue(blob: bytes) -> tuple[int, list[ItemRecord]]:
    """Inverse of encode_catalogue: (version, items), every value checked."""
    try:
        doc = json.loads(blob)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptValueError(f"catalogue blob is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != CATALOGUE_FORMAT or not isinstance(doc.get("items"), list):
        raise CorruptValueError("catalogue blob: unknown format")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise CorruptValueError(f"catalogue blob: bad version {version!r}")
    return version, [_catalogue_row(r) for r in doc["items"]]
def encode_experiments(definitions: dict[str, dict[str, Any]]) -> bytes:
    """Every experiment's definition by name, as one JSON object (read by each API replica's poller)."""
    return json.dumps(definitions, sort_keys=True, separators=(",", ":")).encode()


def decode_experiments(blob: bytes) -> dict[str, dict[str, Any]]:
    """Inverse of encode_experiments: a JSON object of objects, or a CorruptValueError.

    Only the shape is checked here; each definition is validated by `recsys.experiments` when loaded.
    """
    try:
        value = json.loads(blob)
    except ValueError as exc:
        raise CorruptValueError(f"experiments value is not JSON: {exc}") from exc
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in value.items()):
        raise CorruptValueError("experiments value is not a JSON object of objects")
    return value
