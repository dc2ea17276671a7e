"""Serving never trusts stored bytes: random and mutated values in the real Redis never give a 5xx.

Before: a candidate or history value holding an out-of-range item index answered a plain-text 500,
and malformed session entries (wrong arity, non-numeric timestamp, invalid UTF-8) made every
recommendation for that user a 500 until the session expired, even after a valid event was posted.

The property test writes random bytes and mutations of valid values into each kind of value (a
user's candidates, their history, their session entries) through the real Redis, then calls the API
(real app, real HTTP semantics through TestClient): never a 5xx, always a well-formed body, and a
value the service refuses is reported as `corrupt_value` for that user only.
"""

from __future__ import annotations

import logging
import math
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.engines.local import run_refresh
from recsys.ranking.train import TrainResult
from recsys.store import Store
from recsys.store.codec import encode_user, index_width
from recsys.store.keys import Keys
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.redis

EXAMPLES = 500  # per kind of value (the bar)
USER = "u5"
FALLBACKS = {None, "corrupt_value", "unknown_user", "no_model", "model_error"}
HEADER = 10  # codec: magic u8 | width u8 | factors u16 | n u16 | n_primary u16 | n_hist u16


@dataclass
class Live:
    client: TestClient
    raw: redis.Redis
    keys: Keys
    version: str
    n_items: int
    valid: bytes  # the user's value as the refresh wrote it
    factors: int


@pytest.fixture
def live(redis_store: Store, trained_artifacts: tuple[Settings, Dataset, TrainResult]) -> Iterator[Live]:
    settings, ds, _ = trained_artifacts
    result = run_refresh(settings, redis_store, ds)
    record = redis_store.read_user(result.version, USER)
    assert record.candidates is not None and record.history is not None
    raw = redis.Redis.from_url(REDIS_URL)
    keys = Keys(redis_store.namespace)
    blob = raw.get(keys.user(result.version, USER))
    assert isinstance(blob, bytes)
    with TestClient(create_app(settings, redis_store, background_reload=False)) as client:
        yield Live(client, raw, keys, result.version, result.items, blob, settings.als.factors)
    raw.close()


def _check(live: Live, *, session: bool = False) -> dict[str, object]:
    """Every read endpoint that touches the user's values: 200, a well-formed body, a known fallback."""
    r = live.client.get(f"/v1/users/{USER}/recommendations?k=10")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["fallback"] in FALLBACKS and 1 <= len(body["items"]) <= 10
    assert all(isinstance(i["item_id"], str) and math.isfinite(i["score"]) for i in body["items"])
    c = live.client.get(f"/v1/users/{USER}/candidates?k=100")
    assert c.status_code == 200, c.text
    assert c.json()["fallback"] in (None, "corrupt_value")
    if session:
        inline = live.client.post("/v1/recommendations", json={"user_id": USER, "k": 5})
        assert inline.status_code == 200, inline.text
    return body


@st.composite
def mutated(draw: st.DrawFn, live: Live, target: str) -> bytes:
    """Random bytes, or the valid value with one kind of damage (what a bug or a hand edit could leave).

    `target` aims the "index" damage at the candidates or at the history part of the bit-packed index
    stream (any value its width can hold, the catalogue's size and beyond included)."""
    valid = live.valid
    width, k, n, _, n_hist = struct.unpack_from("<BHHHH", valid, 1)
    kind = draw(st.sampled_from(["random", "flip", "truncate", "extend", "index", "header", "vector"]))
    if kind == "random":
        return draw(st.binary(max_size=2 * len(valid)))
    b = bytearray(valid)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
    elif kind == "truncate":
        del b[draw(st.integers(0, len(b) - 1)):]
    elif kind == "extend":
        b += draw(st.binary(min_size=1, max_size=16))
    elif kind == "index":
        lo, hi = (0, n) if target == "candidates" else (n, n + n_hist)
        if hi > lo:
            bit = (HEADER + 2 + k) * 8 + width * draw(st.integers(lo, hi - 1))
            value = draw(st.integers(0, (1 << width) - 1))
            for j in range(width):  # write the `width`-bit field bit by bit (little-endian bit order)
                byte, off = divmod(bit + j, 8)
                b[byte] = (b[byte] & ~(1 << off)) | (((value >> j) & 1) << off)
    elif kind == "header":
        struct.pack_into("<BBHHHH", b, 0, draw(st.sampled_from([0xD3, 0xC1, 0xA1, 0x00])), draw(st.integers(0, 30)),
                         draw(st.sampled_from([k, 0, k + 1, 65535])), draw(st.integers(0, 65535)),
                         draw(st.integers(0, 65535)), draw(st.sampled_from([n_hist, 0, 65535])))
    elif kind == "vector":  # the float16 scale, or one int8 factor
        if draw(st.booleans()):
            scale = draw(st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 65504.0, 0.0]))
            struct.pack_into("<e", b, HEADER, scale)
        else:
            struct.pack_into("<b", b, HEADER + 2 + draw(st.integers(0, k - 1)), draw(st.integers(-128, 127)))
    return bytes(b)


def _session_entries() -> st.SearchStrategy[list[bytes]]:
    now = time.time()
    field_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
    well_formed = st.builds(lambda item, event, ts: f"{item}\t{event}\t{ts}".encode(),
                            st.sampled_from(["i1", "i7", "i42", "nope"]),
                            st.sampled_from(["click", "view", "purchase", "made-up"]),
                            st.just(f"{now:.3f}"))
    odd_fields = st.builds(lambda item, event, ts: f"{item}\t{event}\t{ts}".encode(),
                           st.one_of(st.sampled_from(["i1", ""]), field_text),
                           st.one_of(st.sampled_from(["click", ""]), field_text),
                           st.one_of(st.floats().map(repr), field_text, st.sampled_from(["1e400", "-1e300", "nan"])))
    wrong_arity = st.lists(field_text, max_size=5).map(lambda parts: "\t".join(parts).encode())
    bad_utf8 = well_formed.flatmap(lambda e: st.integers(0, len(e)).map(lambda i: e[:i] + b"\xff\xfe" + e[i:]))
    return st.lists(st.one_of(well_formed, odd_fields, wrong_arity, bad_utf8, st.binary(max_size=40)),
                    min_size=1, max_size=6)


FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def test_random_candidate_values_never_give_a_5xx(live: Live) -> None:
    key = live.keys.user(live.version, USER)
    seen = {"examples": 0, "corrupt": 0}

    @FUZZ
    @given(blob=mutated(live, "candidates"))
    def run(blob: bytes) -> None:
        live.raw.set(key, blob)
        body = _check(live)
        seen["examples"] += 1
        seen["corrupt"] += body["fallback"] == "corrupt_value"

    run()
    assert seen["examples"] >= EXAMPLES and seen["corrupt"] > EXAMPLES // 4, seen


def test_random_history_values_never_give_a_5xx(live: Live) -> None:
    key = live.keys.user(live.version, USER)
    seen = {"examples": 0, "corrupt": 0}

    @FUZZ
    @given(blob=mutated(live, "history"))
    def run(blob: bytes) -> None:
        live.raw.set(key, blob)
        body = _check(live)
        seen["examples"] += 1
        seen["corrupt"] += body["fallback"] == "corrupt_value"

    run()
    assert seen["examples"] >= EXAMPLES and seen["corrupt"] > EXAMPLES // 4, seen


def test_random_session_entries_never_give_a_5xx(live: Live) -> None:
    key = live.keys.session(USER)
    seen = {"examples": 0}

    @FUZZ
    @given(entries=_session_entries())
    def run(entries: list[bytes]) -> None:
        live.raw.delete(key)
        live.raw.rpush(key, *entries)
        body = _check(live, session=True)
        assert body["fallback"] != "corrupt_value"  # bad entries are skipped, the user keeps their candidates
        seen["examples"] += 1

    run()
    assert seen["examples"] >= EXAMPLES, seen


def test_a_corrupt_value_is_served_by_the_fallback_chain_and_logged_once(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    key = live.keys.user(live.version, USER)
    width = index_width(live.n_items + 8)
    live.raw.set(key, encode_user(np.array([1, live.n_items + 7]), 2, np.zeros(live.factors), np.array([3]),
                                  width=width))
    with caplog.at_level(logging.ERROR, logger="recsys.serving.service"):
        for _ in range(3):
            body = _check(live)
            assert body["fallback"] == "corrupt_value" and body["candidates_version"] == live.version
    logged = [r.getMessage() for r in caplog.records if "corrupt_store_value" in r.getMessage()]
    assert len(logged) == 1 and key in logged[0] and "catalogue" in logged[0]
    # Other users are untouched; rewriting the value heals the user at once.
    assert live.client.get("/v1/users/u6/recommendations").json()["fallback"] is None
    live.raw.set(key, live.valid)
    assert _check(live)["fallback"] is None
    live.raw.set(key, encode_user(np.array([1]), 1, np.zeros(live.factors), np.array([live.n_items + 7]),
                                  width=width))  # the history's index this time
    assert _check(live)["fallback"] == "corrupt_value"


def test_malformed_session_entries_are_skipped_and_a_valid_event_still_counts(live: Live) -> None:
    key = live.keys.session(USER)
    live.raw.rpush(key, b"i1\tclick", b"i2\tclick\tnot-a-time", b"\xff\xfe\tclick\t1.0", b"i3\tview\tnan")
    before = _check(live, session=True)
    assert before["fallback"] is None
    r = live.client.post("/v1/events", json={"user_id": USER, "item_id": "i9", "event": "purchase"})
    assert r.status_code == 202
    after = live.client.get(f"/v1/users/{USER}/recommendations?k=10").json()
    assert after["fallback"] is None
    assert after["items"] != before["items"]  # the new event is part of the session the ranker saw
