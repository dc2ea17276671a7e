"""The item-side bundle: one versioned artifact directory with a JSON manifest (no pickle).

    manifest.json      version, counts, parameters, file list with sha256
    item_ids.json      external item ids in index order
    item_factors.npy   float32 [n_items, factors]
    popularity.npz     all_time, recent (float32 [n_items])
    covisit.npz        CSR arrays of the co-visitation neighbours (indptr, indices, data)
    itemknn.npz        CSR arrays of the item-kNN cosine neighbours
    categories.npz     CSR item×category (indptr, indices); names in the manifest
    index.faiss        FAISS index over item factors
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recsys.candidates.index import ItemIndex
from recsys.errors import ArtifactError

BUNDLE_FORMAT = 1
_FILES = ("item_ids.json", "item_factors.npy", "popularity.npz", "covisit.npz", "itemknn.npz", "categories.npz",
          "index.faiss")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
    manifest: dict[str, object] | None = None

    def __post_init__(self) -> None:
        self.item_index = {it: i for i, it in enumerate(self.item_ids)}

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def indices_of(self, item_ids: list[str]) -> np.ndarray:
        """Internal indices of known items; unknown ids are skipped, not fatal."""
        idx = [self.item_index[i] for i in item_ids if i in self.item_index]
        return np.asarray(idx, dtype=np.int64)

    # ---- persistence ----------------------------------------------------------------------
    def save(self, root: Path, extra: dict[str, object] | None = None) -> Path:
        """Write to root/.tmp-<version>, then rename into root/<version> (readers never see half)."""
        root.mkdir(parents=True, exist_ok=True)
        final = root / self.version
        tmp = root / f".tmp-{self.version}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        (tmp / "item_ids.json").write_text(json.dumps(self.item_ids))
        np.save(tmp / "item_factors.npy", self.item_factors.astype(np.float32), allow_pickle=False)
        np.savez(tmp / "popularity.npz", all_time=self.popularity, recent=self.popularity_recent)
        for name, mat in (("covisit", self.covisit), ("itemknn", self.itemknn)):
            m = mat.tocsr()
            np.savez(tmp / f"{name}.npz", indptr=m.indptr, indices=m.indices, data=m.data, shape=np.asarray(m.shape))
        cat = self.categories.tocsr()
        np.savez(tmp / "categories.npz", indptr=cat.indptr, indices=cat.indices, shape=np.asarray(cat.shape))
        index = self.index or ItemIndex("flat").fit(self.item_factors)
        index.save(tmp / "index.faiss")
        manifest = {
            "format": BUNDLE_FORMAT, "version": self.version, "created_at": time.time(),
            "n_items": self.n_items, "factors": int(self.item_factors.shape[1]),
            "category_names": self.category_names, "index_kind": index.kind,
            "files": {name: _sha256(tmp / name) for name in _FILES},
            **(extra or {}),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        self.manifest = manifest
        return final

    @classmethod
    def load(cls, path: Path, *, verify: bool = True, with_index: bool = True) -> ItemBundle:
        manifest_path = path / "manifest.json"
        if not manifest_path.exists():
            raise ArtifactError(f"bundle {path} has no manifest.json (incomplete or not a bundle)")
        try:
            manifest = json.loads(manifest_path.read_text())
            if verify:
                for name, digest in manifest["files"].items():
                    if _sha256(path / name) != digest:
                        raise ArtifactError(f"bundle file {path / name} does not match its manifest checksum")
            item_ids = json.loads((path / "item_ids.json").read_text())
            factors = np.load(path / "item_factors.npy", allow_pickle=False)
            with np.load(path / "popularity.npz", allow_pickle=False) as pop:
                all_time, recent = pop["all_time"], pop["recent"]
            covisit, knn = (_load_csr(path / f"{name}.npz") for name in ("covisit", "itemknn"))
            with np.load(path / "categories.npz", allow_pickle=False) as cat:
                categories = sp.csr_matrix((np.ones(cat["indices"].size, dtype=np.float32), cat["indices"],
                                            cat["indptr"]), shape=tuple(cat["shape"]))
            index = ItemIndex.load(path / "index.faiss", str(manifest.get("index_kind", "flat"))) \
                if with_index else None
        except ArtifactError:
            raise
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactError(f"cannot load bundle {path}: {exc}") from exc
        if factors.shape[0] != len(item_ids):
            raise ArtifactError(f"bundle {path}: {factors.shape[0]} factor rows for {len(item_ids)} items")
        return cls(str(manifest["version"]), item_ids, factors, all_time, recent, covisit, knn, categories,
                   list(manifest.get("category_names", [])), index, manifest)


def _load_csr(path: Path) -> sp.csr_matrix:
    with np.load(path, allow_pickle=False) as f:
        return sp.csr_matrix((f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"]))


def bundles_dir(artifacts_dir: Path) -> Path:
    return artifacts_dir / "bundles"


def prune_bundles(artifacts_dir: Path, keep: set[str], max_kept: int = 5) -> None:
    """Delete old bundle directories, never one in `keep` (current and previous versions)."""
    root = bundles_dir(artifacts_dir)
    if not root.exists():
        return
    dirs = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    for p in dirs[:-max_kept]:
        if p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)
    for p in root.glob(".tmp-*"):
        if time.time() - p.stat().st_mtime > 3600:
            shutil.rmtree(p, ignore_errors=True)
