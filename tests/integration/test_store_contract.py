"""One contract, every backend: the embedded SQLite file and the real Redis."""

from __future__ import annotations

import time

import numpy as np
import pytest

from recsys.errors import PublishAbortedError
from recsys.store import CandidateStore, SessionEvent
from recsys.store.codec import encode_candidates, encode_indices


def _publish(store: CandidateStore, version: str, users: dict[str, list[int]]) -> None:
    writer = store.begin(version)
    ids = list(users)
    blobs = [encode_candidates(np.asarray(users[u]), np.linspace(1, 0, len(users[u]))) for u in ids]
    hist = [encode_indices(np.asarray([7, 8])) for _ in ids]
    writer.write_users(ids, blobs, hist, batch_size=2)
    writer.write_items([f"i{i}" for i in range(10)])
    writer.write_meta({"items": 10})
    store.publish(version)


def test_publish_then_read(any_store: CandidateStore) -> None:
    assert any_store.current_version() is None
    _publish(any_store, "v1", {"a": [1, 2, 3], "b": [4, 5]})
    assert any_store.current_version() == "v1"
    rec = any_store.read_user("v1", "a")
    assert rec.candidates is not None
    assert rec.candidates[0].tolist() == [1, 2, 3]
    assert rec.history is not None and rec.history.tolist() == [7, 8]
    assert any_store.read_user("v1", "nobody").candidates is None
    assert any_store.item_ids("v1")[3] == "i3"
    assert any_store.meta("v1")["users"] == 2  # type: ignore[index]
    assert rec.published == "v1"  # the pointer comes back in the same round trip
    any_store.backend.delete(any_store.keys.pointer)  # the store lost its data
    assert any_store.read_user("v1", "nobody").published is None


def test_failed_write_leaves_previous_version_serving(any_store: CandidateStore) -> None:
    _publish(any_store, "v1", {"a": [1, 2, 3], "b": [4, 5]})
    writer = any_store.begin("v2")
    blobs = [encode_candidates(np.asarray([9]), np.asarray([1.0]))] * 4
    calls = {"n": 0}

    def die_after_first_batch(n: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("injected failure")

    with pytest.raises(RuntimeError):
        writer.write_users(["a", "b", "c", "d"], blobs, batch_size=1, progress=die_after_first_batch)
    # Pointer unchanged, old version complete.
    assert any_store.current_version() == "v1"
    assert any_store.read_user("v1", "a").candidates[0].tolist() == [1, 2, 3]  # type: ignore[index]
    assert any_store.read_user("v1", "b").candidates[0].tolist() == [4, 5]  # type: ignore[index]
    # A version without meta can never be published.
    with pytest.raises(PublishAbortedError):
        any_store.publish("v2")
    any_store.abandon("v2")
    assert any_store.read_user("v2", "a").candidates is None


def test_superseded_version_expires_after_grace(any_store: CandidateStore) -> None:
    any_store.grace_seconds = 1
    _publish(any_store, "v1", {"a": [1]})
    _publish(any_store, "v2", {"a": [2]})
    assert any_store.current_version() == "v2"
    # Still readable during the grace period (requests in flight keep working)...
    assert any_store.read_user("v1", "a").candidates is not None
    time.sleep(1.2)
    any_store.collect_garbage()
    # ...gone after it.
    assert any_store.read_user("v1", "a").candidates is None
    assert any_store.read_user("v2", "a").candidates[0].tolist() == [2]  # type: ignore[index]


def test_sessions_are_capped_and_expire(any_store: CandidateStore) -> None:
    events = [SessionEvent(f"i{i}", "click", 1000.0 + i) for i in range(8)]
    any_store.append_session("u", events[:5], max_events=6, ttl_seconds=60)
    any_store.append_session("u", events[5:], max_events=6, ttl_seconds=1)
    got = any_store.session("u")
    assert [e.item_id for e in got] == [f"i{i}" for i in range(2, 8)]
    rec = any_store.read_user("none", "u")
    assert len(rec.session) == 6
    time.sleep(1.2)
    assert any_store.session("u") == []


def test_job_lock_is_exclusive_and_renewable(any_store: CandidateStore) -> None:
    token = any_store.acquire_lock("refresh", ttl_seconds=1)
    assert token is not None
    assert any_store.acquire_lock("refresh", ttl_seconds=1) is None
    assert any_store.renew_lock("refresh", token, ttl_seconds=2)
    assert not any_store.renew_lock("refresh", "wrong-token", ttl_seconds=2)
    assert not any_store.release_lock("refresh", "wrong-token")
    assert any_store.release_lock("refresh", token)
    other = any_store.acquire_lock("refresh", ttl_seconds=0.5)
    assert other is not None
    time.sleep(0.7)
    assert any_store.acquire_lock("refresh", ttl_seconds=1) is not None  # expired lock is free again


def test_abandoned_staging_versions_are_collected(any_store: CandidateStore, monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
    _publish(any_store, "v1", {"a": [1]})
    writer = any_store.begin("dead")
    writer.write_users(["a"], [encode_candidates(np.asarray([3]), np.asarray([1.0]))])
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 120)
    any_store.collect_garbage()
    monkeypatch.setattr(time, "time", real_time)
    assert any_store.read_user("dead", "a").candidates is None
    assert [v["version"] for v in any_store.versions()] == ["v1"]


def test_next_refresh_start_collects_staging_left_by_a_crash(any_store: CandidateStore,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A refresh that died mid-write is cleaned up when the next one begins, even if that one dies too."""
    _publish(any_store, "v1", {"a": [1]})
    dead = any_store.begin("dead")
    dead.write_users(["a"], [encode_candidates(np.asarray([3]), np.asarray([1.0]))])
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 120)
    any_store.begin("next")  # never published
    monkeypatch.setattr(time, "time", real_time)
    assert any_store.read_user("dead", "a").candidates is None
    assert [v["version"] for v in any_store.versions()] == ["v1", "next"]
    assert any_store.current_version() == "v1" and any_store.read_user("v1", "a").candidates is not None


def test_many_crashed_refreshes_never_push_the_live_version_off_the_list(any_store: CandidateStore) -> None:
    _publish(any_store, "v1", {"a": [1]})
    for i in range(60):  # 60 refreshes die after begin(), faster than the staging grace of a minute
        any_store.begin(f"dead{i:02d}")
    versions = [v["version"] for v in any_store.versions()]
    assert len(versions) == 50 and versions[0] == "v1" and versions[-1] == "dead59"
    _publish(any_store, "v2", {"a": [2]})
    states = {v["version"]: v["state"] for v in any_store.versions()}
    assert states["v1"] == "superseded" and states["v2"] == "live"  # v1 gets its expiry, not leaked
