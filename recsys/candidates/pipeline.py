"""Interactions → ALS → FAISS → top-N lists + item bundle, in memory (no store, no files).

Shared by `recsys refresh`, ranker training and evaluation, so every one of them sees the same
candidates for the same data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp

from recsys.candidates.als import ALSModel
from recsys.candidates.bundle import ItemBundle
from recsys.candidates.covisit import covisitation_coded
from recsys.candidates.generate import CandidateLists, generate_candidates
from recsys.candidates.index import ItemIndex, resolve_kind
from recsys.candidates.itemknn import itemknn
from recsys.candidates.matrix import (
    CodedInteractions,
    Histories,
    InteractionMatrix,
    code_interactions,
    recent_histories_coded,
)
from recsys.candidates.popularity import popular_order, popularity_counts_coded
from recsys.config import ALSConfig, CandidateConfig
from recsys.progress import NullProgress, Progress
from recsys.timing import Stopwatch

log = logging.getLogger(__name__)

HISTORY_LIMIT = 200


@dataclass
class CandidateArtifacts:
    matrix: InteractionMatrix
    als: ALSModel
    bundle: ItemBundle
    lists: CandidateLists
    histories: Histories  # histories[u]: user u's recent item indices, oldest first
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per stage
    cpu_timings: dict[str, float] = field(default_factory=dict)  # CPU seconds (all threads) per stage


def category_matrix(items: pl.DataFrame | None, item_ids: np.ndarray) -> tuple[sp.csr_matrix, list[str]]:
    """Item × category indicator matrix aligned with `item_ids`."""
    if items is None or items.height == 0:
        return sp.csr_matrix((len(item_ids), 0), dtype=np.float32), []
    exploded = items.select("item_id", "categories").explode("categories").drop_nulls()
    names = sorted(exploded["categories"].unique().to_list())
    if not names:
        return sp.csr_matrix((len(item_ids), 0), dtype=np.float32), []
    cat_idx = pl.DataFrame({"categories": names, "_c": np.arange(len(names), dtype=np.int32)})
    item_idx = pl.DataFrame({"item_id": item_ids, "_i": np.arange(len(item_ids), dtype=np.int32)})
    coded = exploded.join(item_idx, on="item_id").join(cat_idx, on="categories")
    mat = sp.csr_matrix((np.ones(coded.height, dtype=np.float32), (coded["_i"].to_numpy(),
                                                                   coded["_c"].to_numpy())),
                        shape=(len(item_ids), len(names)))
    mat.sum_duplicates()
    mat.data[:] = 1.0
    return mat, names


def build_candidates(interactions: pl.DataFrame, items: pl.DataFrame | None, *, version: str,
                     als_config: ALSConfig, candidate_config: CandidateConfig,
                     progress: Progress | None = None) -> CandidateArtifacts:
    """Fit ALS on `interactions`, index item factors, and generate every user's top-N."""
    watch = Stopwatch("candidates")
    with watch.stage("code"):
        coded = code_interactions(interactions)
    return build_candidates_coded(coded, items, version=version, als_config=als_config,
                                  candidate_config=candidate_config, progress=progress, watch=watch)


def build_candidates_coded(coded: CodedInteractions, items: pl.DataFrame | None, *, version: str,
                           als_config: ALSConfig, candidate_config: CandidateConfig,
                           progress: Progress | None = None, watch: Stopwatch | None = None) -> CandidateArtifacts:
    """`build_candidates` from an already coded log: lets a caller drop the string frame first (~3 GB at 1M users)."""
    progress = progress or NullProgress()
    watch = watch or Stopwatch("candidates")
    with watch.stage("matrix"):
        matrix = coded.to_matrix()

    with watch.stage("als"):
        tick = progress.stage("ALS fit", 1)
        als = ALSModel(als_config).fit(matrix.matrix)
        tick(1)

    with watch.stage("faiss"):
        index = fit_index(als.item_factors_, matrix.n_items, candidate_config, seed=als_config.random_state)
        all_time, recent = popularity_counts_coded(coded, matrix.matrix,
                                                   recent_days=candidate_config.recent_window_days)
        popular = popular_order(all_time)
        lists = generate_candidates(als.user_factors_, als.item_factors_, index, matrix.matrix, popular,
                                    candidate_config.n_candidates,
                                    progress=progress.stage("FAISS top-N", matrix.n_users))
    kind = index.kind
    bundle, histories = build_item_side(coded, matrix, items, als.item_factors_, index, (all_time, recent),
                                        version=version, candidate_config=candidate_config,
                                        seed=als_config.random_state, watch=watch)
    log.info("event=candidates_built users=%d items=%d index=%s %s", matrix.n_users, matrix.n_items, kind,
             " ".join(f"{k}_s={v:.2f}" for k, v in watch.wall.items()))
    return CandidateArtifacts(matrix, als, bundle, lists, histories, watch.wall, watch.cpu)


def fit_index(item_factors: np.ndarray, n_items: int, candidate_config: CandidateConfig, *, seed: int) -> ItemIndex:
    """The FAISS index over item factors the configuration asks for (flat below `ann_min_items`)."""
    kind = resolve_kind(candidate_config.index, n_items, candidate_config.ann_min_items)
    return ItemIndex(kind, nprobe=candidate_config.ivf_nprobe, seed=seed).fit(item_factors)


def build_item_side(coded: CodedInteractions, matrix: InteractionMatrix, items: pl.DataFrame | None,
                    item_factors: np.ndarray, index: ItemIndex, popularity: tuple[np.ndarray, np.ndarray], *,
                    version: str, candidate_config: CandidateConfig, seed: int,
                    watch: Stopwatch) -> tuple[ItemBundle, Histories]:
    """Co-visitation, item-kNN, categories and the bundle around given item factors, plus every user's recent
    history. Shared by the engines, so a bundle does not depend on which engine fitted the factors."""
    with watch.stage("covisit"):
        covisit = covisitation_coded(coded, window=candidate_config.covisit_window,
                                     top_n=candidate_config.covisit_neighbours)
    with watch.stage("itemknn"):
        histories = recent_histories_coded(coded, HISTORY_LIMIT)
        knn = itemknn(histories.to_csr(matrix.n_items), top_k=candidate_config.covisit_neighbours,
                      max_pairs=candidate_config.itemknn_max_pairs, seed=seed)
    with watch.stage("bundle"):
        categories, names = category_matrix(items, matrix.item_ids)
        bundle = ItemBundle(version, matrix.item_ids.tolist(), item_factors, popularity[0], popularity[1], covisit,
                            knn, categories, names, index)
    return bundle, histories
