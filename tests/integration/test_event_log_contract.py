"""The append-only log primitives and the event-log store: one contract, every backend (real Redis included)."""

from __future__ import annotations

from recsys.store import EVENTS, IMPRESSIONS, Store
from recsys.store.backend import parse_log_id
from tests.conftest import BackendCase


def test_log_ids_increase_and_reads_resume_after_an_id(any_backend: BackendCase) -> None:
    b, key = any_backend.backend, f"{any_backend.ns}:log:x"
    ids = b.log_append(key, [f"r{i}".encode() for i in range(5)], 1000)
    ids += b.log_append(key, [b"r5", b"r6"], 1000)
    assert len(set(ids)) == 7 and [parse_log_id(i) for i in ids] == sorted(parse_log_id(i) for i in ids)
    assert b.log_read(key, None, 3) == [(ids[0], b"r0"), (ids[1], b"r1"), (ids[2], b"r2")]
    assert [v for _, v in b.log_read(key, ids[2], 100)] == [b"r3", b"r4", b"r5", b"r6"]
    assert b.log_read(key, ids[-1], 100) == []
    info = b.log_info(key)
    assert (info.length, info.first_id, info.last_id) == (7, ids[0], ids[-1])
    assert b.log_info(f"{any_backend.ns}:log:none").length == 0


def test_trim_is_exact_and_ids_never_go_back(any_backend: BackendCase) -> None:
    b, key = any_backend.backend, f"{any_backend.ns}:log:x"
    ids = b.log_append(key, [f"r{i}".encode() for i in range(10)], 1000)
    assert b.log_trim(key, ids[3]) == 4
    assert [i for i, _ in b.log_read(key, None, 100)] == ids[4:]
    assert b.log_delete(key, [ids[5], ids[7], "1-0"]) == 2
    assert [v for _, v in b.log_read(key, None, 100)] == [b"r4", b"r6", b"r8", b"r9"]
    assert b.log_info(key).length == 4
    assert b.log_trim(key, ids[-1]) == 4
    more = b.log_append(key, [b"later"], 1000)
    assert parse_log_id(more[0]) > parse_log_id(ids[-1])  # an emptied log never reuses an id


def test_cap_keeps_at_least_the_newest_entries(any_backend: BackendCase) -> None:
    b, key = any_backend.backend, f"{any_backend.ns}:log:x"
    for start in range(0, 5000, 500):
        b.log_append(key, [f"r{i}".encode() for i in range(start, start + 500)], 1000)
    info = b.log_info(key)
    # Redis trims whole macro-nodes (MAXLEN ~): at least the cap is kept, never much more.
    assert 1000 <= info.length <= 1200
    rows = b.log_read(key, None, 10_000)
    assert rows[-1][1] == b"r4999" and len(rows) == info.length


def test_list_remove_and_dump(any_backend: BackendCase) -> None:
    b, ns = any_backend.backend, any_backend.ns
    b.list_append(f"{ns}:l", [b"a", b"b", b"a", b"c"], 100, None)
    assert b.list_remove(f"{ns}:l", [b"a", b"zzz"]) == 2
    assert b.list_range(f"{ns}:l") == [b"b", b"c"]
    b.set(f"{ns}:k", b"value")
    b.log_append(f"{ns}:log:y", [b"e1", b"e2"], 100)
    dumped = dict(b.dump_prefix(f"{ns}:"))
    assert dumped == {f"{ns}:l": b"b\nc", f"{ns}:k": b"value", f"{ns}:log:y": b"e1\ne2"}


def test_event_log_acknowledge_then_trim(any_store: Store) -> None:
    log = any_store.event_log
    ids = log.append(EVENTS, [b"e0", b"e1", b"e2"])
    log.append(IMPRESSIONS, [b"i0"])
    assert log.trim_acknowledged(EVENTS) == 0  # nothing acknowledged: nothing leaves the store
    log.acknowledge(EVENTS, ids[1])
    log.acknowledge(EVENTS, ids[0])  # never backwards
    assert log.acknowledged(EVENTS) == ids[1]
    assert log.trim_acknowledged(EVENTS) == 2
    assert log.read(EVENTS, None, 10) == [(ids[2], b"e2")]
    state = log.state(EVENTS)
    assert (state.length, state.acked_id, state.last_id) == (1, ids[1], ids[2])
    assert log.state(IMPRESSIONS).length == 1
    assert log.delete_where(EVENTS, lambda r: r == b"e2") == 1 and log.state(EVENTS).length == 0


def test_forget_requests_and_user_removal(any_store: Store) -> None:
    log = any_store.event_log
    log.request_forget("h1")
    log.request_forget("h2")
    log.request_forget("h1")
    assert log.forget_requests() == ["h1", "h2"]
    log.clear_forget_requests(["h1"])
    assert log.forget_requests() == ["h2"]
    any_store.feature_log.append([b'{"user_id": "x"}', b'{"user_id": "y"}'], 100)
    assert any_store.feature_log.remove_where(lambda r: b'"x"' in r) == 1
    assert any_store.feature_log.rows() == [b'{"user_id": "y"}']
    assert any(k.endswith(":featlog") for k, _ in any_store.scan_all())
