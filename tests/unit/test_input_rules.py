"""Files are held to the API's rules (ids, timestamps, events, weights): one definition, two entry points.

Before: a timestamp of 1e300 crashed the loader with a raw polars error, ids with a tab or a NUL
loaded from files though the API refuses them, negative weights and unknown event names passed
silently from files but were 422 over HTTP, `"k": true` was accepted as k = 1, and fractional-second
timestamps (1700000000.5) were rejected.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from api.schemas import Event, RecommendationRequest
from recsys.config import DataConfig
from recsys.data.loaders import ColumnMap, load_dataset
from recsys.data.schema import EVENT_NAMES, ID_MAX_LENGTH
from recsys.errors import DataValidationError

NOW = 1_700_100_000.0


def _parquet(tmp_path: Path, **columns: list[object]) -> Path:
    path = tmp_path / "data.parquet"
    pl.DataFrame(columns).write_parquet(path)
    return path


def _load_error(path: Path) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        load_dataset(path, now=NOW)
    return info.value


@pytest.mark.parametrize("value", [1e300, -1e300, 9.3e18, 1e19])
def test_huge_timestamps_are_a_validation_error_not_a_crash(tmp_path: Path, value: float) -> None:
    err = _load_error(_parquet(tmp_path, user_id=["u1", "u2"], item_id=["i1", "i2"],
                               timestamp=[1_700_000_000.0, value]))
    assert (err.column, err.bad_rows) == ("timestamp", 1)
    text = tmp_path / "big.csv"
    text.write_text(f"user_id,item_id,timestamp\nu1,i1,1700000000\nu2,i2,{value!r}\n")
    assert _load_error(text).column == "timestamp"


def test_fractional_timestamps_are_accepted_as_whole_seconds(tmp_path: Path) -> None:
    csv = tmp_path / "frac.csv"
    csv.write_text("user_id,item_id,timestamp\nu1,i1,1700000000.5\nu1,i2,1700000001.999\nu2,i1,\"1700000002.25\"\n")
    ds = load_dataset(csv, now=NOW)
    assert ds.interactions["timestamp"].to_list() == [1_700_000_000, 1_700_000_001, 1_700_000_002]
    quoted = tmp_path / "text.csv"  # numbers written as text in a string column
    quoted.write_text("user_id,item_id,timestamp\nu1,i1,1700000000.5\nu2,i2,2023-11-14T22:13:20Z\n")
    assert load_dataset(quoted, now=NOW).interactions["timestamp"].to_list() == [1_700_000_000, 1_700_000_000]


@pytest.mark.parametrize("bad", ["a\tb", "a\nb", "a\rb", "a\x00b", " ", "x" * (ID_MAX_LENGTH + 1)])
@pytest.mark.parametrize("column", ["user_id", "item_id"])
def test_ids_follow_the_api_rule_in_files(tmp_path: Path, bad: str, column: str) -> None:
    ids = {"user_id": ["u1", "u2"], "item_id": ["i1", "i2"]}
    ids[column] = [ids[column][0], bad]
    err = _load_error(_parquet(tmp_path, **ids, timestamp=[1_700_000_000, 1_700_000_001]))
    assert (err.column, err.bad_rows) == (column, 1)
    # ... and over HTTP the same id is a 422 (pydantic), the same rule:
    with pytest.raises(ValidationError):
        Event(user_id=bad if column == "user_id" else "u1", item_id=bad if column == "item_id" else "i1")


def test_unknown_event_names_and_negative_weights_are_refused_like_over_http(tmp_path: Path) -> None:
    err = _load_error(_parquet(tmp_path, user_id=["u1", "u2", "u3"], item_id=["i1", "i2", "i3"],
                               timestamp=[1_700_000_000] * 3, event=["click", "page_view", "page_view"]))
    assert (err.column, err.bad_rows) == ("event", 2) and "page_view" in str(err) and "purchase" in str(err)
    with pytest.raises(ValidationError, match="unknown event type"):
        Event(user_id="u1", item_id="i1", event="page_view")
    err = _load_error(_parquet(tmp_path, user_id=["u1", "u2"], item_id=["i1", "i2"],
                               timestamp=[1_700_000_000] * 2, weight=[1.0, -2.0]))
    assert (err.column, err.bad_rows) == ("weight", 1) and "negative" in str(err)
    ok = load_dataset(_parquet(tmp_path, user_id=["u1", "u2"], item_id=["i1", "i2"],
                               timestamp=[1_700_000_000] * 2, event=[EVENT_NAMES[0], None], weight=[0.0, 2.5]),
                      now=NOW)
    assert ok.interactions["event"].to_list() == [EVENT_NAMES[0], "interaction"]


def test_booleans_are_not_numbers_over_http() -> None:
    with pytest.raises(ValidationError):
        RecommendationRequest.model_validate({"user_id": "u1", "k": True})
    with pytest.raises(ValidationError):
        Event.model_validate({"user_id": "u1", "item_id": "i1", "timestamp": True})
    assert RecommendationRequest.model_validate({"user_id": "u1", "k": 5}).k == 5


def test_the_settings_column_mapping_reads_a_renamed_file(tmp_path: Path) -> None:
    csv = tmp_path / "mine.csv"
    csv.write_text("uid,sku,ts,action,strength\nu1,i1,1700000000,purchase,2\nu2,i1,1700000001,view,1\n")
    cols = ColumnMap.from_config(DataConfig(user_col="uid", item_col="sku", time_col="ts", event_col="action",
                                            weight_col="strength"))
    ds = load_dataset(csv, cols, now=NOW)
    assert ds.interactions["event"].to_list() == ["purchase", "view"]
    assert ds.interactions["weight"].to_list() == [2.0, 1.0]
    with pytest.raises(DataValidationError, match=r"'customer' \(mapped to user_id\) is not in the file.*--user-col"):
        load_dataset(csv, ColumnMap(user_id="customer", item_id="sku", timestamp="ts"), now=NOW)
