"""Every input format loads into the one schema with the right values; bad input is a clear error."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from recsys.data.loaders import ColumnMap, detect_format, load_dataset
from recsys.data.schema import INTERACTION_SCHEMA, ITEM_SCHEMA
from recsys.errors import DataValidationError

NOW = 2_000_000_000.0

# The one data set every fixture below encodes in its own format.
RATINGS = [  # user, item, rating, unix seconds
    ("1", "10", 4.0, 881_250_949),
    ("1", "20", 3.0, 881_250_950),
    ("2", "10", 5.0, 881_251_000),
    ("2", "30", 1.0, 881_251_100),
]
TITLES = {"10": "Alpha (1995)", "20": "Beta, The (1996)", "30": "Gamma (1997)"}
GENRES = {"10": ["Action", "Comedy"], "20": ["Drama"], "30": []}


def expected_interactions(event: str = "rating") -> pl.DataFrame:
    return pl.DataFrame(
        {"user_id": [r[0] for r in RATINGS], "item_id": [r[1] for r in RATINGS],
         "timestamp": [r[3] for r in RATINGS], "event": [event] * len(RATINGS),
         "weight": [r[2] for r in RATINGS]}, schema=INTERACTION_SCHEMA)


def expected_items() -> pl.DataFrame:
    return pl.DataFrame({"item_id": list(TITLES), "title": list(TITLES.values()),
                         "categories": [GENRES[i] for i in TITLES]}, schema=ITEM_SCHEMA)


def by_key(df: pl.DataFrame, *key: str) -> pl.DataFrame:
    return df.sort(*key)


def write_ml100k(root: Path) -> Path:
    from recsys.data.loaders import ML100K_GENRES

    root.mkdir()
    (root / "u.data").write_text("".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in RATINGS))
    lines = []
    for item, title in TITLES.items():
        flags = ["1" if g in GENRES[item] else "0" for g in ML100K_GENRES]
        lines.append("|".join([item, title, "01-Jan-1995", "", "http://example.invalid/x", *flags]))
    (root / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return root


def write_ml1m(root: Path) -> Path:
    root.mkdir()
    (root / "ratings.dat").write_text("".join(f"{u}::{i}::{int(r)}::{t}\n" for u, i, r, t in RATINGS))
    (root / "movies.dat").write_bytes("".join(
        f"{i}::{title}::{'|'.join(GENRES[i]) or '(no genres listed)'}\n"
        for i, title in TITLES.items()).encode("latin-1"))
    return root


def write_ml_latest(root: Path) -> Path:
    root.mkdir()
    (root / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{i},{r},{t}\n" for u, i, r, t in RATINGS))
    (root / "movies.csv").write_text("movieId,title,genres\n" + "".join(
        f'{i},"{title}",{"|".join(GENRES[i]) or "(no genres listed)"}\n' for i, title in TITLES.items()))
    return root


def test_ml100k_directory(tmp_path: Path) -> None:
    ds = load_dataset(write_ml100k(tmp_path / "ml-100k"), now=NOW)
    assert ds.format == "ml-100k"
    assert_frame_equal(by_key(ds.interactions, "user_id", "item_id"), expected_interactions())
    assert ds.items is not None
    assert_frame_equal(by_key(ds.items, "item_id"), expected_items())


def test_ml1m_directory_with_double_colon(tmp_path: Path) -> None:
    ds = load_dataset(write_ml1m(tmp_path / "ml-1m"), now=NOW)
    assert ds.format == "ml-1m"
    assert_frame_equal(by_key(ds.interactions, "user_id", "item_id"), expected_interactions())
    assert ds.items is not None
    # ml-1m has no "(no genres listed)" convention: such a movie keeps it as its one genre.
    items = ds.items.with_columns(pl.col("categories").list.filter(pl.element() != "(no genres listed)"))
    assert_frame_equal(by_key(items, "item_id"), expected_items())


def test_ml_latest_directory(tmp_path: Path) -> None:
    ds = load_dataset(write_ml_latest(tmp_path / "ml-latest-small"), now=NOW)
    assert ds.format == "ml-latest"
    assert_frame_equal(by_key(ds.interactions, "user_id", "item_id"), expected_interactions())
    assert ds.items is not None
    assert_frame_equal(by_key(ds.items, "item_id"), expected_items())


def test_plain_csv_with_custom_columns(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("who,what,when,kind,score\n" + "".join(
        f"{u},{i},{t},rating,{r}\n" for u, i, r, t in RATINGS))
    with pytest.raises(DataValidationError, match="missing required column"):
        load_dataset(path, now=NOW)
    ds = load_dataset(path, ColumnMap(user_id="who", item_id="what", timestamp="when", event="kind",
                                      weight="score"), now=NOW)
    assert ds.format == "table" and ds.items is None
    assert_frame_equal(ds.interactions, expected_interactions())


def test_parquet_with_datetime_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    pl.DataFrame({
        "user_id": [int(r[0]) for r in RATINGS],  # integer ids become strings
        "item_id": [r[1] for r in RATINGS],
        "timestamp": [dt.datetime.fromtimestamp(r[3], tz=dt.timezone.utc).replace(tzinfo=None)
                      for r in RATINGS],
        "weight": [r[2] for r in RATINGS],
    }).write_parquet(path)
    ds = load_dataset(path, now=NOW)
    assert_frame_equal(ds.interactions, expected_interactions(event="interaction"))


def test_iso_string_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\n" + "".join(
        f"{u},{i},{dt.datetime.fromtimestamp(t, tz=dt.timezone.utc).isoformat()}\n"
        for u, i, _, t in RATINGS))
    ds = load_dataset(path, now=NOW)
    assert ds.interactions["timestamp"].to_list() == [r[3] for r in RATINGS]
    assert ds.interactions["weight"].to_list() == [1.0] * len(RATINGS)


def test_directory_format_with_item_table(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    expected_interactions("click").write_parquet(root / "interactions.parquet")
    expected_items().write_parquet(root / "items.parquet")
    ds = load_dataset(root, now=NOW)
    assert ds.format == "directory"
    assert_frame_equal(ds.interactions, expected_interactions("click"))
    assert ds.items is not None
    assert_frame_equal(ds.items, expected_items())


def test_directory_format_csv_items_with_pipe_categories(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    expected_interactions().write_csv(root / "interactions.csv")
    (root / "items.csv").write_text("item_id,title,category\n" + "".join(
        f'{i},"{t}",{"|".join(GENRES[i])}\n' for i, t in TITLES.items()))
    ds = load_dataset(root, now=NOW)
    assert_frame_equal(ds.interactions, expected_interactions())
    assert ds.items is not None
    assert_frame_equal(ds.items, expected_items())


def test_duplicates_are_dropped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "dups.csv"
    rows = "".join(f"{u},{i},{t},{r}\n" for u, i, r, t in RATINGS)
    path.write_text("user_id,item_id,timestamp,weight\n" + rows + rows.splitlines(keepends=True)[1] * 2)
    ds = load_dataset(path, now=NOW)
    assert ds.interactions.height == len(RATINGS)
    assert (ds.report.rows_in, ds.report.rows_out, ds.report.duplicates_dropped) == (6, 4, 2)
    assert any("dropped 2 exact duplicate rows" in note and str(path) in note for note in ds.report.notes)


def _csv(tmp_path: Path, text: str, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "column", "bad_rows", "what"), [
    ("user_id,item_id,weight\n1,10,1\n2,10,1\n3,10,1\n", "timestamp", 3, "missing required column"),
    ("user_id,item_id,timestamp\n,10,881250949\n1,10,881250949\n,20,881250949\n", "user_id", 2,
     "user_id has null values"),
    ("user_id,item_id,timestamp\n1,10,881250949000\n1,20,881250949\n2,10,881250950123\n", "timestamp", 2,
     "milliseconds?"),
    ("user_id,item_id,timestamp\n1,10,2020-01-01T00:00:00\n1,20,yesterday\n2,10,soon\n", "timestamp", 2,
     "neither unix seconds nor an ISO date-time"),
    ("user_id,item_id,timestamp\n1,10,1e300\n1,20,881250949\n", "timestamp", 1, "milliseconds?"),
    ("user_id,item_id,timestamp,weight\n1,10,881250949,1.5\n1,20,881250949,lots\n2,10,881250950,x\n"
     "2,20,881250950,\n", "weight", 2, "weight is not numeric"),
])
def test_validation_error_names_file_column_and_rows(tmp_path: Path, text: str, column: str, bad_rows: int,
                                                     what: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(DataValidationError) as info:
        load_dataset(path, now=NOW)
    message = str(info.value)
    assert what in message
    assert f"file={path}" in message
    assert f"column={column}" in message
    assert f"bad_rows={bad_rows}" in message
    assert (info.value.path, info.value.column, info.value.bad_rows) == (str(path), column, bad_rows)


def test_nan_timestamp_is_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "nan.parquet"
    pl.DataFrame({"user_id": ["1", "2"], "item_id": ["10", "10"],
                  "timestamp": [881_250_949.0, float("nan")]}).write_parquet(path)
    with pytest.raises(DataValidationError, match="NaN or infinite") as info:
        load_dataset(path, now=NOW)
    assert (info.value.column, info.value.bad_rows) == ("timestamp", 1)


def test_empty_file_and_header_only_file(tmp_path: Path) -> None:
    empty = _csv(tmp_path, "", "empty.csv")
    with pytest.raises(DataValidationError) as info:
        load_dataset(empty, now=NOW)
    message = str(info.value)
    assert "empty" in message and f"file={empty}" in message and "bad_rows=0" in message
    header = _csv(tmp_path, "user_id,item_id,timestamp\n", "header.csv")
    with pytest.raises(DataValidationError, match="no interactions") as info:
        load_dataset(header, now=NOW)
    assert f"file={header}" in str(info.value) and "bad_rows=0" in str(info.value)


def test_unknown_directory_and_missing_path(tmp_path: Path) -> None:
    unknown = tmp_path / "stuff"
    unknown.mkdir()
    (unknown / "notes.txt").write_text("hello")
    with pytest.raises(DataValidationError, match="unrecognised data directory") as info:
        load_dataset(unknown, now=NOW)
    assert f"file={unknown}" in str(info.value)
    with pytest.raises(DataValidationError, match="path does not exist"):
        load_dataset(tmp_path / "nowhere", now=NOW)
    with pytest.raises(DataValidationError, match="unsupported file type"):
        load_dataset(_csv(tmp_path, "a", "data.json"), now=NOW)


def test_malformed_movielens_files(tmp_path: Path) -> None:
    root = write_ml1m(tmp_path / "ml-1m")
    ratings = root / "ratings.dat"
    ratings.write_text(ratings.read_text() + "3::10::4\n3::20\n")
    with pytest.raises(DataValidationError, match="expected 4 '::'-separated fields") as info:
        load_dataset(root, now=NOW)
    assert (info.value.path, info.value.bad_rows) == (str(ratings), 2)

    root = write_ml100k(tmp_path / "ml-100k")
    (root / "u.data").write_text("1\t10\tfour\t881250949\n1\t20\t3\t881250949\n")
    with pytest.raises(DataValidationError, match="weight is not numeric") as info:
        load_dataset(root, now=NOW)
    assert (info.value.path, info.value.bad_rows) == (str(root / "u.data"), 1)


def test_column_map_onto_an_existing_column_is_an_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, "user_id,uid,item_id,timestamp\na,1,10,881250949\n")
    with pytest.raises(DataValidationError, match="'user_id' already exists"):
        load_dataset(path, ColumnMap(user_id="uid"), now=NOW)


def test_detect_format(tmp_path: Path) -> None:
    assert detect_format(write_ml100k(tmp_path / "a")) == "ml-100k"
    assert detect_format(write_ml1m(tmp_path / "b")) == "ml-1m"
    assert detect_format(write_ml_latest(tmp_path / "c")) == "ml-latest"
    assert detect_format(_csv(tmp_path, "x")) == "table"
