"""Top-k metrics with binary gains, as defined in DESIGN.md §6."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

METRIC_KEYS = ("ndcg@10", "recall@10", "precision@10", "map@10", "hit@10", "recall@100", "coverage@10")


def user_metrics(recommended: Sequence[str], targets: Iterable[str], k: int = 10) -> dict[str, float]:
    """nDCG/Recall/Precision/MAP/Hit at k for one user (targets non-empty)."""
    target_set = set(targets)
    top = list(recommended[:k])
    hits = np.array([1.0 if it in target_set else 0.0 for it in top])
    if hits.size < k:
        hits = np.pad(hits, (0, k - hits.size))
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal_n = min(len(target_set), k)
    dcg = float((hits * discounts).sum())
    idcg = float(discounts[:ideal_n].sum())
    cum_hits = np.cumsum(hits)
    precisions = cum_hits / np.arange(1, k + 1)
    ap = float((precisions * hits).sum() / ideal_n)
    n_hits = float(hits.sum())
    return {
        f"ndcg@{k}": dcg / idcg,
        f"recall@{k}": n_hits / len(target_set),
        f"precision@{k}": n_hits / k,
        f"map@{k}": ap,
        f"hit@{k}": 1.0 if n_hits > 0 else 0.0,
    }


def recall_at(recommended: Sequence[str], targets: Iterable[str], k: int) -> float:
    target_set = set(targets)
    return len(target_set.intersection(recommended[:k])) / len(target_set)


def evaluate_lists(lists: Mapping[str, Sequence[str]], targets: Mapping[str, Sequence[str]], n_items: int,
                   candidates: Mapping[str, Sequence[str]] | None = None) -> dict[str, float]:
    """Average metrics over the evaluation users; `candidates` gives recall@100 of a 100-list."""
    per_user = [user_metrics(lists.get(u, []), t) for u, t in targets.items()]
    out = {key: float(np.mean([m[key] for m in per_user])) for key in per_user[0]}
    cand = candidates if candidates is not None else lists
    out["recall@100"] = float(np.mean([recall_at(cand.get(u, []), t, 100) for u, t in targets.items()]))
    distinct = {it for u in targets for it in list(lists.get(u, []))[:10]}
    out["coverage@10"] = len(distinct) / max(n_items, 1)
    out["users"] = float(len(targets))
    return out
