"""Events posted while the store is down are kept (bounded) and written in order when it returns."""

from __future__ import annotations

import threading
import time

from recsys.errors import StoreUnavailableError
from recsys.serving.event_buffer import EventBuffer
from recsys.store import SessionEvent, Store, open_store


class FlakyStore:
    """A real in-memory session store whose writes fail while `down` is set."""

    def __init__(self) -> None:
        self.real: Store = open_store("embedded://:memory:", session_max_events=1000)
        self.down = False

    def append(self, user_id: str, events: list[SessionEvent]) -> None:
        if self.down:
            raise StoreUnavailableError("down")
        self.real.sessions.append(user_id, events)


def _ev(i: int) -> list[SessionEvent]:
    return [SessionEvent(f"i{i}", "click", 1000.0 + i)]


def test_buffer_keeps_order_is_bounded_and_replays() -> None:
    store = FlakyStore()
    buf = EventBuffer(store, max_events=3)  # type: ignore[arg-type]
    assert buf.append("u", _ev(0)) and buf.pending == 0  # store up: written at once
    store.down = True
    assert all(buf.append("u", _ev(i)) for i in (1, 2, 3))
    assert buf.pending == 3 and not buf.append("u", _ev(4))  # full: refused, not silently dropped
    assert buf.flush() == 0 and buf.pending == 3  # still down: nothing lost
    store.down = False
    assert buf.append("u", _ev(5)) and buf.pending == 0  # the backlog is written first, then this one
    assert buf.flush() == 0
    assert [e.item_id for e in store.real.sessions.get("u")] == ["i0", "i1", "i2", "i3", "i5"]


class SlowStore(FlakyStore):
    """Session writes take a moment, so concurrent replays overlap."""

    def append(self, user_id: str, events: list[SessionEvent]) -> None:
        time.sleep(0.002)
        super().append(user_id, events)


def test_concurrent_replays_write_each_buffered_event_once_and_in_order() -> None:
    store = SlowStore()
    buf = EventBuffer(store, max_events=1000)  # type: ignore[arg-type]
    store.down = True
    for i in range(40):
        assert buf.append("u", _ev(i))
    store.down = False
    errors: list[BaseException] = []

    def replay() -> None:
        try:
            buf.flush()
        except BaseException as exc:  # an IndexError here was a 500 on POST /v1/events
            errors.append(exc)

    threads = [threading.Thread(target=replay) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    buf.flush()
    assert errors == [] and buf.pending == 0
    assert [e.item_id for e in store.real.sessions.get("u")] == [f"i{i}" for i in range(40)]
