from __future__ import annotations

import struct

import numpy as np
import pytest

from recsys.candidates.generate import quantise_vectors
from recsys.errors import CorruptValueError
from recsys.store.codec import MAX_WIDTH, decode_user, encode_user, index_width

HEADER = 10


@pytest.mark.parametrize(("n_items", "width"), [(1, 1), (2, 1), (3, 2), (1682, 11), (65_536, 16), (65_537, 17),
                                                (2**24, 24)])
def test_index_width_is_the_bits_the_catalogue_needs(n_items: int, width: int) -> None:
    assert index_width(n_items) == width
    with pytest.raises(ValueError, match="at most 24"):
        index_width(2**MAX_WIDTH + 1)


@pytest.mark.parametrize("n_items", [7, 1682, 50_000, 70_000, 2**24])
def test_user_value_round_trip(n_items: int, rng: np.random.Generator) -> None:
    width = index_width(n_items)
    cand = rng.choice(n_items, size=min(100, n_items), replace=False)
    hist = rng.integers(0, n_items, size=137)
    hist[-1] = n_items - 1  # the largest index the catalogue has
    vector = rng.normal(size=32).astype(np.float32)
    blob = encode_user(cand, 90, vector, hist, width=width)
    value = decode_user(blob, n_items)
    assert value.candidates.tolist() == cand.tolist() and value.history.tolist() == hist.tolist()
    assert value.n_primary == min(90, cand.size)
    # The vector comes back exactly as the offline rounding leaves it: offline and served scores agree.
    np.testing.assert_array_equal(value.user_vector, quantise_vectors(vector))
    # Size: header + float16 scale + int8 vector + one bit-packed index stream.
    assert len(blob) == HEADER + 2 + 32 + (width * (cand.size + hist.size) + 7) // 8


def test_vector_quantisation_is_the_offline_rounding_and_idempotent(rng: np.random.Generator) -> None:
    vectors = rng.normal(scale=rng.uniform(0.01, 3, size=(500, 1)), size=(500, 32)).astype(np.float32)
    vectors[0] = 0.0  # a user with an all-zero vector
    offline = quantise_vectors(vectors)
    # At most half a step (max |factor| / 254) from the ALS vector.
    step = np.abs(vectors).max(axis=1, keepdims=True) / 127
    assert (np.abs(offline - vectors) <= step / 2 * 1.01 + 1e-12).all()
    for u in range(500):
        served = decode_user(encode_user(np.arange(3), 3, vectors[u], np.arange(2), width=4)).user_vector
        np.testing.assert_array_equal(served, offline[u])  # bit for bit: offline features = served ones
        # The update re-encodes vectors that are already quantised: nothing moves.
        again = decode_user(encode_user(np.arange(3), 3, offline[u], np.arange(2), width=4)).user_vector
        np.testing.assert_array_equal(again, offline[u])


def test_ml100k_sized_value_is_less_than_half_the_old_two_keys() -> None:
    """100 candidates + a 91-item history (ml-100k's mean) at 11 bits and 32 factors: 307 bytes, where
    layout 2 stored 406 (candidates with float16 scores) + 188 (history) bytes in two keys."""
    blob = encode_user(np.arange(100), 100, np.ones(32), np.arange(100, 191), width=index_width(1682))
    assert len(blob) == 10 + 2 + 32 + (11 * 191 + 7) // 8 == 307


def test_corrupt_values_are_rejected(rng: np.random.Generator) -> None:
    blob = encode_user(np.arange(5), 5, np.ones(4), np.arange(3), width=11)
    for bad, why in [(blob[:-1], "header says"), (blob + b"\0", "header says"), (blob[:4], "too short"),
                     (b"\xc1" + blob[1:], "magic"), (bytes([blob[0], 0]) + blob[2:], "0-bit"),
                     (bytes([blob[0], 25]) + blob[2:], "25-bit")]:
        with pytest.raises(CorruptValueError, match=why):
            decode_user(bad)
    primary = bytearray(blob)
    struct.pack_into("<H", primary, 6, 6)  # 6 primary of 5 candidates
    with pytest.raises(CorruptValueError, match="primary"):
        decode_user(bytes(primary))
    for scale in (np.nan, np.inf, -np.inf, -1.0):
        bad_vector = bytearray(blob)
        struct.pack_into("<e", bad_vector, HEADER, scale)
        with pytest.raises(CorruptValueError, match="vector scale"):
            decode_user(bytes(bad_vector))
    with pytest.raises(CorruptValueError, match="vector scale"):  # a NaN factor from ALS never serves
        decode_user(encode_user(np.arange(5), 5, np.asarray([1.0, np.nan, 0, 0]), np.arange(3), width=11))
    # An index the serving catalogue does not have, in the candidates or in the history.
    with pytest.raises(CorruptValueError, match="catalogue has 100"):
        decode_user(encode_user(np.asarray([1, 100]), 2, np.ones(4), np.arange(3), width=11), 100)
    with pytest.raises(CorruptValueError, match="catalogue has 100"):
        decode_user(encode_user(np.asarray([1, 2]), 2, np.ones(4), np.asarray([3, 2047]), width=11), 100)
    assert decode_user(blob, 5).candidates.tolist() == [0, 1, 2, 3, 4]


def test_encoder_refuses_indices_its_width_cannot_hold() -> None:
    with pytest.raises(ValueError, match="outside 0..2047"):
        encode_user(np.asarray([2048]), 1, np.ones(4), np.arange(3), width=11)
    with pytest.raises(ValueError, match="outside 0..2047"):
        encode_user(np.asarray([1]), 1, np.ones(4), np.asarray([-2]), width=11)
