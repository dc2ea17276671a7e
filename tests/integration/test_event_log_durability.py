"""What the event log keeps when Redis itself crashes before the ingest (docs/loop.md).

With the compose file's settings (append-only file, fsync every second), a SIGKILLed Redis comes back
with every log entry appended more than a second before the crash; only the last ~second is at risk.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from recsys.store import EVENTS, open_store
from tests.redis_server import PrivateRedis, redis_server_available


def test_log_entries_older_than_a_second_survive_a_redis_crash(tmp_path: Path) -> None:
    if not redis_server_available():
        pytest.skip("redis-server binary not installed")
    server = PrivateRedis(tmp_path / "redis", persist=True)  # appendonly yes; Redis' default appendfsync everysec
    server.start()
    try:
        store = open_store(server.url)
        ids = [i for k in range(20) for i in store.event_log.append(EVENTS, [f"e{k}-{j}".encode() for j in range(50)])]
        time.sleep(1.5)  # the everysec fsync has run since the last append
        store.close()
        server.kill()  # SIGKILL: no shutdown save
        server.start()
        store = open_store(server.url)
        rows = store.event_log.read(EVENTS, None, 10_000)
        assert [i for i, _ in rows] == ids
        store.close()
    finally:
        server.stop()
