"""What refresh and train-ranker train on: the base data (RECSYS_DATA_PATH, optional) plus the lake.

Lake events (ingested from the API's event log) join the base interactions within
`data_window_days` of the newest row; exact repeats (same user, item, time and event) count once.
The result says how many rows came from each source, and the newest lake event id it includes (the
micro-batch update folds in only what came after it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from recsys.config import Settings, lake_dir
from recsys.data.lake import Lake, utc_day
from recsys.data.loaders import ColumnMap, Dataset, load_dataset
from recsys.data.schema import INTERACTION_SCHEMA, ValidationReport, drop_exact_duplicates
from recsys.errors import DataValidationError

log = logging.getLogger(__name__)


@dataclass
class TrainingData:
    dataset: Dataset
    rows_base: int  # base rows kept (inside the window)
    rows_lake: int  # lake rows kept (inside the window, not repeating a base row)
    duplicates: int  # rows dropped as exact repeats across or within the sources
    lake_events_upto: str | None  # newest lake event id read (None: the lake had none)
    window_start: int | None = None  # unix seconds; None when no window applies


def load_training_data(settings: Settings, data: str | Path | Dataset | None = None, *,
                       columns: ColumnMap | None = None, lake: Lake | None = None) -> TrainingData:
    """Base data (`data`, else settings.data_path, else none) + the lake, windowed and deduplicated."""
    data = data if data is not None else settings.data_path
    base = data if isinstance(data, Dataset) or data is None else load_dataset(data, columns)
    lake = lake or Lake(lake_dir(settings))
    events = lake.read_events()
    upto = events["id"][-1] if events.height else None
    lake_rows = events.select(list(INTERACTION_SCHEMA))
    if base is None and lake_rows.height == 0:
        raise DataValidationError(f"no training data: RECSYS_DATA_PATH is not set (or --data not given) and the "
                                  f"lake at {lake.root} holds no events (run `recsys ingest` after traffic)")
    base_rows = base.interactions.select(list(INTERACTION_SCHEMA)) if base is not None else \
        pl.DataFrame(schema=INTERACTION_SCHEMA)
    window_start = None
    if settings.data_window_days is not None:
        newest = max(int(f["timestamp"].max()) for f in (base_rows, lake_rows) if f.height)  # type: ignore[arg-type]
        window_start = newest - int(settings.data_window_days * 86400)
        base_rows = base_rows.filter(pl.col("timestamp") >= window_start)
        lake_rows = lake_rows.filter(pl.col("timestamp") >= window_start)
    n_base, n_lake_in = base_rows.height, lake_rows.height
    combined = drop_exact_duplicates(pl.concat([base_rows, lake_rows.cast(INTERACTION_SCHEMA)]))  # type: ignore[arg-type]
    duplicates = n_base + n_lake_in - combined.height
    n_base_kept = drop_exact_duplicates(base_rows).height
    n_lake = combined.height - n_base_kept
    if combined.height == 0:
        raise DataValidationError("no training data inside the window", path=str(data) if data else None)
    source = " + ".join(s for s in (base.source if base is not None else None,
                                    f"lake {lake.root}" if n_lake else None) if s)
    report = ValidationReport(rows_in=n_base + n_lake_in, rows_out=combined.height, duplicates_dropped=duplicates,
                              notes=list(base.report.notes) if base is not None else [])
    dataset = Dataset(combined, base.items if base is not None else None, source,
                      base.format if base is not None else "lake", report)
    report.notes.append(f"{n_base_kept} rows from the base data, {n_lake} from the lake"
                                + (f" (window from {utc_day(window_start)})" if window_start is not None else ""))
    log.info("event=training_data rows_base=%d rows_lake=%d duplicates=%d lake_events_upto=%s window_start=%s",
             n_base_kept, n_lake, duplicates, upto, window_start)
    return TrainingData(dataset, n_base_kept, n_lake, duplicates, upto, window_start)

