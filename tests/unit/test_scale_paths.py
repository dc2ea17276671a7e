"""The vectorised refresh paths (built for 1M users) against plain reference implementations.

Each fast path must give the result of the obvious slow one on small generated data, including
the awkward cases: ties, repeated (user, item) pairs, events at the same second, empty rows.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recsys.candidates.covisit import covisitation, covisitation_coded
from recsys.candidates.generate import generate_candidates, quantise_vectors
from recsys.candidates.index import ItemIndex, resolve_kind
from recsys.candidates.itemknn import itemknn
from recsys.candidates.keys import unique_counts, unique_sorted
from recsys.candidates.matrix import Histories, code_interactions, recent_histories, recent_histories_coded
from recsys.candidates.popularity import popularity_counts, popularity_counts_coded
from recsys.candidates.topn import top_n_per_csr_row, top_n_per_row
from recsys.data.schema import drop_exact_duplicates
from recsys.errors import ConfigError
from recsys.store.codec import decode_user, encode_user, encode_user_rows, index_width


def _log(rng: np.random.Generator, n_users: int = 60, n_items: int = 40, n_events: int = 3000) -> pl.DataFrame:
    """A log with repeats of the same (user, item), same-second events and multi-hour gaps."""
    users = rng.integers(0, n_users, n_events)
    items = rng.integers(0, n_items, n_events)
    ts = 1_600_000_000 + np.sort(rng.integers(0, 200, n_events)) * rng.choice([1, 60, 4000], n_events)
    return pl.DataFrame({"user_id": [f"u{u}" for u in users], "item_id": [f"i{i}" for i in items],
                         "timestamp": ts.astype(np.int64)})


def _naive_top_n(mat: sp.csr_matrix, n: int) -> np.ndarray:
    out = np.zeros(mat.shape, dtype=np.float32)
    for r in range(mat.shape[0]):
        lo, hi = mat.indptr[r], mat.indptr[r + 1]
        keep = np.argsort(-mat.data[lo:hi], kind="stable")[:n]
        out[r, mat.indices[lo:hi][keep]] = mat.data[lo:hi][keep]
    return out


@pytest.mark.parametrize(("n_rows", "n_cols"), [(50, 40), (200, 3), (4, 70_000)])
def test_top_n_per_row_matches_a_row_loop_with_ties(n_rows: int, n_cols: int) -> None:
    mat = sp.random(n_rows, n_cols, density=0.3 if n_cols < 1000 else 0.002, random_state=1, format="csr",
                    dtype=np.float32)
    mat.data = np.round(mat.data * 4) / 4  # many ties (and zeros)
    coo = mat.tocoo()
    got = top_n_per_row(coo.row, coo.col, coo.data, mat.shape, 5)
    assert got.has_sorted_indices
    np.testing.assert_array_equal(got.toarray(), _naive_top_n(mat, 5))


def test_top_n_per_row_in_row_blocks_for_huge_column_spaces() -> None:
    """2^31 columns leave one row per 62-bit key block: the blocked path must agree with the single one."""
    n_cols = 2**31
    rows = np.repeat(np.arange(6), 4)
    cols = np.tile([5, n_cols - 1, 7, 1_000_000], 6)
    vals = np.tile([1.0, 3.0, 3.0, 2.0], 6).astype(np.float32) * np.repeat(np.arange(1, 7), 4)
    got = top_n_per_row(rows, cols, vals, (6, n_cols), 2).tocoo()
    kept = sorted(zip(got.row.tolist(), got.col.tolist(), strict=True))
    # Per row: the two 3.0s win (ties go to the lower column only when a cut falls inside a tie).
    assert kept == sorted((r, c) for r in range(6) for c in (7, n_cols - 1))


@pytest.mark.parametrize("n", [1, 3, 50])
def test_top_n_per_csr_row_matches_a_stable_row_loop(rng: np.random.Generator, n: int) -> None:
    """Exact float64 values (negative too), ties to the entry stored first even with unsorted indices."""
    mat = sp.random(40, 30, density=0.4, random_state=2, format="csr", dtype=np.float64)
    mat.data = np.round(mat.data * 4) / 4 * rng.choice([-1.0, 1.0], mat.nnz) + 1e-12 * (mat.data > 0.9)
    for r in range(mat.shape[0]):  # shuffle each row's storage order
        lo, hi = mat.indptr[r], mat.indptr[r + 1]
        perm = lo + rng.permutation(hi - lo)
        mat.indices[lo:hi], mat.data[lo:hi] = mat.indices[perm], mat.data[perm]
    mat.has_sorted_indices = False
    expected: list[tuple[int, int, float]] = []
    for r in range(mat.shape[0]):
        lo, hi = mat.indptr[r], mat.indptr[r + 1]
        keep = np.argsort(-mat.data[lo:hi], kind="stable")[:n]
        expected += zip([r] * keep.size, mat.indices[lo:hi][keep].tolist(), mat.data[lo:hi][keep].tolist(),
                        strict=True)
    got = top_n_per_csr_row(mat, n).tocoo()
    assert got.dtype == np.float64
    assert sorted(zip(got.row.tolist(), got.col.tolist(), got.data.tolist(), strict=True)) == sorted(expected)
    assert top_n_per_csr_row(sp.csr_matrix((3, 4)), n).nnz == 0


def test_top_n_per_row_rejects_negative_values() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        top_n_per_row(np.array([0]), np.array([0]), np.array([-1.0]), (1, 1), 1)


def test_sort_based_unique_equals_numpy(rng: np.random.Generator) -> None:
    keys = rng.integers(0, 50, 1000)
    np.testing.assert_array_equal(unique_sorted(keys), np.unique(keys))
    got_keys, got_counts = unique_counts(keys)
    exp_keys, exp_counts = np.unique(keys, return_counts=True)
    np.testing.assert_array_equal(got_keys, exp_keys)
    np.testing.assert_array_equal(got_counts, exp_counts)
    assert unique_counts(np.zeros(0, dtype=np.int64))[0].size == 0


def test_coded_matrix_equals_scipy_construction(rng: np.random.Generator) -> None:
    log = _log(rng)
    coded = code_interactions(log)
    m = coded.to_matrix()
    assert m.user_ids.tolist() == sorted(set(log["user_id"].to_list()))
    assert m.item_ids.tolist() == sorted(set(log["item_id"].to_list()))
    u = {x: i for i, x in enumerate(m.user_ids.tolist())}
    it = {x: i for i, x in enumerate(m.item_ids.tolist())}
    expected = sp.csr_matrix((np.ones(log.height), ([u[x] for x in log["user_id"]], [it[x] for x in log["item_id"]])),
                             shape=m.matrix.shape)
    expected.data[:] = 1.0
    np.testing.assert_array_equal(m.matrix.toarray(), (expected.toarray() > 0).astype(np.float32))
    assert m.matrix.has_sorted_indices
    # Events are ordered by (user, timestamp, item).
    order = np.lexsort((coded.item, coded.timestamp, coded.user))
    np.testing.assert_array_equal(order, np.arange(order.size))


def test_code_interactions_with_a_fixed_catalogue_drops_unknown_items_keeps_users() -> None:
    log = pl.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "z"], "timestamp": [1, 2, 3]})
    coded = code_interactions(log, np.array(["y", "x"]))
    m = coded.to_matrix()
    assert m.user_ids.tolist() == ["a", "b"]
    assert m.matrix.toarray().tolist() == [[1.0, 1.0], [0.0, 0.0]]


@pytest.mark.parametrize("limit", [1, 3, 200])
def test_recent_histories_coded_equal_the_polars_reference(rng: np.random.Generator, limit: int) -> None:
    log = _log(rng)
    coded = code_interactions(log)
    item_map = pl.DataFrame({"item_id": coded.item_ids, "_i": np.arange(coded.n_items, dtype=np.int32)})
    fast = recent_histories_coded(coded, limit)
    slow = recent_histories(log, coded.user_ids, item_map, limit)
    assert len(fast) == len(slow) == coded.n_users
    for u in range(coded.n_users):
        assert fast[u].tolist() == slow[u].tolist()
        assert len(set(fast[u].tolist())) == fast[u].size <= limit


def test_histories_container_round_trips_lists() -> None:
    lists = [np.array([3, 1]), np.array([], dtype=np.int64), np.array([2])]
    h = Histories.from_lists(lists)
    assert [x.tolist() for x in h] == [[3, 1], [], [2]]
    assert h.to_csr(4).toarray().tolist() == [[0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 1, 0]]


def test_covisitation_known_answer() -> None:
    """One user, two sessions (gap > 30 min): pairs never cross the gap; window 2."""
    log = pl.DataFrame({"user_id": ["u"] * 5 + ["v"] * 2,
                        "item_id": ["a", "b", "c", "a", "b", "a", "b"],
                        "timestamp": [0, 10, 20, 5000, 5010, 0, 1]})
    item_map = pl.DataFrame({"item_id": ["a", "b", "c"], "_i": np.arange(3, dtype=np.int32)})
    got = covisitation(log, item_map, 3, window=2, top_n=10).toarray()
    # u session 1: a-b, a-c, b-c; u session 2: a-b; v: a-b.
    assert got.tolist() == [[0, 3, 1], [3, 0, 1], [1, 1, 0]]


def _naive_covisit(coded, window: int, gap: int) -> Counter:  # type: ignore[no-untyped-def]
    counts: Counter = Counter()
    n = coded.user.size
    for p in range(n):
        for lag in range(1, window + 1):
            q = p + lag
            if q >= n or coded.user[q] != coded.user[p]:
                break
            if any(coded.timestamp[j] - coded.timestamp[j - 1] > gap for j in range(p + 1, q + 1)):
                break
            a, b = int(coded.item[p]), int(coded.item[q])
            if a != b:
                counts[(a, b)] += 1
                counts[(b, a)] += 1
    return counts


@pytest.mark.parametrize(("chunk_events", "block_entries"), [(7, 5), (1_000_000, 1_000_000)])
def test_covisitation_coded_counts_like_a_loop_in_any_chunking(rng: np.random.Generator, chunk_events: int,
                                                               block_entries: int) -> None:
    coded = code_interactions(_log(rng, n_events=800))
    got = covisitation_coded(coded, window=3, session_gap_seconds=1800, top_n=1000, chunk_events=chunk_events,
                             block_entries=block_entries)
    expected = _naive_covisit(coded, 3, 1800)
    coo = got.tocoo()
    assert dict(zip(zip(coo.row.tolist(), coo.col.tolist(), strict=True), coo.data.tolist(), strict=True)) == \
        {k: float(v) for k, v in expected.items()}


def test_popularity_from_codes_equals_the_frame_version(rng: np.random.Generator) -> None:
    log = _log(rng)
    coded = code_interactions(log)
    m = coded.to_matrix()
    item_map = pl.DataFrame({"item_id": coded.item_ids, "_i": np.arange(coded.n_items, dtype=np.int32)})
    for got, exp in zip(popularity_counts_coded(coded, m.matrix, recent_days=0.05),
                        popularity_counts(log, item_map, coded.n_items, recent_days=0.05), strict=True):
        np.testing.assert_array_equal(got, exp)


def test_drop_exact_duplicates_equals_unique_maintain_order(rng: np.random.Generator) -> None:
    log = _log(rng).with_columns(pl.lit("view").alias("event"))
    doubled = pl.concat([log, log.sample(500, seed=3), log.head(10)])
    got = drop_exact_duplicates(doubled)
    assert got.equals(doubled.unique(maintain_order=True))
    assert drop_exact_duplicates(log).equals(log.unique(maintain_order=True))


def _clustered_factors(rng: np.random.Generator, n_items: int = 6000, dim: int = 16
                       ) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.normal(size=(30, dim))
    items = centres[rng.integers(0, 30, n_items)] + 0.3 * rng.normal(size=(n_items, dim))
    items *= rng.lognormal(0, 0.5, n_items)[:, None]  # unequal norms (popular items are long), like ALS
    users = centres[rng.integers(0, 30, 300)] + 0.3 * rng.normal(size=(300, dim))
    return users.astype(np.float32), items.astype(np.float32)


def test_ivf_index_returns_exact_inner_products_and_high_recall(rng: np.random.Generator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    users, items = _clustered_factors(rng)
    ivf = ItemIndex("ivf", nprobe=16).fit(items)
    assert ivf.augmented
    ids, scores = ivf.search(users, 50)
    np.testing.assert_allclose(scores, np.einsum("ud,ukd->uk", users, items[ids]), rtol=1e-4, atol=1e-3)
    exact = np.argsort(-(users @ items.T), axis=1)[:, :50]
    recall = np.mean([len(set(a) & set(b)) / 50 for a, b in zip(ids.tolist(), exact.tolist(), strict=True)])
    assert recall > 0.95  # IVF on raw inner products: 0.87 on the same data and nprobe
    loaded = ItemIndex.from_bytes(ivf.to_bytes(), "ivf")
    again_ids, again_scores = loaded.search(users, 50)
    np.testing.assert_array_equal(again_ids, ids)
    np.testing.assert_allclose(again_scores, scores, rtol=1e-6)


def test_auto_index_kind_follows_catalogue_size() -> None:
    assert resolve_kind("auto", 19_999, 20_000) == "flat"
    assert resolve_kind("auto", 20_000, 20_000) == "ivf"
    assert resolve_kind("hnsw", 10, 20_000) == "hnsw"
    with pytest.raises(ConfigError):
        resolve_kind("annoy", 10, 20_000)


def test_generate_with_a_coarse_index_researches_short_rows_exactly(rng: np.random.Generator) -> None:
    """nprobe=1 leaves heavy users short of unseen items: they get the exact list, never seen items."""
    users, items = _clustered_factors(rng)
    n_items = items.shape[0]
    seen_rows = [rng.choice(n_items, size=s, replace=False) for s in rng.integers(1, 400, users.shape[0])]
    seen = sp.csr_matrix((np.ones(sum(r.size for r in seen_rows), dtype=np.float32),
                          (np.repeat(np.arange(users.shape[0]), [r.size for r in seen_rows]),
                           np.concatenate(seen_rows))), shape=(users.shape[0], n_items))
    popular = np.arange(n_items)
    coarse = generate_candidates(users, items, ItemIndex("ivf", nprobe=1).fit(items), seen, popular, 100,
                                 chunk_size=64)
    flat = generate_candidates(users, items, ItemIndex("flat").fit(items), seen, popular, 100, chunk_size=64)
    assert (coarse.n_primary == 100).all()
    for u in range(users.shape[0]):
        assert not set(coarse.items[u].tolist()) & set(seen_rows[u].tolist())
    # Rows whose heaviest-user search came back short were redone exactly: at least the heaviest one.
    heavy = int(np.argmax([r.size for r in seen_rows]))
    assert coarse.items[heavy].tolist() == flat.items[heavy].tolist()


@pytest.mark.parametrize("n_items", [100, 50_000, 70_000, 2**24])
def test_user_rows_in_slices_equal_one_pass_and_the_scalar_codec(rng: np.random.Generator, n_items: int) -> None:
    """The batch encoder is byte-identical to encoding each user alone, whatever the batch boundaries
    (a user's value must not depend on the batch it was written in), and every width decodes back."""
    width = index_width(n_items)
    items = rng.integers(0, n_items, size=(30, 10))
    items[3, 7:] = -1  # a short row
    items[4, :] = -1  # no candidates at all
    primary = np.full(30, 8, dtype=np.int32)
    vectors = rng.normal(size=(30, 6)).astype(np.float32)
    lists = [rng.integers(0, n_items, size=s) for s in rng.integers(0, 40, size=30)]
    lists[5] = np.zeros(0, dtype=np.int64)
    h = Histories.from_lists(lists)
    whole = encode_user_rows(items, primary, vectors, h.indptr, h.indices, 0, 30, width=width)
    assert encode_user_rows(items[:12], primary[:12], vectors[:12], h.indptr, h.indices, 0, 12, width=width) + \
        encode_user_rows(items[12:], primary[12:], vectors[12:], h.indptr, h.indices, 12, 30, width=width) == whole
    for u in range(30):
        valid = items[u] >= 0
        assert whole[u] == encode_user(items[u][valid], 8, vectors[u], lists[u], width=width)
        value = decode_user(whole[u], n_items)
        assert value.candidates.tolist() == items[u][valid].tolist()
        assert value.n_primary == min(8, int(valid.sum()))
        assert value.history.tolist() == lists[u].tolist()
        np.testing.assert_array_equal(value.user_vector, quantise_vectors(vectors[u:u + 1])[0])


def _dense_itemknn(x: sp.csr_matrix, k: int, shrink: float) -> np.ndarray:
    b = (x.toarray() > 0).astype(np.float32)
    co = b.T @ b
    norms = np.sqrt(b.sum(axis=0))
    sim = co / (np.outer(norms, norms) + np.float32(shrink))
    np.fill_diagonal(sim, 0.0)
    return _naive_top_n(sp.csr_matrix(sim), k)


def test_itemknn_equals_dense_cosine_top_k(rng: np.random.Generator) -> None:
    x = sp.random(300, 80, density=0.08, random_state=4, format="csr", dtype=np.float32)
    got = itemknn(x, top_k=7, shrink=10.0).toarray()
    np.testing.assert_allclose(got, _dense_itemknn(x, 7, 10.0), rtol=1e-6, atol=1e-7)


def test_itemknn_keeps_disjoint_groups_apart_and_samples_deterministically(rng: np.random.Generator) -> None:
    group = rng.integers(0, 2, 400)  # users of group g touch only items of group g
    cols = [rng.choice(np.arange(20) + 20 * g, size=5, replace=False) for g in group]
    x = sp.csr_matrix((np.ones(2000, dtype=np.float32), (np.repeat(np.arange(400), 5), np.concatenate(cols))),
                      shape=(400, 40))
    full = itemknn(x, top_k=10)
    coo = full.tocoo()
    assert coo.nnz and ((coo.row < 20) == (coo.col < 20)).all()
    sampled = itemknn(x, top_k=10, max_pairs=2000, seed=1)  # 400 users × 25 work: ~80 users fit
    assert sampled.nnz and (sampled != itemknn(x, top_k=10, max_pairs=2000, seed=1)).nnz == 0
    assert (sampled != full).nnz > 0
