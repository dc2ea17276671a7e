"""Sampled log of the feature vectors the online ranker scored, for the drift check.

Row format (the contract with the serving path), one JSON object per entry of the store's feature
log (`store.feature_log`), newest last, capped:

    {"ts": float, "model_version": str, "user_id": str, "features": {name: float, ...}}

Non-finite values are written as null (JSON has no NaN) and read back as NaN.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence

import numpy as np
import orjson
import pandas as pd

from recsys.store import Store

log = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = 100_000
META_COLUMNS = ("ts", "model_version", "user_id")


def encode_feature_rows(model_version: str, user_id: str, names: Sequence[str], rows: np.ndarray,
                        ts: float) -> list[bytes]:
    """One JSON row per line of `rows` (n × len(names)), in the format of the module docstring.

    orjson writes NaN and infinities as null, as the format asks, and is ~3x cheaper than json with
    a per-value cleaning pass: the API encodes the rows it samples on the request (FeatureLogSink).
    """
    return [orjson.dumps({"ts": ts, "model_version": model_version, "user_id": user_id,
                          "features": dict(zip(names, row, strict=True))})
            for row in rows.astype(np.float64).tolist()]


def log_feature_rows(store: Store, model_version: str, user_id: str, names: Sequence[str],
                     matrix: np.ndarray, rate: float, rng: np.random.Generator, *,
                     max_rows: int = DEFAULT_MAX_ROWS, ts: float | None = None) -> int:
    """Append each row of `matrix` (n_rows × len(names)) with probability `rate`; returns rows written.

    Synchronous (batch jobs, tests, benchmarks); the API uses `FeatureLogSink`, which samples the same
    way but writes from a background thread. Sampling per row keeps the log an unbiased sample of
    served rows; one list append per call keeps it to one store round trip.
    """
    if rate <= 0.0 or matrix.shape[0] == 0:
        return 0
    if matrix.ndim != 2 or matrix.shape[1] != len(names):
        raise ValueError(f"feature matrix shape {matrix.shape} does not match {len(names)} feature names")
    keep = np.flatnonzero(rng.random(matrix.shape[0]) < rate) if rate < 1.0 else np.arange(matrix.shape[0])
    if keep.size == 0:
        return 0
    payload = encode_feature_rows(model_version, user_id, names, matrix[keep], time.time() if ts is None else ts)
    store.feature_log.append(payload, max_rows)
    return len(payload)


def read_feature_log(store: Store, since_ts: float | None = None,
                     model_version: str | None = None) -> pd.DataFrame:
    """The logged rows as a pandas DataFrame: ts, model_version, user_id, then one column per feature.

    pandas because its one consumer, evidently, takes pandas. Rows of models with other feature sets
    leave NaN in the columns they lack; filter by `model_version` to compare like with like.
    """
    meta: dict[str, list[object]] = {c: [] for c in META_COLUMNS}
    features: list[dict[str, float | None]] = []
    bad = 0
    for raw in store.feature_log.rows():
        try:
            row = json.loads(raw)
            ts = float(row["ts"])
            version = str(row["model_version"])
            feats = row["features"]
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        if since_ts is not None and ts < since_ts:
            continue
        if model_version is not None and version != model_version:
            continue
        meta["ts"].append(ts)
        meta["model_version"].append(version)
        meta["user_id"].append(str(row.get("user_id", "")))
        features.append(feats)
    if bad:
        log.warning("event=feature_log_bad_rows count=%d", bad)
    frame = pd.DataFrame(meta)
    if not features:
        return frame
    feats_frame = pd.DataFrame.from_records(features, index=frame.index).astype(float)
    return pd.concat([frame, feats_frame], axis=1)


def row_user_id(raw: bytes) -> str | None:
    """The user id of one encoded row (None when it does not decode): forgetting a user."""
    try:
        user = orjson.loads(raw).get("user_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return user if isinstance(user, str) else None
