"""Compact binary encoding of per-user candidate lists and histories (no JSON, no pickle).

Layout (little-endian):  magic u8 | flags u8 | n u16 | n_primary u16 | indices (u16 or u32) x n
                         | scores f16 x n (candidates only)
`n_primary` counts the leading entries from the primary source (ALS); the rest are popularity fill.
Item indices are internal to one artifact version and never leave it.
"""

from __future__ import annotations

import struct

import numpy as np

from recsys.errors import ArtifactError

MAGIC_CANDIDATES = 0xC1
MAGIC_INDICES = 0xA1
_WIDE = 0x01
_HEADER = struct.Struct("<BBHH")


def _index_dtype(indices: np.ndarray) -> tuple[np.dtype, int]:
    if indices.size and int(indices.max()) >= 65535:
        return np.dtype("<u4"), _WIDE
    return np.dtype("<u2"), 0


def encode_candidates(indices: np.ndarray, scores: np.ndarray, n_primary: int | None = None) -> bytes:
    """Pack item indices and float16 scores into one value (~4 bytes/candidate below 65k items)."""
    if indices.shape != scores.shape or indices.ndim != 1:
        raise ValueError("indices and scores must be 1-d arrays of equal length")
    n = int(indices.size)
    dtype, flags = _index_dtype(indices)
    primary = n if n_primary is None else int(n_primary)
    head = _HEADER.pack(MAGIC_CANDIDATES, flags, n, primary)
    return head + indices.astype(dtype).tobytes() + np.asarray(scores, dtype="<f2").tobytes()


def decode_candidates(blob: bytes) -> tuple[np.ndarray, np.ndarray, int]:
    """Inverse of encode_candidates: (indices int64, scores float32, n_primary)."""
    if len(blob) < _HEADER.size:
        raise ArtifactError("candidate blob too short")
    magic, flags, n, primary = _HEADER.unpack_from(blob)
    if magic != MAGIC_CANDIDATES:
        raise ArtifactError(f"not a candidate blob (magic {magic:#x})")
    width = 4 if flags & _WIDE else 2
    expected = _HEADER.size + n * (width + 2)
    if len(blob) != expected:
        raise ArtifactError(f"candidate blob has {len(blob)} bytes, expected {expected}")
    off = _HEADER.size
    idx = np.frombuffer(blob, dtype="<u4" if width == 4 else "<u2", count=n, offset=off).astype(np.int64)
    scores = np.frombuffer(blob, dtype="<f2", count=n, offset=off + n * width).astype(np.float32)
    return idx, scores, int(primary)


def encode_indices(indices: np.ndarray) -> bytes:
    """Pack a list of item indices (a user's history, most recent last)."""
    dtype, flags = _index_dtype(indices)
    return _HEADER.pack(MAGIC_INDICES, flags, int(indices.size), 0) + indices.astype(dtype).tobytes()


def decode_indices(blob: bytes) -> np.ndarray:
    if len(blob) < _HEADER.size:
        raise ArtifactError("index blob too short")
    magic, flags, n, _ = _HEADER.unpack_from(blob)
    if magic != MAGIC_INDICES:
        raise ArtifactError(f"not an index blob (magic {magic:#x})")
    width = 4 if flags & _WIDE else 2
    if len(blob) != _HEADER.size + n * width:
        raise ArtifactError("index blob length does not match its header")
    return np.frombuffer(blob, dtype="<u4" if width == 4 else "<u2", count=n,
                         offset=_HEADER.size).astype(np.int64)


def encode_index_rows(indptr: np.ndarray, indices: np.ndarray, start: int, stop: int) -> list[bytes]:
    """`encode_indices` of rows start..stop of a CSR-like (indptr, indices) pair, in one vectorised pass.

    Byte-identical to encoding each row alone (a row needing u32 goes through `encode_indices`).
    """
    lo, hi = int(indptr[start]), int(indptr[stop])
    lengths = np.diff(indptr[start:stop + 1]).astype(np.int64)
    values = np.asarray(indices[lo:hi])
    if values.size and int(values.max()) >= 65535:
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
