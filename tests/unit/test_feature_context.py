"""Vectorised neighbour features against a plain-loop reference, and the lock-free cached property."""

from __future__ import annotations

import threading

import numpy as np
import scipy.sparse as sp

from recsys.features.context import ItemSide, cached_property


def _item_side(n_items: int, seed: int) -> ItemSide:
    rng = np.random.default_rng(seed)
    side = ItemSide.__new__(ItemSide)  # only the neighbour matrices are needed here
    side.n_items = n_items
    side.covisit = sp.random(n_items, n_items, density=0.05, random_state=seed, format="csr",
                             data_rvs=lambda k: rng.integers(1, 20, k).astype(np.float32))
    side.itemknn = sp.random(n_items, n_items, density=0.08, random_state=seed + 1, format="csr",
                             dtype=np.float32)
    return side


def _dense(side: ItemSide, name: str) -> np.ndarray:
    return (side.covisit if name == "covisit" else side.itemknn).toarray()


def test_neighbour_sums_and_maxima_match_a_plain_loop() -> None:
    side = _item_side(300, seed=3)
    rng = np.random.default_rng(4)
    for name in ("covisit", "itemknn"):
        dense = _dense(side, name)
        for _ in range(20):
            candidates = rng.choice(300, size=int(rng.integers(1, 120)), replace=False)
            sources = rng.choice(300, size=int(rng.integers(0, 12)), replace=True)  # repeats allowed
            weights = rng.random(sources.size)
            positions = side.candidate_positions(candidates)
            sums = side.neighbour_scores_at(name, sources, positions, candidates.size, weights)
            maxima = side.neighbour_max(name, sources, positions, candidates.size)
            want_sum = np.zeros(candidates.size)
            want_max = np.zeros(candidates.size)
            for s, w in zip(sources, weights, strict=True):
                want_sum += w * dense[s, candidates]
                want_max = np.maximum(want_max, dense[s, candidates])
            np.testing.assert_allclose(sums, want_sum, rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(maxima, want_max.astype(np.float32))


def test_candidate_positions_maps_items_to_their_slot() -> None:
    side = _item_side(50, seed=5)
    candidates = np.array([7, 3, 41])
    positions = side.candidate_positions(candidates)
    assert positions[[7, 3, 41]].tolist() == [0, 1, 2]
    assert (np.delete(positions, [7, 3, 41]) == -1).all()


class _Counter:
    calls = 0

    @cached_property
    def value(self) -> int:
        """Doc kept."""
        type(self).calls += 1
        return id(self)


def test_cached_property_computes_once_per_instance_without_a_shared_lock() -> None:
    a, b = _Counter(), _Counter()
    assert a.value == a.value == id(a) and b.value == id(b)
    assert _Counter.calls == 2
    assert _Counter.__dict__["value"].__doc__ == "Doc kept."
    # functools.cached_property on Python 3.11 holds one lock per class attribute while computing:
    # one request's context computing a value stalled every other request's. Ours must not.
    release, second_done = threading.Event(), threading.Event()

    class Slow:
        def __init__(self, block: bool) -> None:
            self.block = block

        @cached_property
        def value(self) -> int:
            if self.block:
                release.wait(5)
            return 1

    first = threading.Thread(target=lambda: Slow(block=True).value, daemon=True)
    first.start()
    second = threading.Thread(target=lambda: (Slow(block=False).value, second_done.set()), daemon=True)
    second.start()
    try:
        assert second_done.wait(2), "one instance's computation waited for another's"
    finally:
        release.set()
        first.join(5)
