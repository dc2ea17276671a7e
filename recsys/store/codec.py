"""Compact binary encoding of a user's stored value (no JSON, no pickle): store layout 3.

One value per user and version holds everything the serving read needs for that user:

    magic u8 (0xD3) | width u8 | factors u16 | n_cand u16 | n_primary u16 | n_hist u16     (10 bytes)
    | user vector: scale float16, then int8 x factors (factor = q * scale, scale = max |factor| / 127)
    | item indices, `width` bits each, bit-packed in one stream padded to a whole byte: the n_cand
      candidates, then the n_hist history items (oldest first)

`width` is the number of bits the version's catalogue needs (11 for ml-100k's 1,682 items, 16 for
50,000 items, at most 24: 16.7M items), decided once per version by the writer (`index_width`), so a
user's value never depends on the batch it was encoded in. Candidates keep their published order (ALS
score order, then the popularity fill: `n_primary` counts the ALS ones). There are no stored scores:
the ALS score of a candidate is recomputed from the quantised user vector as item_factors[c] @ u, by
the same code offline (ranker training) and online (the cached candidate source), so both see the same
value. 32 factors cost 34 bytes where 100 float16 scores cost 200. Item indices are internal to one
artifact version and never leave it. Every value the store holds for a user is encoded and decoded
here, one user at a time or a whole batch of users at once.

Decoding never trusts the bytes: the header (magic, width, exact length) must agree with the value,
`n_items` (the serving bundle's catalogue size) bounds every index and the vector's scale must be finite
and non-negative;
anything else is a CorruptValueError. The checks are vectorised (a few µs: they run on every request).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from recsys.errors import CorruptValueError
from recsys.store.item_record import AVAILABILITY, ItemRecord

MAGIC_USER = 0xD3
MAX_WIDTH = 24  # bits per item index: catalogues up to 16,777,216 items
_HEADER = struct.Struct("<BBHHHH")
_SCALE = struct.Struct("<e")


def quantise_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 q [users, k], float16 scale [users]) of user vectors: symmetric, one scale per user.

    recsys.candidates.generate.quantise_vectors applies the same rule offline (the candidates room may
    not import the store): tests/unit/test_codec.py checks the two agree bit for bit. A row with a
    non-finite factor gets a NaN scale, which decoding refuses.
    """
    v = np.asarray(vectors, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        scale = (np.abs(v).max(axis=1, initial=0.0) / np.float32(127)).astype(np.float16)
        s32 = scale.astype(np.float32)[:, None]
        ok = np.isfinite(v).all(axis=1, keepdims=True) & (s32 > 0) & np.isfinite(s32)
        q = np.clip(np.rint(np.where(ok, v / np.where(ok, s32, 1), 0)), -127, 127).astype(np.int8)
    scale[~np.isfinite(v).all(axis=1)] = np.nan
    return q, scale


class UserValue(NamedTuple):
    """One user's decoded value (a NamedTuple: built on every request, cheaper than a dataclass)."""

    candidates: np.ndarray  # int64 item indices, published order
    n_primary: int  # the leading candidates from ALS (the rest: popularity fill)
    user_vector: np.ndarray  # float32: the ALS user factors as quantised (q * scale)
    history: np.ndarray  # int64 item indices, oldest first


def index_width(n_items: int) -> int:
    """Bits per item index for a catalogue of `n_items` (indices 0..n_items-1)."""
    width = max(1, (max(n_items, 1) - 1).bit_length())
    if width > MAX_WIDTH:
        raise ValueError(f"a catalogue of {n_items} items needs {width}-bit indices; the layout stores at most "
                         f"{MAX_WIDTH}")
    return width


def _packed_bytes(n: int, width: int) -> int:
    return (n * width + 7) // 8


def _pack_ragged(values: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """Rows of `values` (flat, row after row, lengths `lengths`) bit-packed at `width` bits, each row
    padded to a whole byte; returns the rows' bytes, concatenated in row order."""
    values = values.astype(np.uint32, copy=False)
    if width % 8 == 0:  # whole bytes (8, 16, 24 bits): little-endian bytes, no bit shuffling
        return values.astype("<u4").view(np.uint8).reshape(-1, 4)[:, :width // 8].reshape(-1)
    nbytes = (lengths * width + 7) // 8
    row_start_bit = 8 * (np.cumsum(nbytes) - nbytes)
    row = np.repeat(np.arange(lengths.size), lengths)
    within = np.arange(values.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    bit_pos = row_start_bit[row] + within * width
    shifts = np.arange(width, dtype=np.uint32)
    bits = np.zeros(int(nbytes.sum()) * 8, dtype=np.uint8)
    bits[(bit_pos[:, None] + shifts).reshape(-1)] = ((values[:, None] >> shifts) & 1).reshape(-1)
    return np.packbits(bits, bitorder="little")


@lru_cache(maxsize=4096)
def _bit_positions(n: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(byte, shift) of each of `n` packed indices: cached, decoding a request does no index arithmetic."""
    bit = np.arange(n, dtype=np.int64) * width
    return bit >> 3, (bit & 7).astype(np.uint32)


def _unpack(blob: bytes, offset: int, n: int, width: int) -> np.ndarray:
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if width == 16:
        return np.frombuffer(blob, dtype="<u2", count=n, offset=offset).astype(np.int64)
    if width == 8:
        return np.frombuffer(blob, dtype=np.uint8, count=n, offset=offset).astype(np.int64)
    nbytes = _packed_bytes(n, width)
    raw = blob[offset:offset + nbytes] + b"\0\0\0"  # 3 spare bytes: every index reads a whole 4-byte word
    # Overlapping little-endian 4-byte words starting at every byte; an index (<= 24 bits, shifted by
    # at most 7) always lies inside the word starting at its first byte.
    words = np.ndarray((nbytes,), dtype="<u4", buffer=raw, strides=(1,))
    byte, shift = _bit_positions(n, width)
    return ((words[byte] >> shift) & np.uint32((1 << width) - 1)).astype(np.int64)


def encode_user_rows(items: np.ndarray, n_primary: np.ndarray, vectors: np.ndarray, hist_indptr: np.ndarray,
                     hist_indices: np.ndarray, start: int, stop: int, *, width: int) -> list[bytes]:
    """The values of users start..stop, vectorised over the batch.

    `items` (users × n, -1 = no item; valid entries lead each row), `n_primary` and `vectors` are
    rows start..stop already; the histories are rows start..stop of the CSR-like (`hist_indptr`,
    `hist_indices`) pair. `width` is the version's (`index_width` of its catalogue).
    """
    if not 1 <= width <= MAX_WIDTH:
        raise ValueError(f"index width {width} outside 1..{MAX_WIDTH}")
    n_users = items.shape[0]
    if n_users == 0:
        return []
    k = vectors.shape[1]
    valid = items >= 0
    cand_len = valid.sum(axis=1).astype(np.int64)
    cand_values = items[valid]  # row-major: each row's valid items, in order
    lo, hi = int(hist_indptr[start]), int(hist_indptr[stop])
    hist_len = np.diff(hist_indptr[start:stop + 1]).astype(np.int64)
    hist_values = np.asarray(hist_indices[lo:hi])
    for name, values in (("candidate", cand_values), ("history", hist_values)):
        if values.size and (int(values.min()) < 0 or int(values.max()) >= 1 << width):
            raise ValueError(f"{name} item index outside 0..{(1 << width) - 1} ({width}-bit indices)")
    primary = np.minimum(np.asarray(n_primary, dtype=np.int64), cand_len)

    header = np.zeros(n_users, dtype=[("magic", "u1"), ("width", "u1"), ("k", "<u2"), ("n", "<u2"),
                                      ("primary", "<u2"), ("hist", "<u2")])
    header["magic"], header["width"], header["k"] = MAGIC_USER, width, k
    header["n"], header["primary"], header["hist"] = cand_len, primary, hist_len
    q, scale = quantise_rows(vectors)
    fixed = np.concatenate([header.view(np.uint8).reshape(n_users, _HEADER.size),
                            scale.astype("<f2").view(np.uint8).reshape(n_users, 2),
                            q.view(np.uint8).reshape(n_users, k)], axis=1)

    # One index stream per user: its candidates, then its history.
    index_len = cand_len + hist_len
    index_start = np.cumsum(index_len) - index_len
    stream = np.zeros(int(index_len.sum()), dtype=np.int64)
    _scatter(stream, index_start, cand_values, cand_len)
    _scatter(stream, index_start + cand_len, hist_values, hist_len)
    index_bytes = (index_len * width + 7) // 8
    sizes = fixed.shape[1] + index_bytes
    ends = np.cumsum(sizes)
    starts = ends - sizes
    buf = np.zeros(int(ends[-1]), dtype=np.uint8)
    buf[starts[:, None] + np.arange(fixed.shape[1])] = fixed
    _scatter(buf, starts + fixed.shape[1], _pack_ragged(stream, index_len, width), index_bytes)
    raw = buf.tobytes()
    return [raw[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]


def _scatter(buf: np.ndarray, dest: np.ndarray, flat: np.ndarray, lengths: np.ndarray) -> None:
    """Write row r of `flat` (rows concatenated, lengths `lengths`) at buf[dest[r]:] (one vectorised store)."""
    if flat.size == 0:
        return
    row = np.repeat(np.arange(lengths.size), lengths)
    within = np.arange(flat.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    buf[dest[row] + within] = flat


def encode_user(candidates: np.ndarray, n_primary: int, user_vector: np.ndarray, history: np.ndarray, *,
                width: int) -> bytes:
    """One user's value (see the module doc); `encode_user_rows` of a batch of one."""
    candidates = np.asarray(candidates, dtype=np.int64).reshape(1, -1)
    history = np.asarray(history, dtype=np.int64)
    return encode_user_rows(candidates, np.asarray([n_primary]), np.asarray(user_vector).reshape(1, -1),
                            np.asarray([0, history.size]), history, 0, 1, width=width)[0]


def decode_user(blob: bytes, n_items: int | None = None) -> UserValue:
    """Inverse of encode_user, every value checked (see the module doc)."""
    if len(blob) < _HEADER.size:
        raise CorruptValueError(f"user value too short ({len(blob)} bytes)")
    magic, width, k, n, primary, n_hist = _HEADER.unpack_from(blob)
    if magic != MAGIC_USER:
        raise CorruptValueError(f"not a user value of store layout 3 (magic {magic:#x})")
    if not 1 <= width <= MAX_WIDTH:
        raise CorruptValueError(f"user value says {width}-bit item indices")
    if primary > n:
        raise CorruptValueError(f"user value says {primary} primary candidates of {n}")
    index_at = _HEADER.size + 2 + k
    expected = index_at + _packed_bytes(n + n_hist, width)
    if len(blob) != expected:
        raise CorruptValueError(f"user value has {len(blob)} bytes, its header says {expected}")
    (scale,) = _SCALE.unpack_from(blob, _HEADER.size)
    if not (math.isfinite(scale) and scale >= 0):
        raise CorruptValueError(f"user value's vector scale is {scale}")
    vector = np.frombuffer(blob, dtype=np.int8, count=k, offset=_HEADER.size + 2).astype(np.float32) * np.float32(scale)
    indices = _unpack(blob, index_at, n + n_hist, width)
    if n_items is not None and indices.size and int(indices.max()) >= n_items:
        raise CorruptValueError(f"user value holds item index {int(indices.max())}, the catalogue has {n_items}")
    return UserValue(indices[:n], int(primary), vector, indices[n:])


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
