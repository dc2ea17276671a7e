"""The lake ingest on both backends: validation and quarantine, exactly once across kills at every step,
forgetting a user everywhere, retention."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import polars as pl
import pytest

from recsys.config import Settings
from recsys.data.lake import Lake
from recsys.data.training import load_training_data
from recsys.events.forget import forget_user
from recsys.events.ingest import run_ingest
from recsys.events.records import Impression, encode_event
from recsys.store import EVENTS, IMPRESSIONS, SessionEvent, Store


def _settings(tmp_path: Path, batch: int = 7) -> Settings:
    s = Settings(artifacts_dir=tmp_path / "artifacts", lake_dir=tmp_path / "lake")
    s.loop.ingest_batch = batch
    return s


def _events(store: Store, n: int, user: str = "u", t0: float | None = None) -> list[tuple[str, str, float]]:
    t0 = time.time() - 1000 if t0 is None else t0
    rows = [(f"{user}{k % 3}", f"i{k}", t0 + k) for k in range(n)]
    store.event_log.append(EVENTS, [encode_event(u, i, "click", t) for u, i, t in rows])
    return rows


def test_bad_records_are_quarantined_with_the_reason(any_store: Store, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    good = _events(any_store, 4)
    any_store.event_log.append(EVENTS, [b"not json", encode_event("u1", "i1", "teleport", time.time()),
                                        encode_event("u1", "i1", "click", 1e12), orjson.dumps([1, 2, 3, 4, 5]),
                                        encode_event("", "i1", "click", time.time())])
    any_store.event_log.append(IMPRESSIONS, [Impression("r1", "u1", ["a"], [0.5], "m", "v", None, time.time())
                                             .encode(), b"{}"])
    result = run_ingest(settings, any_store)
    assert (result.streams[EVENTS].written, result.streams[EVENTS].quarantined) == (4, 5)
    assert (result.streams[IMPRESSIONS].written, result.streams[IMPRESSIONS].quarantined) == (1, 1)
    lake = Lake(settings.lake_dir)  # type: ignore[arg-type]
    assert sorted(lake.read_events()["item_id"].to_list()) == sorted(i for _, i, _ in good)
    reasons = lake.read("quarantine")["reason"].to_list()
    assert len(reasons) == 6 and all(reasons)
    assert any("unknown event type" in r for r in reasons) and any("timestamp" in r for r in reasons)
    assert any("undecodable" in r for r in reasons) and any("user_id" in r for r in reasons)
    assert any_store.event_log.state(EVENTS).length == 0  # everything is in the lake: trimmed


@pytest.mark.parametrize("kill_at", ["after_write", "after_lake_commit"])
def test_a_run_killed_at_any_step_leaves_each_entry_once(any_store: Store, tmp_path: Path, kill_at: str) -> None:
    """Kill (an exception) between the file renames and the lake commit, or between the lake commit and
    the store acknowledgement: the next run neither loses nor repeats an entry, and trims only then."""
    settings = _settings(tmp_path, batch=5)
    posted = _events(any_store, 12)
    lake = Lake(settings.lake_dir)  # type: ignore[arg-type]
    calls = {"n": 0}

    class Killed(Exception):
        pass

    def die() -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed

    if kill_at == "after_lake_commit":
        original = any_store.event_log.acknowledge

        def acknowledge(stream: str, upto: str) -> None:
            if stream == EVENTS and lake.committed(EVENTS) and calls["n"] >= 2:
                raise Killed
            original(stream, upto)
        any_store.event_log.acknowledge = acknowledge  # type: ignore[method-assign]
        with pytest.raises(Killed):
            run_ingest(settings, any_store, before_commit=lambda: calls.__setitem__("n", calls["n"] + 1))
        any_store.event_log.acknowledge = original  # type: ignore[method-assign]
    else:
        with pytest.raises(Killed):
            run_ingest(settings, any_store, before_commit=die)
    # A reader now sees only whole entries, each once; the store still holds what is not acknowledged.
    seen = lake.read_events()
    assert seen["id"].n_unique() == seen.height
    assert any_store.event_log.state(EVENTS).length >= len(posted) - seen.height
    more = _events(any_store, 3, user="late", t0=time.time() - 500)
    run_ingest(settings, any_store)
    events = lake.read_events()
    assert events.height == len(posted) + len(more) and events["id"].n_unique() == events.height
    assert sorted(events["item_id"].to_list()) == sorted(i for _, i, _ in posted + more)
    assert any_store.event_log.state(EVENTS).length == 0
    raw = pl.concat([pl.read_parquet(f.path) for f in lake.files("events")])
    assert raw.height == events.height  # the dead run's files were removed, not merely deduplicated


def test_forgetting_a_user_leaves_no_trace_in_the_store_or_the_lake(any_store: Store, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    victim = "victim-7f3a"
    any_store.event_log.append(EVENTS, [encode_event(victim, "i1", "click", time.time() - 100),
                                        encode_event("other", "i1", "click", time.time() - 100)])
    run_ingest(settings, any_store)  # the victim's first events are in the lake
    any_store.event_log.append(EVENTS, [encode_event(victim, "i2", "view", time.time() - 50)])  # still waiting
    any_store.event_log.append(IMPRESSIONS, [Impression("r9", victim, ["i3"], [1.0], None, "v1", None,
                                                        time.time()).encode()])
    any_store.sessions.append(victim, [SessionEvent("i2", "view", time.time())])
    any_store.feature_log.append([orjson.dumps({"ts": 1.0, "model_version": "m", "user_id": victim,
                                                "features": {}})], 100)
    from tests.integration.test_store_contract import _publish
    _publish(any_store, "v1", {victim: [1, 2], "other": [3]})

    result = forget_user(any_store, victim)
    assert result.log_entries_deleted == 2 and result.feature_rows_deleted == 1
    for key, value in any_store.scan_all():
        assert victim not in key and victim.encode() not in value, key
    assert any_store.read_user("v1", "other").candidates is not None
    lake = Lake(settings.lake_dir)  # type: ignore[arg-type]
    assert victim in lake.read_events()["user_id"].to_list()  # the lake follows at the next ingest
    run_ingest(settings, any_store)
    for path in Path(settings.lake_dir).rglob("*"):  # type: ignore[arg-type]
        if path.is_file():
            assert victim.encode() not in path.read_bytes(), path
            if path.suffix == ".parquet":
                frame = pl.read_parquet(path)
                for col in frame.select(pl.col(pl.String)).columns:
                    assert victim not in frame[col].to_list(), (path, col)
    assert "other" in lake.read_events()["user_id"].to_list()
    assert any_store.event_log.forget_requests() == []


def test_retention_and_training_data_count_each_source(any_store: Store, tmp_path: Path) -> None:
    settings = _settings(tmp_path, batch=1000)
    now = time.time()
    _events(any_store, 6, t0=now - 3 * 86400)
    _events(any_store, 4, user="w", t0=now - 100)
    run_ingest(settings, any_store, now=now)
    training = load_training_data(settings)
    assert (training.rows_base, training.rows_lake) == (0, 10) and training.lake_events_upto is not None
    settings.lake_retention_days = 1
    result = run_ingest(settings, any_store, now=now)
    assert result.partitions_dropped >= 1
    assert load_training_data(settings).rows_lake == 4


def test_quarantine_keeps_rows_of_both_logs_with_the_same_id(tmp_path: Path) -> None:
    """The two logs number their entries independently: one id may name an event and an impression."""
    from datetime import date

    from recsys.data.lake import QUARANTINE_SCHEMA, write_atomic

    lake = Lake(tmp_path / "lake")
    for stream in (EVENTS, IMPRESSIONS):
        frame = pl.DataFrame([{"id": "5-0", "stream": stream, "timestamp": None, "user_id": None,
                               "reason": f"bad {stream}", "record": "x"}], schema=QUARANTINE_SCHEMA)
        write_atomic(lake.file_path("quarantine", date(2026, 1, 1), stream, "5-0", "5-0"), frame)
    assert sorted(lake.read("quarantine")["reason"].to_list()) == ["bad events", "bad impressions"]
