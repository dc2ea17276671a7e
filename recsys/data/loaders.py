"""Loaders for interaction logs (Parquet/CSV) and MovieLens directories into the one schema.

A directory path is enough: the format is detected from the files it holds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from recsys.config import DataConfig
from recsys.data.schema import ValidationReport, validate_interactions, validate_items
from recsys.errors import DataValidationError

log = logging.getLogger(__name__)

ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]


@dataclass
class ColumnMap:
    """Names of the contract columns in a user's file (settings `RECSYS_DATA__…`, CLI --user-col etc.)."""

    user_id: str = "user_id"
    item_id: str = "item_id"
    timestamp: str = "timestamp"
    event: str = "event"
    weight: str = "weight"

    @classmethod
    def from_config(cls, config: DataConfig) -> ColumnMap:
        return cls(config.user_col, config.item_col, config.time_col, config.event_col, config.weight_col)

    def rename(self, df: pl.DataFrame, path: str = "") -> pl.DataFrame:
        required = {"user_id", "item_id", "timestamp"}
        absent = [(dst, src) for dst, src in vars(self).items()
                  if src != dst and src not in df.columns and (dst in required or dst in df.columns)]
        if absent:
            dst, src = absent[0]
            raise DataValidationError(
                f"column {src!r} (mapped to {dst}) is not in the file; found {df.columns}: fix the mapping "
                f"(--{_FLAG[dst]} or RECSYS_DATA__{_FLAG[dst].upper().replace('-', '_')})",
                path=path or None, column=src)
        mapping = {src: dst for dst, src in vars(self).items() if src in df.columns and src != dst}
        clash = [dst for dst in mapping.values() if dst in df.columns and dst not in mapping]
        if clash:
            raise DataValidationError(
                f"column {clash[0]!r} already exists and another column is mapped onto it; "
                "drop one or map both", path=path or None, column=clash[0])
        return df.rename(mapping)


_FLAG = {"user_id": "user-col", "item_id": "item-col", "timestamp": "time-col", "event": "event-col",
         "weight": "weight-col"}


@dataclass
class Dataset:
    """Validated interactions (+ optional item table) and how they were read."""

    interactions: pl.DataFrame
    items: pl.DataFrame | None
    source: str
    format: str
    report: ValidationReport = field(default_factory=ValidationReport)

    @property
    def n_users(self) -> int:
        return int(self.interactions["user_id"].n_unique())

    @property
    def n_items(self) -> int:
        return int(self.interactions["item_id"].n_unique())

    def with_interactions(self, interactions: pl.DataFrame) -> Dataset:
        return Dataset(interactions, self.items, self.source, self.format, self.report)


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn parser/IO failures into DataValidationError naming the file (an empty file says so)."""
    if path.is_file() and path.stat().st_size == 0:
        raise DataValidationError("file is empty (no header, no rows)", path=str(path), bad_rows=0)
    try:
        yield
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"cannot read table: {exc}", path=str(path)) from exc


def _read_table(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv", ".tsv", ".txt"):
        raise DataValidationError(f"unsupported file type {suffix!r} (use .parquet, .csv or .tsv)",
                                  path=str(path))
    with _reading(path):
        if suffix == ".parquet":
            return pl.read_parquet(path)
        sep = "\t" if suffix == ".tsv" else ","
        return pl.read_csv(path, separator=sep, infer_schema_length=10_000)


def _read_ml100k(root: Path) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    # Read every field as text: validation then counts bad values instead of the parser failing.
    with _reading(root / "u.data"):
        ratings = pl.read_csv(root / "u.data", separator="\t", has_header=False,
                              new_columns=["user_id", "item_id", "weight", "timestamp"], infer_schema=False)
    ratings = ratings.with_columns(pl.lit("rating").alias("event"))
    items = None
    item_path = root / "u.item"
    if item_path.exists():
        raw = item_path.read_bytes().decode("latin-1")
        rows = [line.split("|") for line in raw.splitlines() if line.strip()]
        short = sum(1 for r in rows if len(r) < 2)
        if short:
            raise DataValidationError("expected '|'-separated fields: item id, title, ..., 19 genre flags",
                                      path=str(item_path), bad_rows=short)
        ids, titles, cats = [], [], []
        for r in rows:
            flags = r[5:5 + len(ML100K_GENRES)]
            ids.append(r[0])
            titles.append(r[1])
            cats.append([g for g, f in zip(ML100K_GENRES, flags, strict=False) if f.strip() == "1"])
        items = pl.DataFrame({"item_id": ids, "title": titles, "categories": cats},
                             schema={"item_id": pl.String, "title": pl.String,
                                     "categories": pl.List(pl.String)})
    return ratings, items


def _read_double_colon(path: Path, names: list[str]) -> pl.DataFrame:
    # ml-1m uses "::" which polars' single-byte separator cannot split; latin-1 titles.
    with _reading(path):
        text = path.read_bytes().decode("latin-1")
    rows = [line.split("::") for line in text.splitlines() if line.strip()]
    bad = sum(1 for r in rows if len(r) != len(names))
    if bad:
        raise DataValidationError(f"expected {len(names)} '::'-separated fields ({', '.join(names)})",
                                  path=str(path), bad_rows=bad)
    return pl.DataFrame({n: [r[i] for r in rows] for i, n in enumerate(names)},
                        schema={n: pl.String for n in names})


def _read_ml1m(root: Path) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    # Fields stay text: validation converts them and counts the rows that do not convert.
    ratings = _read_double_colon(root / "ratings.dat", ["user_id", "item_id", "weight", "timestamp"])
    ratings = ratings.with_columns(pl.lit("rating").alias("event"))
    items = None
    if (root / "movies.dat").exists():
        items = _read_double_colon(root / "movies.dat", ["item_id", "title", "genres"])
    return ratings, items


def _read_ml_latest(root: Path) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    with _reading(root / "ratings.csv"):
        ratings = pl.read_csv(root / "ratings.csv",
                              schema_overrides={"userId": pl.String, "movieId": pl.String})
    missing = [c for c in ("userId", "movieId", "rating", "timestamp") if c not in ratings.columns]
    if missing:
        raise DataValidationError(f"ml-latest ratings.csv lacks column(s) {missing}; found {ratings.columns}",
                                  path=str(root / "ratings.csv"), column=missing[0], bad_rows=ratings.height)
    ratings = ratings.rename({"userId": "user_id", "movieId": "item_id", "rating": "weight"}).with_columns(
        pl.lit("rating").alias("event"))
    items = None
    if (root / "movies.csv").exists():
        with _reading(root / "movies.csv"):
            items = pl.read_csv(root / "movies.csv", schema_overrides={"movieId": pl.String}).rename(
                {"movieId": "item_id"}, strict=False)
        if "genres" in items.columns:
            items = items.with_columns(pl.col("genres").str.replace_all(r"\(no genres listed\)", ""))
    return ratings, items


def detect_format(path: Path) -> str:
    """Name the format of `path`: ml-100k, ml-1m, ml-latest, directory, or table."""
    if path.is_file():
        return "table"
    if (path / "u.data").exists():
        return "ml-100k"
    if (path / "ratings.dat").exists():
        return "ml-1m"
    if (path / "ratings.csv").exists():
        return "ml-latest"
    for name in ("interactions.parquet", "interactions.csv"):
        if (path / name).exists():
            return "directory"
    raise DataValidationError(
        "unrecognised data directory: expected u.data (ml-100k), ratings.dat (ml-1m), ratings.csv "
        "(ml-latest) or interactions.parquet/.csv (+ optional items.parquet/.csv)", path=str(path))


def load_dataset(path: str | Path, columns: ColumnMap | None = None, *, now: float | None = None) -> Dataset:
    """Read and validate interactions (and items when present) from a file or a directory.

    `columns` maps the user's column names onto the contract's (Parquet/CSV tables and directories
    only; the MovieLens layouts are read by name).
    """
    p = Path(path)
    if not p.exists():
        raise DataValidationError("path does not exist", path=str(p))
    fmt = detect_format(p)
    items: pl.DataFrame | None = None
    items_path = str(p)
    if fmt == "ml-100k":
        raw, items = _read_ml100k(p)
        src, items_path = p / "u.data", str(p / "u.item")
    elif fmt == "ml-1m":
        raw, items = _read_ml1m(p)
        src, items_path = p / "ratings.dat", str(p / "movies.dat")
    elif fmt == "ml-latest":
        raw, items = _read_ml_latest(p)
        src, items_path = p / "ratings.csv", str(p / "movies.csv")
    elif fmt == "directory":
        src = p / "interactions.parquet" if (p / "interactions.parquet").exists() else p / "interactions.csv"
        raw = _read_table(src)
        for name in ("items.parquet", "items.csv"):
            if (p / name).exists():
                items = _read_table(p / name)
                items_path = str(p / name)
                break
    else:
        src = p
        raw = _read_table(p)
    if columns is not None and fmt in ("table", "directory"):  # MovieLens layouts have their own names
        raw = columns.rename(raw, str(src))
    interactions, report = validate_interactions(raw, str(src), now=now)
    if items is not None:
        items = validate_items(items, items_path)
    log.info("event=dataset_loaded path=%s format=%s rows=%d users=%d items=%d", p, fmt,
             interactions.height, interactions["user_id"].n_unique(), interactions["item_id"].n_unique())
    return Dataset(interactions, items, str(p), fmt, report)
