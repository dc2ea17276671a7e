"""Drift of served ranker features against the ranker's training reference (evidently's DataDriftPreset).

Inputs (contract with the ranker, through the artifact registry): the promoted (CURRENT) model version,
its manifest's "features", and its `reference.parquet`, a sample of its training feature rows. The
current side is the feature log of that same model version over the last `window_hours` (rows of
other versions have other features or other training data).

Verdicts: "no_model" (nothing to compare with), "insufficient_data" (fewer than `min_rows` recent rows:
no verdict, so no false alarm), "no_drift", "drift" (drifted share > threshold: retrain).
By default each feature gets a two-sample K-S test on at most `drift.sample_rows` rows per side (see
DriftConfig for why), so the per-feature verdict is a p-value against 0.05.
evidently is imported inside `compare_features`: it takes seconds to import.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.artifacts import ArtifactRegistry, registry_for
from recsys.config import DriftConfig, Settings
from recsys.errors import ArtifactError
from recsys.monitoring.feature_log import read_feature_log
from recsys.ranking.model import REFERENCE_FILE
from recsys.store import Store

log = logging.getLogger(__name__)

NO_MODEL = "no_model"
INSUFFICIENT_DATA = "insufficient_data"
NO_DRIFT = "no_drift"
REFERENCE_COLLECTED = "reference_collected"
SERVED_REFERENCE = "served_reference.parquet"
DRIFT = "drift"

# evidently tests whose score is a p-value (drift when score <= threshold), by display name (auto-chosen)
# and by name (configured); the others are distances.
_P_VALUE_TESTS = {"K-S p_value", "chi-square p_value", "Z-test p_value", "Anderson-Darling",
                  "Cramer-von Mises", "Epps-Singleton", "Fisher's Exact test", "g_test",
                  "Mann-Whitney U-rank test", "t_test", "empirical_mmd",
                  "ks", "chisquare", "z", "anderson", "cramer_von_mises", "es", "fisher_exact", "mannw"}
_MISSING = "missing from the served feature log"


@dataclass
class FeatureDrift:
    """One feature's verdict. `p_value` is the test's own when it is a p-value test, else a two-sample
    K-S p-value given for information (`p_value_test` says which); `drifted` follows `test` only."""

    feature: str
    test: str
    score: float | None
    threshold: float | None
    drifted: bool
    p_value: float | None
    p_value_test: str | None


@dataclass
class DriftResult:
    status: str
    message: str
    model_version: str | None = None
    checked_at: float = field(default_factory=time.time)
    window_hours: float = 0.0
    threshold: float = 0.0
    min_rows: int = 0
    reference_rows: int = 0
    current_rows: int = 0  # after the per-user cap
    current_users: int = 0
    logged_rows: int = 0  # before the per-user cap
    compared_rows: tuple[int, int] = (0, 0)  # (reference, current) after sampling to `sample_rows`
    n_features: int = 0
    drifted_count: int = 0
    drifted_share: float | None = None
    features: list[FeatureDrift] = field(default_factory=list)
    retrain: bool = False
    reason: str | None = None
    html_path: str | None = None
    json_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_reference(registry: ArtifactRegistry, version: str) -> tuple[pd.DataFrame, list[str]]:
    """The training reference sample and the model's ordered feature names; checks they agree."""
    features = registry.model_manifest(version).features
    if not registry.has_model_file(version, REFERENCE_FILE):
        raise ArtifactError(f"model {version} has no drift reference {REFERENCE_FILE}")
    reference = pd.read_parquet(io.BytesIO(registry.model_file(version, REFERENCE_FILE)))
    missing = [f for f in features if f not in reference.columns]
    if missing:
        raise ArtifactError(f"the drift reference of model {version} lacks manifest features {missing}")
    return reference[features].astype(float), features


def _finite(value: object) -> float | None:
    """JSON has no NaN: a score evidently could not compute is reported as null."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _ks_p_value(reference: pd.Series, current: pd.Series) -> float | None:
    from scipy.stats import ks_2samp

    ref, cur = reference.dropna().to_numpy(), current.dropna().to_numpy()
    if ref.size == 0 or cur.size == 0:
        return None
    return _finite(ks_2samp(ref, cur).pvalue)


def compare_features(reference: pd.DataFrame, current: pd.DataFrame, features: list[str], config: DriftConfig,
                     *, html_path: Path | None = None) -> list[FeatureDrift]:
    """Run evidently's DataDriftPreset on `features` (all numerical); optionally save its HTML report."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    present = [f for f in features if f in current.columns and current[f].notna().any()]
    definition = DataDefinition(numerical_columns=present)
    preset = DataDriftPreset(columns=present, drift_share=config.threshold, num_method=config.num_method,
                             num_threshold=config.num_threshold)
    out: list[FeatureDrift] = [FeatureDrift(f, _MISSING, None, None, True, None, None)
                               for f in features if f not in present]
    if not present:
        return out
    def dataset(frame: pd.DataFrame) -> Dataset:
        return Dataset.from_pandas(frame[present].reset_index(drop=True), data_definition=definition)

    snapshot = Report([preset], include_tests=True).run(current_data=dataset(current),
                                                        reference_data=dataset(reference))
    body = snapshot.dict()
    failed = {t["metric_config"]["metric_id"]: t["status"] == "FAIL" for t in body["tests"]
              if t.get("id") == "drift"}
    by_column: dict[str, FeatureDrift] = {}
    for metric in body["metrics"]:
        cfg = metric.get("config", {})
        if not str(cfg.get("type", "")).endswith("ValueDrift"):
            continue
        column, test = str(cfg["column"]), str(cfg.get("method"))
        score = _finite(metric["value"])
        if test in _P_VALUE_TESTS:
            p_value, p_test = score, test
        else:
            p_value, p_test = _ks_p_value(reference[column], current[column]), "K-S p_value"
        by_column[column] = FeatureDrift(column, test, score, cfg.get("threshold"),
                                         bool(failed.get(metric["id"], False)), p_value, p_test)
    out.extend(by_column[f] for f in present if f in by_column)
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html_path))
    order = {f: i for i, f in enumerate(features)}
    return sorted(out, key=lambda d: order[d.feature])


def cap_per_user(rows: pd.DataFrame, max_rows: int, *, newest: bool = True) -> pd.DataFrame:
    """At most `max_rows` rows per user (the newest, or the oldest), in time order: one client flooding
    the write endpoints counts as one user, not as thousands of rows."""
    if rows.empty or "user_id" not in rows.columns:
        return rows
    ordered = rows.sort_values("ts", kind="stable")
    by_user = ordered.groupby("user_id", sort=False)
    return (by_user.tail(max_rows) if newest else by_user.head(max_rows)).sort_values("ts", kind="stable")


def _users(rows: pd.DataFrame) -> int:
    return int(rows["user_id"].nunique()) if "user_id" in rows.columns and not rows.empty else 0


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most `n` rows, drawn uniformly with a fixed seed (same data, same verdict)."""
    return frame if len(frame) <= n else frame.sample(n=n, random_state=seed)


def default_report_paths(settings: Settings, now: float) -> tuple[Path, Path]:
    root = settings.drift.report_dir or Path(settings.artifacts_dir) / "reports" / "drift"
    stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return root / f"drift_{stamp}.html", root / f"drift_{stamp}.json"


def prune_reports(report_dir: Path, keep: int) -> None:
    """Keep the newest `keep` report pairs (an HTML report is several MB)."""
    for suffix in ("html", "json"):
        files = sorted(report_dir.glob(f"drift_*.{suffix}"))
        for old in files[:-keep]:
            old.unlink(missing_ok=True)


def check_drift(settings: Settings, store: Store, *, now: float | None = None,
                html_path: Path | None = None, json_path: Path | None = None,
                registry: ArtifactRegistry | None = None) -> DriftResult:
    """Compare the recent feature log with the current model's reference; write JSON (+ HTML on a verdict)."""
    cfg = settings.drift
    registry = registry or registry_for(settings, store)
    now = time.time() if now is None else now
    base: dict[str, Any] = {"checked_at": now, "window_hours": cfg.window_hours, "threshold": cfg.threshold,
                            "min_rows": cfg.min_rows}
    version = registry.current_model()
    if version is None:
        result = DriftResult(NO_MODEL, "no ranker model yet (none promoted): nothing to compare; "
                             "run `recsys train-ranker` first", **base)
        return _finish(result, json_path=json_path)
    if cfg.reference == "served":
        served = _served_reference(settings, store, registry, version, base)
        if isinstance(served, DriftResult):
            return _finish(served, json_path=json_path)
        reference, features, reference_end = served
        since = max(now - cfg.window_hours * 3600.0, reference_end)  # never compare rows with themselves
    else:
        reference, features = load_reference(registry, version)
        since = now - cfg.window_hours * 3600.0
    current = read_feature_log(store, since_ts=since, model_version=version)
    if len(current) and "ts" in current.columns:
        current = current[current["ts"] > since] if cfg.reference == "served" else current
    logged = len(current)
    current = cap_per_user(current, cfg.max_rows_per_user)
    users = _users(current)
    base.update(model_version=version, reference_rows=len(reference), current_rows=len(current),
                n_features=len(features), current_users=users, logged_rows=logged)
    if len(current) < cfg.min_rows or users < cfg.min_users:
        result = DriftResult(INSUFFICIENT_DATA, f"insufficient data: {len(current)} rows of model {version} from "
                             f"{users} distinct users in the last {cfg.window_hours:g} h ({logged} logged, at most "
                             f"{cfg.max_rows_per_user} counted per user), need {cfg.min_rows} rows from "
                             f"{cfg.min_users} users; no verdict", **base)
        return _finish(result, json_path=json_path)
    if len(reference) == 0:
        raise ArtifactError(f"the drift reference of model {version} is empty")
    drifts = compare_features(_sample(reference, cfg.sample_rows, settings.seed),
                              _sample(current, cfg.sample_rows, settings.seed + 1), features, cfg,
                              html_path=html_path)
    drifted = [d.feature for d in drifts if d.drifted]
    share = len(drifted) / len(features) if features else 0.0
    retrain = share > cfg.threshold
    listed = ", ".join(drifted[:10]) + (" …" if len(drifted) > 10 else "")
    if retrain:
        reason = (f"drifted share {share:.2f} > threshold {cfg.threshold:.2f} "
                  f"({len(drifted)}/{len(features)} features: {listed}) over {len(current)} rows of model "
                  f"{version}")
        message = f"drift: {reason}"
    else:
        reason = None
        message = (f"no drift: drifted share {share:.2f} <= threshold {cfg.threshold:.2f} "
                   f"({len(drifted)}/{len(features)} features{': ' + listed if drifted else ''})")
    base["compared_rows"] = (min(len(reference), cfg.sample_rows), min(len(current), cfg.sample_rows))
    result = DriftResult(DRIFT if retrain else NO_DRIFT, message, drifted_count=len(drifted),
                         drifted_share=share, features=drifts, retrain=retrain, reason=reason,
                         html_path=str(html_path) if html_path is not None else None, **base)
    return _finish(result, json_path=json_path)


def _served_reference(settings: Settings, store: Store, registry: ArtifactRegistry, version: str,
                      base: dict[str, Any]) -> tuple[pd.DataFrame, list[str], float] | DriftResult:
    """The model's first served rows, frozen into `served_reference.parquet` once there are enough.

    Returns (reference, features, last reference timestamp), or a no-verdict result while collecting.
    """
    cfg = settings.drift
    features = registry.model_manifest(version).features
    if not registry.has_model_file(version, SERVED_REFERENCE):
        # The first rows served, at most max_rows_per_user per user: a flood cannot become "normal".
        rows = cap_per_user(read_feature_log(store, model_version=version), cfg.max_rows_per_user, newest=False)
        first = rows.head(cfg.reference_rows)
        users = _users(first)
        if len(first) < cfg.reference_rows or users < cfg.min_users:
            return DriftResult(INSUFFICIENT_DATA, f"collecting the served reference of model {version}: "
                               f"{len(first)} of {cfg.reference_rows} rows from {users} of {cfg.min_users} distinct "
                               "users logged; no verdict yet",
                               model_version=version, current_rows=len(rows), n_features=len(features), **base)
        buf = io.BytesIO()
        first[["ts", *features]].to_parquet(buf, index=False)
        registry.add_model_file(version, SERVED_REFERENCE, buf.getvalue())
        log.info("event=served_reference_frozen model_version=%s rows=%d", version, len(first))
        return DriftResult(REFERENCE_COLLECTED, f"froze the first {len(first)} served rows of model {version} "
                           "as its drift reference; the next check compares against them",
                           model_version=version, reference_rows=len(first), n_features=len(features), **base)
    frozen = pd.read_parquet(io.BytesIO(registry.model_file(version, SERVED_REFERENCE)))
    missing = [f for f in features if f not in frozen.columns]
    if missing:
        raise ArtifactError(f"the served reference of model {version} lacks features {missing}")
    return frozen[features].astype(float), features, float(frozen["ts"].max())


def _finish(result: DriftResult, *, json_path: Path | None) -> DriftResult:
    if json_path is not None:
        result.json_path = str(json_path)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False, default=_json_default))
    log.info("event=drift_checked status=%s model=%s rows=%d share=%s retrain=%s", result.status,
             result.model_version, result.current_rows, result.drifted_share, result.retrain)
    return result


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
