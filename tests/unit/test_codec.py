from __future__ import annotations

import numpy as np
import pytest

from recsys.errors import CorruptValueError
from recsys.store.codec import decode_candidates, decode_indices, encode_candidates, encode_indices


@pytest.mark.parametrize("max_index", [10, 65534, 70000, 2**31])
def test_candidates_round_trip(max_index: int, rng: np.random.Generator) -> None:
    idx = rng.integers(0, max_index, size=100)
    scores = rng.normal(size=100).astype(np.float32)
    blob = encode_candidates(idx, scores, n_primary=90)
    got_idx, got_scores, primary = decode_candidates(blob)
    assert got_idx.tolist() == idx.tolist()
    np.testing.assert_allclose(got_scores, scores, rtol=1e-3, atol=1e-3)
    assert primary == 90
    # 100 candidates below 65k items fit in 406 bytes: well under the 700-byte budget.
    if max_index < 65535:
        assert len(blob) == 6 + 100 * 4


def test_corrupt_blob_is_rejected() -> None:
    blob = encode_candidates(np.arange(5), np.ones(5))
    with pytest.raises(CorruptValueError):
        decode_candidates(blob[:-1])
    with pytest.raises(CorruptValueError):
        decode_candidates(encode_indices(np.arange(5)))
    assert decode_indices(encode_indices(np.arange(5))).tolist() == [0, 1, 2, 3, 4]
