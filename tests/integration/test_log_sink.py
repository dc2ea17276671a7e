"""The API's log sink on a real Redis that goes down: records are kept and written when it returns,
only a full queue drops (and counts) records, and submitting never waits for the store. A batch that
timed out while Redis was frozen may be applied when it thaws and then retried: the log may hold it
twice, the lake never (one row per event id)."""

from __future__ import annotations

import time
from pathlib import Path

from recsys.config import Settings
from recsys.data.lake import Lake
from recsys.events.ingest import run_ingest
from recsys.events.records import encode_event
from recsys.events.sink import LogSink
from recsys.store import EVENTS, open_store
from tests.redis_server import PrivateRedis


def _event(name: str) -> bytes:
    return encode_event("u", name, "click", time.time() - 10)


def test_records_survive_an_outage_and_only_a_full_queue_drops(private_redis: PrivateRedis, tmp_path: Path) -> None:
    store = open_store(private_redis.url, breaker_cooldown_s=0.2)
    sink = LogSink(store, EVENTS, queue_records=50, batch_records=10, retry_after_s=0.2)
    sink.submit([_event(f"before-{k}") for k in range(5)])
    assert sink.flush(5)
    private_redis.freeze()
    try:
        t0 = time.perf_counter()
        for k in range(6):
            sink.submit([_event(f"during-{k}-{j}") for j in range(10)])  # 60 > the queue's 50: 10 dropped
        assert time.perf_counter() - t0 < 0.05  # never waits for the frozen store
        time.sleep(1.0)
        assert not sink.flush(0.2)
        stats = sink.stats()
        assert stats.dropped == 10 and stats.write_errors >= 1 and stats.pending == 50
    finally:
        private_redis.thaw()
    assert sink.flush(10)
    sink.close()
    assert sink.stats().written == 55
    settings = Settings(artifacts_dir=tmp_path / "artifacts", lake_dir=tmp_path / "lake")
    run_ingest(settings, store)
    items = Lake(tmp_path / "lake").read_events()["item_id"].to_list()
    # In order, none lost, none twice (whatever the log holds: a timed-out append may be there twice).
    assert items == [f"before-{k}" for k in range(5)] + [f"during-{k}-{j}" for k in range(5) for j in range(10)]
