"""One contract, every backend: the embedded SQLite file and the real Redis."""

from __future__ import annotations

import time

import numpy as np
import pytest

from recsys.errors import PublishAbortedError
from recsys.store import JobRun, SessionEvent, Store
from recsys.store.codec import encode_user
from tests.conftest import BackendCase


def _value(items: list[int], history: tuple[int, ...] = (7, 8)) -> bytes:
    return encode_user(np.asarray(items), len(items), np.linspace(1, 0, 4), np.asarray(history), width=4)


def _publish(store: Store, version: str, users: dict[str, list[int]]) -> None:
    writer = store.candidates.begin(version)
    ids = list(users)
    writer.write_users(ids, [_value(users[u]) for u in ids])
    writer.write_items([f"i{i}" for i in range(10)])
    writer.write_meta({"items": 10})
    store.candidates.publish(version)


def test_publish_then_read(any_store: Store) -> None:
    assert any_store.candidates.current_version() is None
    _publish(any_store, "v1", {"a": [1, 2, 3], "b": [4, 5]})
    assert any_store.candidates.current_version() == "v1"
    rec = any_store.read_user("v1", "a")
    assert rec.candidates is not None
    assert rec.candidates[0].tolist() == [1, 2, 3]
    assert rec.history is not None and rec.history.tolist() == [7, 8]
    assert any_store.read_user("v1", "nobody").candidates is None
    assert any_store.candidates.item_ids("v1")[3] == "i3"
    assert any_store.candidates.meta("v1")["users"] == 2  # type: ignore[index]
    # The pointer comes back in the same round trip (not on a cluster: another slot, see keys.py).
    assert rec.published == "v1" if rec.pointer_read else rec.published is None
    any_store.wipe()  # the store lost its data
    assert any_store.read_user("v1", "nobody").published is None


def test_failed_write_leaves_previous_version_serving(any_store: Store) -> None:
    _publish(any_store, "v1", {"a": [1, 2, 3], "b": [4, 5]})
    writer = any_store.candidates.begin("v2")
    blobs = [_value([9])] * 4
    calls = {"n": 0}

    def die_after_first_batch(n: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("injected failure")

    with pytest.raises(RuntimeError):
        for user, blob in zip(["a", "b", "c", "d"], blobs, strict=True):  # one batch per user
            writer.write_users([user], [blob], progress=die_after_first_batch)
    # Pointer unchanged, old version complete.
    assert any_store.candidates.current_version() == "v1"
    assert any_store.read_user("v1", "a").candidates[0].tolist() == [1, 2, 3]  # type: ignore[index]
    assert any_store.read_user("v1", "b").candidates[0].tolist() == [4, 5]  # type: ignore[index]
    # A version without meta can never be published.
    with pytest.raises(PublishAbortedError):
        any_store.candidates.publish("v2")
    any_store.candidates.abandon("v2")
    assert any_store.read_user("v2", "a").candidates is None


def test_superseded_version_expires_after_grace(any_store: Store) -> None:
    any_store.candidates.grace_seconds = 1
    _publish(any_store, "v1", {"a": [1]})
    _publish(any_store, "v2", {"a": [2]})
    assert any_store.candidates.current_version() == "v2"
    # Still readable during the grace period (requests in flight keep working)...
    assert any_store.read_user("v1", "a").candidates is not None
    time.sleep(1.2)
    any_store.candidates.collect_garbage()
    # ...gone after it.
    assert any_store.read_user("v1", "a").candidates is None
    assert any_store.read_user("v2", "a").candidates[0].tolist() == [2]  # type: ignore[index]


def test_sessions_are_capped_and_expire(any_store: Store) -> None:
    events = [SessionEvent(f"i{i}", "click", 1000.0 + i) for i in range(8)]
    sessions = any_store.sessions
    sessions.max_events, sessions.ttl_seconds = 6, 60
    sessions.append("u", events[:5])
    sessions.ttl_seconds = 1  # the TTL restarts with every append
    sessions.append("u", events[5:])
    got = any_store.sessions.get("u")
    assert [e.item_id for e in got] == [f"i{i}" for i in range(2, 8)]
    rec = any_store.read_user("none", "u")
    assert len(rec.session) == 6
    time.sleep(1.2)
    assert any_store.sessions.get("u") == []


def test_job_lock_is_exclusive_and_renewable(any_store: Store) -> None:
    token = any_store.locks.acquire("refresh", ttl_seconds=1)
    assert token is not None
    assert any_store.locks.acquire("refresh", ttl_seconds=1) is None
    assert any_store.locks.renew("refresh", token, ttl_seconds=2)
    assert not any_store.locks.renew("refresh", "wrong-token", ttl_seconds=2)
    assert not any_store.locks.release("refresh", "wrong-token")
    assert any_store.locks.release("refresh", token)
    other = any_store.locks.acquire("refresh", ttl_seconds=0.5)
    assert other is not None
    time.sleep(0.7)
    assert any_store.locks.acquire("refresh", ttl_seconds=1) is not None  # expired lock is free again


def test_abandoned_staging_versions_are_collected(any_store: Store, monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
    _publish(any_store, "v1", {"a": [1]})
    writer = any_store.candidates.begin("dead")
    writer.write_users(["a"], [_value([3])])
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 120)
    any_store.candidates.collect_garbage()
    monkeypatch.setattr(time, "time", real_time)
    assert any_store.read_user("dead", "a").candidates is None
    assert [v["version"] for v in any_store.candidates.versions()] == ["v1"]


def test_long_list_keeps_the_newest_in_order(any_backend: BackendCase) -> None:
    """A capped list far past its cap (the feature log): appends trim from the head, order is kept."""
    backend, key = any_backend.backend, f"{any_backend.ns}:featlog"
    cap = 5000
    values = [f"row-{i:06d}".encode() for i in range(12_345)]
    for start in range(0, len(values), 1000):
        backend.list_append(key, values[start:start + 1000], cap, None)
    assert backend.list_range(key) == values[-cap:]
    # Single-row appends at the cap each drop exactly the oldest row.
    for i in range(3):
        backend.list_append(key, [f"tail-{i}".encode()], cap, None)
    got = backend.list_range(key)
    assert len(got) == cap and got[:2] == values[-cap + 3:-cap + 5] and got[-3:] == [b"tail-0", b"tail-1", b"tail-2"]
    # A batch larger than the cap keeps only its own newest `cap` items.
    backend.list_append(key, values[:7000], cap, None)
    assert backend.list_range(key) == values[2000:7000]
    backend.delete(key)
    assert backend.list_range(key) == []
    backend.list_append(key, [b"again"], cap, None)
    assert backend.list_range(key) == [b"again"]


def test_list_ttl_is_reset_by_append_with_ttl_and_kept_by_append_without(any_backend: BackendCase) -> None:
    backend, key = any_backend.backend, f"{any_backend.ns}:ttl-list"
    backend.list_append(key, [b"a"], 10, 600)
    backend.list_append(key, [b"b"], 10, None)  # RPUSH alone keeps the TTL
    assert backend.list_range(key) == [b"a", b"b"]
    time.sleep(0.8)
    assert backend.list_range(key) == []
    backend.list_append(key, [b"c"], 10, None)  # an expired list starts afresh, without a TTL
    time.sleep(0.1)
    assert backend.list_range(key) == [b"c"]
    backend.delete(key)


def test_wipe_covers_lists(any_store: Store) -> None:
    any_store.sessions.append("u1", [SessionEvent("i1", "click", 1.0)])
    any_store.jobs.record_end(JobRun("refresh"))
    any_store.feature_log.append([b"{}"], 10)
    assert any_store.wipe() >= 3
    assert any_store.sessions.get("u1") == [] and any_store.jobs.runs() == [] and any_store.feature_log.rows() == []


def test_next_refresh_start_collects_staging_left_by_a_crash(any_store: Store,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A refresh that died mid-write is cleaned up when the next one begins, even if that one dies too."""
    _publish(any_store, "v1", {"a": [1]})
    dead = any_store.candidates.begin("dead")
    dead.write_users(["a"], [_value([3])])
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 120)
    any_store.candidates.begin("next")  # never published
    monkeypatch.setattr(time, "time", real_time)
    assert any_store.read_user("dead", "a").candidates is None
    assert [v["version"] for v in any_store.candidates.versions()] == ["v1", "next"]
    assert any_store.candidates.current_version() == "v1" and any_store.read_user("v1", "a").candidates is not None


def test_many_crashed_refreshes_never_push_the_live_version_off_the_list(any_store: Store) -> None:
    _publish(any_store, "v1", {"a": [1]})
    for i in range(60):  # 60 refreshes die after begin(), faster than the staging grace of a minute
        any_store.candidates.begin(f"dead{i:02d}")
    versions = [v["version"] for v in any_store.candidates.versions()]
    assert len(versions) == 50 and versions[0] == "v1" and versions[-1] == "dead59"
    _publish(any_store, "v2", {"a": [2]})
    states = {v["version"]: v["state"] for v in any_store.candidates.versions()}
    assert states["v1"] == "superseded" and states["v2"] == "live"  # v1 gets its expiry, not leaked
