"""Recall of approximate candidate search against the exact (flat) lists, and what it saves.

    python benchmarks/ann_recall.py --data /tmp/recsys-scale/synth-100000

Fits ALS once (the refresh's settings), then generates every user's 100 unseen candidates with each
index and compares them with the exact lists: recall = |approx ∩ exact| / 100, averaged over users.
IVF is the refresh's L2 form of maximum inner product search (see recsys/candidates/index.py); for
contrast it also runs FAISS's IVF on raw inner products and HNSW. Seconds are wall and CPU of
`generate_candidates` (index build included) on the shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import faiss
import numpy as np

from recsys.candidates.als import ALSModel
from recsys.candidates.generate import generate_candidates
from recsys.candidates.index import ItemIndex
from recsys.candidates.matrix import code_interactions
from recsys.candidates.popularity import popular_order
from recsys.config import Settings
from recsys.data.loaders import load_dataset

REPO = Path(__file__).resolve().parents[1]


class InnerProductIVF(ItemIndex):
    """FAISS IVF clustered on raw inner products (the usual first try; kept here for contrast)."""

    def fit(self, item_factors: np.ndarray) -> InnerProductIVF:
        vecs = np.ascontiguousarray(item_factors, dtype=np.float32)
        n, dim = vecs.shape
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, max(16, int(4 * math.sqrt(n))),
                                   faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = self.seed
        index.train(vecs)
        index.nprobe = self.nprobe
        index.add(vecs)
        self.index_, self.n_items_, self.vectors_ = index, n, vecs
        return self


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/tmp/recsys-scale/synth-100000")
    ap.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "ann_recall.json"))
    args = ap.parse_args()
    settings = Settings()
    coded = code_interactions(load_dataset(args.data).interactions)
    matrix = coded.to_matrix()
    t = time.perf_counter()
    als = ALSModel(settings.als).fit(matrix.matrix)
    als_s = time.perf_counter() - t
    popular = popular_order(np.bincount(matrix.matrix.indices, minlength=matrix.n_items).astype(np.float32))
    configs: list[tuple[str, ItemIndex]] = [("flat", ItemIndex("flat"))]
    configs += [(f"ivf (L2 form) nprobe={p}", ItemIndex("ivf", nprobe=p)) for p in (8, 16, 32, 64)]
    configs += [(f"ivf (inner product) nprobe={p}", InnerProductIVF("ivf", nprobe=p)) for p in (32, 64)]
    configs += [("hnsw M=32 efSearch=256", ItemIndex("hnsw", ef_search=256))]
    rows, exact = [], None
    for name, index in configs:
        wall, cpu = time.perf_counter(), time.process_time()
        index.fit(als.item_factors_)
        lists = generate_candidates(als.user_factors_, als.item_factors_, index, matrix.matrix, popular, 100)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if exact is None:
            exact = lists.items
        keys = np.arange(exact.shape[0], dtype=np.int64)[:, None] * matrix.n_items
        recall = float(np.isin(keys + lists.items, keys + exact).sum() / exact.size)
        rows.append({"index": name, "recall_vs_flat": round(recall, 4), "wall_s": round(wall, 1),
                     "cpu_s": round(cpu, 1)})
        print(rows[-1], flush=True)
    out = {"data": args.data, "users": matrix.n_users, "items": matrix.n_items, "als_fit_s": round(als_s, 1),
           "loadavg": [round(x, 2) for x in os.getloadavg()], "runs": rows}
    Path(args.json).write_text(json.dumps(out, indent=2))
    print("| index | recall of exact top-100 | wall s | CPU s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['index']} | {r['recall_vs_flat']:.4f} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} |")


if __name__ == "__main__":
    main()
