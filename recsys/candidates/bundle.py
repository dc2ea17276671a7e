"""The item-side bundle: everything item-side for one candidate version, as named files (no pickle).

    item_ids.json      external item ids in index order
    item_factors.npy   float32 [n_items, factors]
    popularity.npz     all_time, recent (float32 [n_items])
    covisit.npz        CSR arrays of the co-visitation neighbours (indptr, indices, data, shape)
    itemknn.npz        CSR arrays of the item-kNN cosine neighbours
    categories.npz     CSR item×category (indptr, indices, shape); names in the manifest
    index.faiss        FAISS index over item factors

Where the files live and their checksums are the artifact registry's business (`save`/`load` below).
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.artifacts import ArtifactRegistry, BundleManifest
from recsys.candidates.index import ItemIndex
from recsys.errors import ArtifactError

BUNDLE_FORMAT = 1
_FILES = ("item_ids.json", "item_factors.npy", "popularity.npz", "covisit.npz", "itemknn.npz", "categories.npz",
          "index.faiss")


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as the allow_pickle flag
    return buf.getvalue()


def _csr_npz(mat: sp.spmatrix, *, with_data: bool = True) -> bytes:
    m = sp.csr_matrix(mat)
    arrays = {"indptr": m.indptr, "indices": m.indices, "shape": np.asarray(m.shape)}
    if with_data:
        arrays["data"] = m.data
    return _npz(**arrays)


def _load_npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _load_csr(data: bytes) -> sp.csr_matrix:
    f = _load_npz(data)
    values = f["data"] if "data" in f else np.ones(f["indices"].size, dtype=np.float32)
    return sp.csr_matrix((values, f["indices"], f["indptr"]), shape=tuple(int(x) for x in f["shape"]))


@dataclass
class ItemBundle:
    """Everything item-side that the online path and the ranker need for one candidate version."""

    version: str
    item_ids: list[str]
    item_factors: np.ndarray
    popularity: np.ndarray
    popularity_recent: np.ndarray
    covisit: sp.csr_matrix
    itemknn: sp.csr_matrix
    categories: sp.csr_matrix  # item × category, 1.0 where the item has the category
    category_names: list[str]
    index: ItemIndex | None = None
    manifest: BundleManifest | None = None

    def __post_init__(self) -> None:
        self.item_index = {it: i for i, it in enumerate(self.item_ids)}

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def indices_of(self, item_ids: list[str]) -> np.ndarray:
        """Internal indices of known items; unknown ids are skipped, not fatal."""
        idx = [self.item_index[i] for i in item_ids if i in self.item_index]
        return np.asarray(idx, dtype=np.int64)

    # ---- as files ---------------------------------------------------------------------------------
    def to_files(self) -> dict[str, bytes]:
        index = self.index or ItemIndex("flat").fit(self.item_factors)
        self.index = index
        return {
            "item_ids.json": json.dumps(self.item_ids).encode(),
            "item_factors.npy": _npy(self.item_factors.astype(np.float32)),
            "popularity.npz": _npz(all_time=self.popularity, recent=self.popularity_recent),
            "covisit.npz": _csr_npz(self.covisit),
            "itemknn.npz": _csr_npz(self.itemknn),
            "categories.npz": _csr_npz(self.categories, with_data=False),
            "index.faiss": index.to_bytes(),
        }

    @classmethod
    def from_files(cls, manifest: BundleManifest, files: dict[str, bytes], *, with_index: bool = True) -> ItemBundle:
        try:
            item_ids = json.loads(files["item_ids.json"])
            factors = np.load(io.BytesIO(files["item_factors.npy"]), allow_pickle=False)
            pop = _load_npz(files["popularity.npz"])
            covisit, knn = _load_csr(files["covisit.npz"]), _load_csr(files["itemknn.npz"])
            categories = _load_csr(files["categories.npz"])
            index = ItemIndex.from_bytes(files["index.faiss"], manifest.index_kind) if with_index else None
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ArtifactError(f"cannot load bundle {manifest.version}: {exc}") from exc
        if factors.shape[0] != len(item_ids):
            raise ArtifactError(f"bundle {manifest.version}: {factors.shape[0]} factor rows for {len(item_ids)} items")
        return cls(manifest.version, item_ids, factors, pop["all_time"], pop["recent"], covisit, knn, categories,
                   list(manifest.category_names), index, manifest)

    # ---- through the registry ------------------------------------------------------------------------
    def save(self, registry: ArtifactRegistry, extra: dict[str, Any] | None = None) -> BundleManifest:
        """Write the bundle as one version of the registry (all files or none)."""
        files = self.to_files()
        assert self.index is not None  # set by to_files
        self.manifest = registry.save_bundle(self.version, files, {
            "bundle_format": BUNDLE_FORMAT, "created_at": time.time(), "n_items": self.n_items,
            "factors": int(self.item_factors.shape[1]), "category_names": self.category_names,
            "index_kind": self.index.kind, **(extra or {})})
        return self.manifest

    @classmethod
    def load(cls, registry: ArtifactRegistry, version: str, *, verify: bool = True,
             with_index: bool = True) -> ItemBundle:
        names = [n for n in _FILES if with_index or n != "index.faiss"]
        manifest, files = registry.bundle_files(version, names, verify=verify)
        return cls.from_files(manifest, files, with_index=with_index)
