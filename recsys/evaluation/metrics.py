"""Top-k metrics with binary gains, as defined in DESIGN.md §6."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

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


@dataclass
class ListScores:
    """Per-user metric arrays (row order = `users`) plus their means and the k = 1..k_max curves.

    Per-user arrays are what the bootstrap resamples; the means are what the report prints.
    """

    users: list[str]
    per_user: dict[str, np.ndarray]
    coverage: float
    ndcg_curve: np.ndarray  # mean nDCG@k for k = 1..k_max
    recall_curve: np.ndarray  # mean Recall@k for k = 1..k_max

    def means(self) -> dict[str, float]:
        out = {key: float(values.mean()) for key, values in self.per_user.items()}
        out["coverage@10"] = self.coverage
        return {key: out[key] for key in METRIC_KEYS if key in out}


def _hits(lists: Mapping[str, Sequence[str]], targets: Mapping[str, Sequence[str]], users: Sequence[str],
          depth: int) -> np.ndarray:
    hits = np.zeros((len(users), depth), dtype=bool)
    for row, user in enumerate(users):
        target_set = set(targets[user])
        for col, item in enumerate(list(lists.get(user, []))[:depth]):
            hits[row, col] = item in target_set
    return hits


def score_lists(lists: Mapping[str, Sequence[str]], targets: Mapping[str, Sequence[str]], n_items: int, *,
                users: Sequence[str] | None = None, k: int = 10, k_max: int = 20,
                recall_depth: int = 100) -> ListScores:
    """Vectorised DESIGN.md §6 metrics for every user at once (same definitions as `user_metrics`).

    A list shorter than k is scored as if padded with misses; a user absent from `lists` scores 0.
    Coverage counts distinct items in the top-k lists of `users` over the catalogue size `n_items`.
    """
    users = list(targets) if users is None else list(users)
    if not users:
        raise ValueError("score_lists needs at least one user")
    depth = max(k, k_max, recall_depth)
    hits = _hits(lists, targets, users, depth).astype(np.float64)
    n_targets = np.array([len(set(targets[u])) for u in users], dtype=np.float64)
    discounts = 1.0 / np.log2(np.arange(2, depth + 2))
    dcg = np.cumsum(hits * discounts, axis=1)  # dcg[:, j] = DCG@(j+1)
    ideal_cum = np.cumsum(discounts)
    cum_hits = np.cumsum(hits, axis=1)

    def ndcg_at(kk: int) -> np.ndarray:
        ideal_n = np.minimum(n_targets, kk).astype(int)
        return dcg[:, kk - 1] / ideal_cum[ideal_n - 1]

    precisions = cum_hits[:, :k] / np.arange(1, k + 1)
    per_user = {
        f"ndcg@{k}": ndcg_at(k),
        f"recall@{k}": cum_hits[:, k - 1] / n_targets,
        f"precision@{k}": cum_hits[:, k - 1] / k,
        f"map@{k}": (precisions * hits[:, :k]).sum(axis=1) / np.minimum(n_targets, k),
        f"hit@{k}": (cum_hits[:, k - 1] > 0).astype(np.float64),
        f"recall@{recall_depth}": cum_hits[:, recall_depth - 1] / n_targets,
    }
    distinct = {it for u in users for it in list(lists.get(u, []))[:k]}
    ks = range(1, k_max + 1)
    ndcg_curve = np.array([ndcg_at(kk).mean() for kk in ks])
    recall_curve = np.array([(cum_hits[:, kk - 1] / n_targets).mean() for kk in ks])
    return ListScores(users, per_user, len(distinct) / max(n_items, 1), ndcg_curve, recall_curve)
