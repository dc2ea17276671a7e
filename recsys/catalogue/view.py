"""The catalogue as arrays over one bundle's item indices: what a request filters with.

Built once per (catalogue version, candidate version), never per request: the per-request work is a
few vectorised masks over the bundle's items (availability, category and attribute filters).
Items the catalogue does not know keep the bundle's categories and are available: a service without
a catalogue serves as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.store import CatalogueSnapshot, ItemRecord


@dataclass(frozen=True)
class AttributeColumn:
    """One attribute over the bundle's items: numbers (NaN = missing), bools (-1 = missing) or string codes
    (-1 = missing, `vocab` maps text to code)."""

    kind: str
    values: np.ndarray
    vocab: dict[str, int]


class CatalogueView:
    def __init__(self, snapshot: CatalogueSnapshot, item_ids: list[str], item_index: dict[str, int],
                 bundle_categories: sp.csr_matrix, bundle_category_names: list[str], bundle_version: str) -> None:
        self.version = snapshot.version
        self.bundle_version = bundle_version
        self.n_items = n = len(item_ids)
        known = [(item_index[i], r) for i, r in snapshot.items.items() if i in item_index]
        self.records = snapshot.items
        # Never available again until put again: hidden or deleted.
        self.blocked = np.asarray(sorted(i for i, r in known if r.deleted or r.availability != "available"),
                                  dtype=np.int64)
        timed = sorted((i, r.available_until) for i, r in known
                       if not r.deleted and r.availability == "available" and r.available_until is not None)
        self.until_items = np.asarray([i for i, _ in timed], dtype=np.int64)
        self.until_at = np.asarray([t for _, t in timed], dtype=np.float64)
        # Items of the catalogue the candidate version does not know (added after its refresh).
        self.new_items = [r for i, r in snapshot.items.items() if i not in item_index and not r.deleted]
        self._categories(known, bundle_categories, bundle_category_names, n)
        self.attributes = self._attributes(known, n)
        self._masks: dict[str, np.ndarray] = {}

    def _categories(self, known: list[tuple[int, ItemRecord]], bundle: sp.csr_matrix, names: list[str],
                    n: int) -> None:
        """Item × category (CSR): the catalogue's categories where it has the item, else the bundle's."""
        self.category_names = list(names)
        self.category_index = {c: j for j, c in enumerate(self.category_names)}
        for _, r in known:
            for c in r.categories:
                if c not in self.category_index:
                    self.category_index[c] = len(self.category_names)
                    self.category_names.append(c)
        rows = [list(bundle.indices[bundle.indptr[i]:bundle.indptr[i + 1]]) if i < bundle.shape[0] else []
                for i in range(n)]
        for i, r in known:
            rows[i] = [self.category_index[c] for c in r.categories]
        indptr = np.zeros(n + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(r) for r in rows])
        indices = np.asarray([c for r in rows for c in r], dtype=np.int64)
        self.item_categories = sp.csr_matrix((np.ones(indices.size, dtype=np.float32), indices, indptr),
                                             shape=(n, len(self.category_names)))

    @staticmethod
    def _attributes(known: list[tuple[int, ItemRecord]], n: int) -> dict[str, AttributeColumn]:
        out: dict[str, AttributeColumn] = {}
        for i, r in known:
            if r.deleted:
                continue
            for name, value in r.attributes.items():
                col = out.get(name)
                if col is None:
                    kind = "bool" if isinstance(value, bool) else "number" if isinstance(value, float) else "string"
                    values = (np.full(n, np.nan) if kind == "number" else
                              np.full(n, -1, dtype=np.int8 if kind == "bool" else np.int32))
                    col = out[name] = AttributeColumn(kind, values, {})
                if col.kind == "number" and isinstance(value, float) and not isinstance(value, bool):
                    col.values[i] = value
                elif col.kind == "bool" and isinstance(value, bool):
                    col.values[i] = int(value)
                elif col.kind == "string" and isinstance(value, str):
                    col.values[i] = col.vocab.setdefault(value, len(col.vocab))
                # A value of another type (only a hand-edited store can hold one) matches no filter.
        return out

    def unavailable(self, now: float) -> np.ndarray:
        """Item indices not to serve at `now` (hidden, deleted, or past their available_until)."""
        if self.until_items.size == 0:
            return self.blocked
        return np.concatenate([self.blocked, self.until_items[self.until_at <= now]])

    def category_mask(self, name: str) -> np.ndarray:
        """Items in category `name` (all False for a category nobody has). Cached per view."""
        mask = self._masks.get(name)
        if mask is None:
            mask = np.zeros(self.n_items, dtype=bool)
            j = self.category_index.get(name)
            if j is not None:
                mask[self.item_categories[:, j].nonzero()[0]] = True
            self._masks[name] = mask  # a race computes it twice, never wrongly
        return mask

    def categories_of(self, idx: int) -> np.ndarray:
        m = self.item_categories
        return m.indices[m.indptr[idx]:m.indptr[idx + 1]]
