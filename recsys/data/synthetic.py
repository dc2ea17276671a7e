"""Deterministic synthetic interactions with structure a recommender can find.

Why: the demo and the scale benchmarks need data of any size that behaves like a real log, and
tests need data whose right answer is known. The generator plants:

- latent taste clusters: every item belongs to one cluster; every user has a primary and a
  secondary cluster, and a session is drawn from one of them (or, rarely, a random cluster);
- power-law (Zipf) item popularity inside each cluster, and clusters of unequal popularity;
- item categories correlated with clusters (each cluster has a main category, with noise);
- time-ordered sessions: events seconds-to-minutes apart inside a session, hours-to-days between
  sessions (within-session gaps stay under 30 min, between-session gaps are over 1 h);
- sequential co-visitation: inside a session the next item is often a neighbour of the previous one
  in a fixed per-cluster item ordering (a forward-biased walk), otherwise a fresh popularity draw;
- view/click/purchase events with weights, a heavy-tailed (log-normal) number of events per user
  with a configurable mean and minimum, and no duplicate (user, item) pair (the first one is kept).

Everything is vectorised numpy over chunks of users; chunk `k` draws from its own child of
`SeedSequence(seed)`, so the output depends only on the configuration and never on timing.
`write_synthetic` streams chunks into one Parquet file, so memory stays at one chunk's worth.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from recsys.errors import ConfigError

log = logging.getLogger(__name__)

CHUNK_USERS = 50_000  # fixed: part of the definition of the output (each chunk has its own seed)
EVENT_TYPES = ("view", "click", "purchase")
CATEGORY_NAMES = (
    "action", "comedy", "drama", "documentary", "music", "sports", "news", "kids", "science", "travel",
    "food", "fashion", "gaming", "history", "nature", "tech", "health", "finance", "art", "horror",
)
# Steps of the in-session walk along a cluster's item ordering: mostly forward, sometimes back.
WALK_STEPS = np.array([1, 2, 3, 4, -2], dtype=np.int64)
WALK_STEP_PROBS = np.array([0.55, 0.2, 0.1, 0.05, 0.1])
SESSION_GAP_MIN_SECONDS = 3_600  # between sessions: at least 1 h ...
SESSION_GAP_MAX_SECONDS = 30 * 86_400  # ... and at most 30 days
IN_SESSION_GAP_MAX_SECONDS = 1_500  # inside a session: < 30 min, the usual session cut-off
OVERSAMPLE = 1.3  # draw this many more events than wanted: duplicates are dropped, then cut back


@dataclass(frozen=True)
class SynthConfig:
    """All knobs of the generator; the defaults give MovieLens-like density at any size."""

    n_users: int = 10_000
    n_items: int = 2_000
    seed: int = 42
    mean_events: float = 50.0
    min_events: int = 5
    max_events: int | None = None  # default: min(20 * mean_events, n_items // 2)
    n_clusters: int | None = None  # default: about sqrt(n_items) / 2, in [2, 500]
    n_categories: int = 20
    zipf_exponent: float = 1.0
    p_primary: float = 0.6  # share of sessions in the user's primary cluster
    p_secondary: float = 0.3  # ... in the secondary cluster; the rest go to a random cluster
    p_continue: float = 0.6  # next event in a session is a walk neighbour of the previous one
    p_noise: float = 0.05  # an event replaced by a draw from global popularity
    mean_session_events: float = 8.0
    category_noise: float = 0.1  # an item's main category differs from its cluster's
    p_second_category: float = 0.25
    event_probs: tuple[float, float, float] = (0.70, 0.22, 0.08)
    event_weights: tuple[float, float, float] = (1.0, 2.0, 5.0)
    start: int = 1_672_531_200  # 2023-01-01 UTC: users start within `start_span_days` of it
    start_span_days: float = 365.0
    events_sigma: float = 1.0  # log-normal sigma of the per-user event count (heavier tail when larger)
    # Taste drift: from `drift_at` (unix seconds) on, a share `drift_share` of users moves to other
    # clusters: each of their later events is mapped to the same walk position in the cluster
    # `shift` places further (shift drawn per user), so sessions keep their shape but land elsewhere.
    # None (default) leaves the output exactly as without the option.
    drift_at: int | None = None
    drift_share: float = 1.0

    @property
    def clusters(self) -> int:
        if self.n_clusters is not None:
            return self.n_clusters
        return int(min(500, max(2, round(math.sqrt(self.n_items) / 2))))

    @property
    def events_cap(self) -> int:
        cap = self.max_events if self.max_events is not None else min(int(20 * self.mean_events),
                                                                      self.n_items // 2)
        return max(cap, self.min_events)

    def validate(self) -> SynthConfig:
        """Raise ConfigError naming the first argument that cannot work; return self."""
        checks: list[tuple[bool, str]] = [
            (self.n_users >= 1, f"users must be >= 1, got {self.n_users}"),
            (self.n_items >= 10, f"items must be >= 10, got {self.n_items}"),
            (self.min_events >= 1, f"min-events must be >= 1, got {self.min_events}"),
            (self.mean_events > self.min_events,
             f"mean-events ({self.mean_events}) must be greater than min-events ({self.min_events})"),
            (self.min_events <= self.n_items // 2,
             f"min-events ({self.min_events}) must be <= half the items ({self.n_items // 2})"),
            (self.max_events is None or self.max_events >= self.min_events,
             f"max-events ({self.max_events}) must be >= min-events ({self.min_events})"),
            (2 <= self.clusters <= self.n_items // 2,
             f"clusters must be in [2, items/2 = {self.n_items // 2}], got {self.clusters}"),
            (self.n_categories >= 1, f"categories must be >= 1, got {self.n_categories}"),
            (self.zipf_exponent >= 0, f"zipf exponent must be >= 0, got {self.zipf_exponent}"),
            (self.mean_session_events >= 1,
             f"mean session length must be >= 1, got {self.mean_session_events}"),
            (self.events_sigma > 0, f"events sigma must be > 0, got {self.events_sigma}"),
            (self.start_span_days >= 0, f"start span must be >= 0 days, got {self.start_span_days}"),
            (len(self.event_probs) == len(EVENT_TYPES) == len(self.event_weights),
             "event_probs and event_weights need one value per event type (view, click, purchase)"),
            (abs(sum(self.event_probs) - 1.0) < 1e-9 and min(self.event_probs) >= 0,
             f"event_probs must be >= 0 and sum to 1, got {self.event_probs}"),
        ]
        for name in ("p_primary", "p_secondary", "p_continue", "p_noise", "category_noise",
                     "p_second_category", "drift_share"):
            value = getattr(self, name)
            checks.append((0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}"))
        checks.append((self.p_primary + self.p_secondary <= 1.0,
                       f"p_primary + p_secondary must be <= 1, got {self.p_primary + self.p_secondary}"))
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self


@dataclass(frozen=True)
class Catalogue:
    """Items grouped by cluster, in walk order and in popularity order (segment per cluster)."""

    item_cluster: np.ndarray  # int32 [n_items]
    cl_start: np.ndarray  # int64 [n_clusters]: first position of each cluster's segment
    cl_size: np.ndarray  # int64 [n_clusters]
    walk_items: np.ndarray  # int64 [n_items]: items in walk (neighbour) order, cluster segments
    walk_pos: np.ndarray  # int64 [n_items]: item -> position inside its cluster's walk
    rank_items: np.ndarray  # int64 [n_items]: items by popularity rank, cluster segments
    rank_cdf: np.ndarray  # float64 [n_items]: cluster c's rank CDF shifted by +c (one searchsorted)
    cluster_cdf: np.ndarray  # float64 [n_clusters]: how popular each cluster is
    items: pl.DataFrame  # item_id, title, categories

    def sample_clusters(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.minimum(np.searchsorted(self.cluster_cdf, rng.random(size), side="right"),
                          self.cl_size.size - 1)

    def sample_items(self, rng: np.random.Generator, clusters: np.ndarray) -> np.ndarray:
        """One Zipf-popular item from each given cluster."""
        pos = np.searchsorted(self.rank_cdf, clusters + rng.random(clusters.size), side="right")
        return self.rank_items[np.minimum(pos, self.rank_items.size - 1)]


def _catalogue(cfg: SynthConfig, rng: np.random.Generator) -> Catalogue:
    n_items, n_cl = cfg.n_items, cfg.clusters
    # Unequal cluster sizes, every cluster with at least 2 items.
    shares = rng.dirichlet(np.full(n_cl, 5.0))
    sizes = 2 + rng.multinomial(n_items - 2 * n_cl, shares)
    cl_start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    seg_cluster = np.repeat(np.arange(n_cl, dtype=np.int32), sizes)
    # Walk order: a random permutation of item ids laid into the cluster segments.
    walk_items = rng.permutation(n_items).astype(np.int64)
    item_cluster = np.empty(n_items, dtype=np.int32)
    item_cluster[walk_items] = seg_cluster
    walk_pos = np.empty(n_items, dtype=np.int64)
    walk_pos[walk_items] = np.arange(n_items, dtype=np.int64) - cl_start[seg_cluster]
    # Popularity order inside each cluster, independent of the walk order.
    order = np.lexsort((rng.random(n_items), seg_cluster))
    rank_items = walk_items[order]
    rank = np.arange(n_items, dtype=np.int64) - cl_start[seg_cluster]
    pmf = (rank + 1.0) ** -cfg.zipf_exponent
    seg_sum = np.add.reduceat(pmf, cl_start)
    cdf = np.cumsum(pmf) - np.repeat(np.cumsum(seg_sum) - seg_sum, sizes)
    cdf /= np.repeat(seg_sum, sizes)
    cdf[cl_start + sizes - 1] = 1.0  # exact segment ends, so a draw never leaks into the next cluster
    rank_cdf = cdf + seg_cluster
    # Cluster popularity: size times a log-normal factor.
    weight = sizes * rng.lognormal(0.0, 0.5, n_cl)
    cluster_cdf = np.cumsum(weight / weight.sum())
    cluster_cdf[-1] = 1.0
    items = _item_table(cfg, rng, item_cluster)
    return Catalogue(item_cluster, cl_start, sizes.astype(np.int64), walk_items, walk_pos, rank_items,
                     rank_cdf, cluster_cdf, items)


def category_names(n: int) -> list[str]:
    return [CATEGORY_NAMES[k] if k < len(CATEGORY_NAMES) else f"category_{k}" for k in range(n)]


def _item_table(cfg: SynthConfig, rng: np.random.Generator, item_cluster: np.ndarray) -> pl.DataFrame:
    n_items, n_cat = cfg.n_items, cfg.n_categories
    names = pl.Series("name", category_names(n_cat), dtype=pl.String)
    cluster_cat = rng.permutation(max(n_cat, cfg.clusters))[: cfg.clusters] % n_cat
    main = cluster_cat[item_cluster]
    noisy = rng.random(n_items) < cfg.category_noise
    main = np.where(noisy, rng.integers(0, n_cat, n_items), main)
    second = rng.integers(0, n_cat, n_items)
    has_second = (rng.random(n_items) < cfg.p_second_category) & (second != main)
    ids = pl.Series("item_id", np.arange(n_items)).cast(pl.String)
    main_name = names.gather(main)
    frame = pl.DataFrame({"_id": ids, "_main": main_name, "_second": names.gather(second),
                          "_has_second": has_second})
    return frame.select(
        ("i" + pl.col("_id")).alias("item_id"),
        pl.format("{} #{}", pl.col("_main").str.to_titlecase(), pl.col("_id")).alias("title"),
        pl.concat_list("_main", pl.when("_has_second").then("_second")).list.drop_nulls().alias("categories"),
    )


def _segment_starts(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


def _chunk(cfg: SynthConfig, cat: Catalogue, first_user: int, n_users: int,
           rng: np.random.Generator) -> pl.DataFrame:
    """Interactions of users [first_user, first_user + n_users), sorted by user then time."""
    n_cl = cat.cl_size.size
    # Per-user: wanted event count (log-normal above the minimum), taste clusters, start time.
    excess = cfg.mean_events - cfg.min_events
    mu = math.log(excess) - cfg.events_sigma ** 2 / 2
    wanted = np.clip(cfg.min_events + np.rint(rng.lognormal(mu, cfg.events_sigma, n_users)),
                     cfg.min_events, cfg.events_cap).astype(np.int64)
    primary = cat.sample_clusters(rng, n_users)
    secondary = cat.sample_clusters(rng, n_users)
    clash = secondary == primary
    secondary[clash] = (primary[clash] + rng.integers(1, n_cl, int(clash.sum()))) % n_cl
    user_start = cfg.start + rng.integers(0, int(cfg.start_span_days * 86_400) + 1, n_users)

    drawn = np.ceil(wanted * OVERSAMPLE).astype(np.int64) + 2
    total = int(drawn.sum())
    user = np.repeat(np.arange(n_users, dtype=np.int64), drawn)
    starts = _segment_starts(drawn)

    # Sessions: a new one starts at each user's first event and then with prob 1/mean length.
    new_session = rng.random(total) < 1.0 / cfg.mean_session_events
    new_session[starts] = True
    session = np.cumsum(new_session) - 1
    s_user = user[new_session]
    kind = rng.random(s_user.size)
    s_cluster = np.where(kind < cfg.p_primary, primary[s_user],
                         np.where(kind < cfg.p_primary + cfg.p_secondary, secondary[s_user],
                                  cat.sample_clusters(rng, s_user.size)))

    # Runs: a fresh popularity draw, then walk steps along the cluster's item ordering.
    run_start = new_session | (rng.random(total) >= cfg.p_continue)
    run = np.cumsum(run_start) - 1
    run_idx = np.flatnonzero(run_start)
    r_cluster = s_cluster[session[run_idx]]
    r_pos = cat.walk_pos[cat.sample_items(rng, r_cluster)]
    step = WALK_STEPS[np.searchsorted(np.cumsum(WALK_STEP_PROBS), rng.random(total), side="right")
                      .clip(0, WALK_STEPS.size - 1)]
    step[run_start] = 0
    walked = np.cumsum(step)
    walked -= walked[run_idx][run]
    cluster = r_cluster[run]
    pos = (r_pos[run] + walked) % cat.cl_size[cluster]
    item = cat.walk_items[cat.cl_start[cluster] + pos]
    noise = np.flatnonzero(rng.random(total) < cfg.p_noise)
    item[noise] = cat.sample_items(rng, cat.sample_clusters(rng, noise.size))

    # Keep each (user, item) pair's first event, then cut each user back to the wanted count.
    keep = pl.Series(user * cfg.n_items + item).is_first_distinct().to_numpy()
    kept_before = np.cumsum(keep) - keep
    keep &= (kept_before - kept_before[starts][user]) < wanted[user]
    idx = np.flatnonzero(keep)
    user, item, session = user[idx], item[idx], session[idx]

    # Timestamps on the kept events: a session boundary is where the session id changes.
    counts = np.bincount(user, minlength=n_users)
    k_starts = _segment_starts(counts)
    boundary = np.empty(idx.size, dtype=bool)
    boundary[0] = True
    boundary[1:] = session[1:] != session[:-1]
    in_gap = np.clip(rng.lognormal(math.log(40.0), 1.0, idx.size), 1, IN_SESSION_GAP_MAX_SECONDS)
    out_gap = np.clip(SESSION_GAP_MIN_SECONDS + rng.lognormal(math.log(12 * 3600.0), 1.0, idx.size),
                      SESSION_GAP_MIN_SECONDS, SESSION_GAP_MAX_SECONDS)
    gap = np.where(boundary, out_gap, in_gap).astype(np.int64)
    gap[k_starts[counts > 0]] = 0
    elapsed = np.cumsum(gap)
    elapsed -= elapsed[k_starts][user]
    timestamp = user_start[user] + elapsed

    event = np.searchsorted(np.cumsum(cfg.event_probs), rng.random(idx.size), side="right").clip(
        0, len(EVENT_TYPES) - 1)
    if cfg.drift_at is not None:
        item, keep_rows = _drift(cfg, cat, rng, user, item, timestamp, n_users)
        user, item, timestamp, event = user[keep_rows], item[keep_rows], timestamp[keep_rows], event[keep_rows]
    user_ids = "u" + pl.Series(np.arange(first_user, first_user + n_users, dtype=np.int64)).cast(pl.String)
    return pl.DataFrame({
        "user_id": user_ids.gather(user),
        "item_id": cat.items["item_id"].gather(item),
        "timestamp": timestamp,
        "event": pl.Series(EVENT_TYPES, dtype=pl.String).gather(event),
        "weight": np.asarray(cfg.event_weights, dtype=np.float32)[event],
    })


def _drift(cfg: SynthConfig, cat: Catalogue, rng: np.random.Generator, user: np.ndarray, item: np.ndarray,
           timestamp: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Move the drifting users' events after `drift_at` to shifted clusters; drop repeated (user, item)."""
    n_cl = cat.cl_size.size
    drifting = rng.random(n_users) < cfg.drift_share
    shift = rng.integers(1, n_cl, n_users)
    moved = drifting[user] & (timestamp >= int(cfg.drift_at or 0))
    cluster = cat.item_cluster[item].astype(np.int64)
    target = (cluster + shift[user]) % n_cl
    pos = cat.walk_pos[item] % cat.cl_size[target]
    item = np.where(moved, cat.walk_items[cat.cl_start[target] + pos], item)
    keep = pl.Series(user * cfg.n_items + item).is_first_distinct().to_numpy()
    return item, keep


def iter_chunks(cfg: SynthConfig) -> tuple[pl.DataFrame, Iterator[tuple[int, pl.DataFrame]]]:
    """(items, lazy iterator of (users in chunk, interactions of chunk)) for `cfg`."""
    cfg.validate()
    n_chunks = -(-cfg.n_users // CHUNK_USERS)
    seeds = np.random.SeedSequence(cfg.seed).spawn(n_chunks + 1)
    cat = _catalogue(cfg, np.random.default_rng(seeds[0]))

    def chunks() -> Iterator[tuple[int, pl.DataFrame]]:
        for k in range(n_chunks):
            first = k * CHUNK_USERS
            n = min(CHUNK_USERS, cfg.n_users - first)
            yield n, _chunk(cfg, cat, first, n, np.random.default_rng(seeds[k + 1]))

    return cat.items, chunks()


def generate(n_users: int, n_items: int, seed: int = 42, **options: object) -> tuple[pl.DataFrame,
                                                                                    pl.DataFrame]:
    """(interactions, items) in the data contract's schema; `options` are SynthConfig fields."""
    cfg = SynthConfig(n_users=n_users, n_items=n_items, seed=seed, **options)  # type: ignore[arg-type]
    items, chunks = iter_chunks(cfg)
    return pl.concat([frame for _, frame in chunks]), items


@dataclass(frozen=True)
class SynthSummary:
    """What `write_synthetic` wrote."""

    path: str
    rows: int
    users: int
    items: int
    seconds: float


def write_synthetic(out_dir: str | Path, n_users: int, n_items: int, seed: int = 42, *,
                    progress: Callable[[int], None] | None = None, **options: object) -> SynthSummary:
    """Write `interactions.parquet` + `items.parquet` into `out_dir` (the loaders' directory format).

    Chunks are streamed into one Parquet file (one row group each), written under a temporary
    name and renamed at the end, so a crash never leaves a truncated file behind.
    """
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    cfg = SynthConfig(n_users=n_users, n_items=n_items, seed=seed, **options)  # type: ignore[arg-type]
    items, chunks = iter_chunks(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "interactions.parquet"
    tmp = out / "interactions.parquet.tmp"
    rows = 0
    users_with_rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for n, frame in chunks:
            table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=table.num_rows)
            rows += frame.height
            users_with_rows += int(frame["user_id"].n_unique())
            if progress is not None:
                progress(n)
    finally:
        if writer is not None:
            writer.close()
    items.write_parquet(out / "items.parquet")
    os.replace(tmp, target)
    (out / "synthetic.json").write_text(_config_json(cfg))
    summary = SynthSummary(str(out), rows, users_with_rows, items.height, time.perf_counter() - t0)
    log.info("event=synthetic_written path=%s rows=%d users=%d items=%d seconds=%.1f", out, rows,
             users_with_rows, items.height, summary.seconds)
    return summary


def _config_json(cfg: SynthConfig) -> str:
    import json

    described = {**asdict(cfg), "clusters": cfg.clusters, "events_cap": cfg.events_cap}
    return json.dumps(described, indent=2) + "\n"
