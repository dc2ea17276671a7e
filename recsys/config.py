"""The one Settings object of the process, read from the environment (prefix RECSYS_) at the edges."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ARTIFACTS_DIR = Path("data/artifacts")


class ALSConfig(BaseModel):
    """Parameters of the implicit ALS candidate model (defaults tuned on the session-holdout protocol)."""

    factors: int = Field(32, ge=2, le=1024)
    regularization: float = Field(0.05, ge=0.0)
    alpha: float = Field(2.0, gt=0.0)
    iterations: int = Field(15, ge=1, le=500)
    random_state: int = 42


class SparkConfig(BaseModel):
    """The Spark refresh engine (`recsys refresh --engine spark`, the `[spark]` extra; engines_spark/).

    Spark MLlib's implicit ALS scales its regularisation by each row's number of ratings (ALS-WR) and
    its confidence is 1 + alpha * r, so implicit's (reg 0.05, alpha 2) are not its optimum: reg_param
    and alpha were chosen on an inner split of ml-100k's training part (benchmarks/spark_recall.py).
    """

    master: str = Field("local[2]", description="local[N] on one machine, spark://… or k8s://… in production")
    driver_memory: str = "4g"
    executor_memory: str = "2g"
    # Partitions of the interaction log and of the users (ALS blocks, the top-N map): 0 = the master's
    # default parallelism.
    partitions: int = Field(0, ge=0)
    factors: int = Field(32, ge=2, le=1024)
    # Best of reg {0.03, 0.1, 0.3} × alpha {1, 4} on the inner split (inner Recall@100 0.506; 0.1/1: 0.500).
    reg_param: float = Field(0.3, ge=0.0)
    alpha: float = Field(4.0, gt=0.0)
    iterations: int = Field(15, ge=1, le=500)
    # Arrow batch of the per-partition top-N (users per FAISS search and per store write).
    batch_users: int = Field(4096, ge=1)
    # Scratch space for the interaction log handed to Spark (default <artifacts_dir>/spark-tmp).
    work_dir: Path | None = None
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark conf (RECSYS_SPARK__CONF as JSON)")


class CandidateConfig(BaseModel):
    """How the per-user candidate lists are generated."""

    n_candidates: int = Field(100, ge=1, le=1000)
    # FAISS index: auto = exact (flat) below `ann_min_items` items, IVF (MIPS as L2) from there on.
    index: str = Field("auto", pattern="^(auto|flat|ivf|hnsw)$")
    ann_min_items: int = Field(20_000, ge=1)
    # IVF lists probed per query (of 4·sqrt(items)): on 100k users × 50k items the candidate lists
    # matched the exact ones at 0.9997 (64), 0.972 (32), 0.90 (16); 64 is 2.3x faster than exact.
    ivf_nprobe: int = Field(64, ge=1)
    # Item-kNN work cap (sum of squared capped history lengths); above it a seeded user sample is used.
    itemknn_max_pairs: int = Field(400_000_000, ge=1)
    # Session neighbours (co-visitation + item-kNN) added to the cached list at request time. 30 scored
    # as well as 50 (reranked nDCG@10, ml-100k 0.1741 vs 0.1739 over 3 seeds, synthetic 0.2561 vs 0.2547
    # over 2) with 13 % fewer rows to compute and score per request.
    session_candidates: int = Field(30, ge=0, le=500)
    recent_window_days: float = Field(30.0, gt=0)
    covisit_neighbours: int = Field(50, ge=1, le=1000)
    covisit_window: int = Field(5, ge=1, le=100)


class RulesConfig(BaseModel):
    """Business rules of the online path (docs/rules.md): diversity and exposure for new items."""

    # Default cap of items per category in a list (a request's `max_per_category` overrides it); 0: no cap.
    max_per_category: int = Field(0, ge=0, le=100)
    # New items (in the catalogue, unknown to the serving candidate version): the share of each list's
    # positions reserved for them, at least one when on (0: off).
    exploration_share: float = Field(0.0, ge=0.0, le=1.0)


class SchedulerConfig(BaseModel):
    """When the scheduled jobs run and how a cluster of schedulers shares them (`recsys schedule`).

    Cron strings have 5 fields (minute hour day month weekday) or 6 with seconds first; an empty string
    disables the job. Times are in `timezone`.
    """

    refresh_cron: str = "0 */6 * * *"
    train_ranker_cron: str = "30 2 * * *"
    drift_cron: str = "15 * * * *"
    # The loop (docs/loop.md): drain the event/impression logs into the lake, and fold new events into
    # the serving version's candidates between refreshes (the update drains the log first itself).
    ingest_cron: str = "* * * * *"
    update_cron: str = "*/5 * * * *"
    timezone: str = "UTC"
    # A job holds a lock in the store with this TTL, renewed every third of it while it runs: a scheduler
    # that dies frees its lock within one TTL.
    lock_ttl_seconds: float = Field(60.0, gt=0)
    # A tick missed by up to this long (scheduler busy or restarting) still runs, once (coalesced).
    misfire_grace_seconds: int = Field(600, ge=1)
    # On SIGTERM the running job gets this long to finish or abandon before the process exits anyway.
    shutdown_timeout_seconds: float = Field(120.0, gt=0)
    history_max_runs: int = Field(1000, ge=1)


class DriftConfig(BaseModel):
    """Drift check of served ranker features against the ranker's training reference (`recsys drift`)."""

    # Retrain when the share of drifted features exceeds this (strictly).
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    # Fewer recent logged rows than this: report "insufficient_data" instead of a verdict.
    min_rows: int = Field(200, ge=1)
    window_hours: float = Field(24.0, gt=0)
    # Share of served candidate rows written to the feature log, and the log's cap. Each logged row is
    # encoded on the request (~7 µs); 2 % of ~130 rows is ~3 rows a request, and even at 10 requests/s
    # that fills the 1,000-row samples the check compares within a minute.
    feature_log_rate: float = Field(0.02, ge=0.0, le=1.0)
    feature_log_max_rows: int = Field(100_000, ge=1)
    # Sampled rows waiting for the API's background writer; past this (store slow or down) new rows are
    # dropped and counted, so a store outage never grows the API's memory or slows a request.
    feature_log_queue_rows: int = Field(20_000, ge=1)
    # evidently stat test for numerical features (None: evidently's choice, K-S up to 1000 reference rows,
    # normed Wasserstein above) and its threshold (None: the test's default, 0.05 for a p-value).
    # K-S on samples of at most `sample_rows` per side: a calibrated 5% false-alarm rate per feature at
    # any traffic level (Wasserstein at 0.1 flags ~30% of unchanged features at 200 rows), while the cap
    # keeps it from flagging shifts too small to matter, as a p-value over 100k rows would.
    num_method: str | None = "ks"
    num_threshold: float | None = Field(None, gt=0)
    sample_rows: int = Field(1000, ge=10)
    # Where the scheduled job writes its reports (default <artifacts_dir>/reports/drift) and how many it
    # keeps (an HTML report is a few MB).
    report_dir: Path | None = None
    keep_reports: int = Field(24, ge=1)
    # What "normal" is. "served" (default): the first `reference_rows` rows the model actually served,
    # frozen into the model dir — training rows come from held-out tails (3-event sessions, "now" at the
    # last event) and never look like live traffic, so comparing with them flags drift on every run.
    # "training": the training sample written with the model (reference.parquet).
    reference: str = Field("served", pattern="^(served|training)$")
    reference_rows: int = Field(1000, ge=10)
    # One client must not steer the verdict (the write endpoints are open unless RECSYS_CLIENT_TOKEN is
    # set): each user counts with at most `max_rows_per_user` of their newest rows (a request logs ~3),
    # and a verdict (or a frozen reference) needs rows from at least `min_users` distinct users.
    max_rows_per_user: int = Field(20, ge=1)
    min_users: int = Field(20, ge=1)


class LoopConfig(BaseModel):
    """The event and impression logs, the lake ingest and the micro-batch update (docs/loop.md)."""

    # Cap of each log in the store (Redis Stream MAXLEN ~): far above the ingest lag, so only an ingest
    # that has been down for a long time loses entries; /metrics reports the fill (alert above 0.8).
    log_max_len: int = Field(1_000_000, ge=1000)
    log_events: bool = Field(True, description="append accepted events to the event log")
    log_impressions: bool = Field(True, description="append every served list to the impression log")
    # Records waiting for the API's background writer (per log); past it new ones are dropped and counted.
    sink_queue_records: int = Field(100_000, ge=1)
    sink_batch_records: int = Field(1000, ge=1)
    ingest_batch: int = Field(20_000, ge=1, description="log entries per lake file (one read, one file)")
    update_batch: int = Field(2000, ge=1, description="users folded in and written per store batch")


class RankerConfig(BaseModel):
    """How the LambdaMART reranker's training data is built."""

    # Time windows per user (window w drops the last 10*w interactions first): more training groups.
    windows: int = Field(2, ge=1, le=10)
    max_users: int = Field(50_000, ge=100, description="users sampled per window (bounds training cost)")
    # Share of users that also get a "cold" training group (no history, popular candidates).
    cold_share: float = Field(0.2, ge=0.0, le=1.0)
    # Boosting rounds at most (early stopping may end sooner). Every tree is walked for every candidate
    # of every request, so this bounds the online predict cost: with early stopping alone the ml-100k
    # ranker had 131 trees and predict took 0.55 ms of a ~2 ms request. Capped at 40, reranked nDCG@10
    # was 0.1746 on ml-100k (uncapped 0.1741, 3 seeds) and 0.2530 on synthetic data (0.2561, 2 seeds).
    max_trees: int = Field(40, ge=1, le=5000)
    # Champion/challenger (recsys/ranking/champion.py): a new ranker is promoted when its nDCG@10 on the
    # new run's validation groups is at most `promotion_tolerance` below the serving model's on the same
    # groups (the pruning tolerance: a model pruned within it is not blocked by noise), and only when
    # there are at least `promotion_min_groups` groups to compare on.
    promotion_tolerance: float = Field(0.002, ge=0.0)
    promotion_min_groups: int = Field(50, ge=1)


class PruningConfig(BaseModel):
    """Feature debt control on every `recsys train-ranker` run (recsys/ranking/pruning.py).

    A feature is *low* in a run when it is never split on or its gain share is below `threshold`;
    with `holdout_t` > 0 also when its contribution on the validation users does not separate
    their held-out items from the other candidates (t-statistic below `holdout_t`). It is pruned
    when it was low in each of its last `window_runs` measured runs and the ranker retrained
    without it loses at most `tolerance` validation nDCG@10 (absolute). Pruned features stay out
    of later runs (computed neither for training nor online) until `retest_every` runs have
    passed; then they are measured again.

    The held-out check is off by default: it is what catches noise features (gain share alone
    cannot), but with ml-100k's ~190 validation users it also pruned weak real features that the
    validation nDCG@10 check could not defend (README: feature pruning). Turn it on (2 is the
    conventional one-sided 2.3% level) when the validation set is large or noise is suspected.
    """

    enabled: bool = Field(True, description="false: measure and log only (a dry run), never prune")
    threshold: float = Field(0.01, ge=0.0, lt=1.0, description="minimum share of total gain")
    window_runs: int = Field(1, ge=1, description="runs a feature must stay low before it is pruned")
    tolerance: float = Field(0.002, ge=0.0, description="largest accepted drop of validation nDCG@10")
    holdout_t: float = Field(0.0, ge=0.0, description="minimum t-statistic of the held-out contribution "
                                                      "gap; 0 (default) turns the held-out check off")
    retest_every: int = Field(10, ge=0, description="re-measure pruned features after this many runs; "
                                                     "0 = never")
    min_features: int = Field(3, ge=1, description="never prune below this many features")


class DataConfig(BaseModel):
    """How the user's files name the data contract's columns (RECSYS_DATA__USER_COL=…). Every command that
    reads interactions (refresh, train-ranker, evaluate, demo --data) and the scheduled jobs use it; the
    commands' --user-col/--item-col/… flags override it for one run."""

    user_col: str = Field("user_id", min_length=1)
    item_col: str = Field("item_id", min_length=1)
    time_col: str = Field("timestamp", min_length=1)
    event_col: str = Field("event", min_length=1)
    weight_col: str = Field("weight", min_length=1)


class GuardrailConfig(BaseModel):
    """What new data must look like before a refresh may replace the serving candidate version, or a
    ranker trained on it may be promoted (recsys/data/guardrails.py). `--force` overrides, and is recorded.

    Compared with the serving version: users, items and interactions may each shrink by at most
    `max_shrink` (a share), and at least `min_item_overlap` of the serving version's items must still be
    in the new data. Always (the first publish too): at least `min_users`, `min_items` and
    `min_interactions`.
    """

    max_shrink: float = Field(0.5, ge=0.0, le=1.0, description="largest accepted drop of users, items or "
                                                                "interactions, as a share of the serving version")
    min_item_overlap: float = Field(0.5, ge=0.0, le=1.0, description="share of the serving version's items "
                                                                     "the new data must still contain")
    min_users: int = Field(10, ge=1)
    min_items: int = Field(10, ge=2)
    min_interactions: int = Field(100, ge=1)


class MlflowConfig(BaseModel):
    """MLflow mirror of the ranker runs and the model registry: off unless a tracking URI is set.

    The adapter that talks to MLflow lives in the shells (jobs/tracking.py); the library never imports it.
    """

    tracking_uri: str = Field("", description="e.g. http://127.0.0.1:5000 (RECSYS_MLFLOW__TRACKING_URI); "
                                              "empty: MLflow off, nothing imports it")
    experiment: str = Field("recsys-ranker", min_length=1, description="MLflow experiment of the train-ranker runs")
    model_name: str = Field("recsys-ranker", min_length=1, description="Registered model the rankers become "
                                                                       "versions of")
    champion_alias: str = Field("champion", min_length=1, description="Alias moved to the serving model on "
                                                                      "every promotion")


class Settings(BaseSettings):
    """Process-wide settings. Every field is also an env var: RECSYS_<FIELD>, nested with `__`."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", env_nested_delimiter="__", extra="ignore")

    store_url: str = Field(
        "embedded://data/artifacts/store.sqlite",
        description="redis://host:port/db for Redis, embedded://PATH for the single-file embedded store",
    )
    store_namespace: str = Field("recsys", pattern=r"^[A-Za-z0-9_.-]+$",
                                 description="Key prefix, so several deployments can share one Redis")
    artifacts_dir: Path = DEFAULT_ARTIFACTS_DIR
    artifacts_storage: Literal["auto", "files", "store"] = Field(
        "auto", description="Where bundles and ranker models live: files under artifacts_dir, or the store "
                            "itself so API replicas need nothing but the store URL; auto = the store for "
                            "redis:// and redis-cluster://, files for the embedded store")
    admin_token: str = Field("", description="Bearer token for /v1/admin/*; empty disables admin endpoints")
    client_token: str = Field("", description="Bearer token the write endpoints (POST /v1/events, POST "
                                              "/v1/recommendations) require; empty: open to any client")
    version_grace_seconds: int = Field(3600, ge=0, description="How long superseded versions stay readable")
    session_ttl_seconds: int = Field(1800, ge=1)
    session_max_events: int = Field(50, ge=1, le=1000)
    # Session events kept in memory while the store is down, written when it returns (per process).
    event_buffer_max_events: int = Field(100_000, ge=0)
    publish_batch_size: int = Field(2000, ge=1)
    store_breaker_cooldown_seconds: float = Field(
        1.0, ge=0.0, description="After a store connection failure, fail store calls at once for this long, "
                                 "then let one probe through (0 disables the circuit breaker)")
    engine: Literal["local", "spark"] = Field(
        "local", description="Refresh engine: local (implicit ALS + FAISS in one process) or spark (the [spark] "
                             "extra, engines_spark/); RECSYS_ENGINE or `recsys refresh --engine`")
    als: ALSConfig = ALSConfig()
    spark: SparkConfig = SparkConfig()
    candidates: CandidateConfig = CandidateConfig()
    rules: RulesConfig = RulesConfig()
    ranker: RankerConfig = RankerConfig()
    seed: int = 42
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # API worker processes: a pause in one (GC, feature-log writes) then stalls only its own requests.
    # Each has its own /metrics registry.
    workers: int = Field(1, ge=1, le=64)
    reload_interval_seconds: float = Field(2.0, gt=0)
    max_request_body_bytes: int = Field(1 << 20, ge=1024, description="Larger request bodies get a 413")
    log_level: str = "INFO"
    data_path: Path | None = Field(None, description="Base interactions refresh and train-ranker read with "
                                                     "the lake (RECSYS_DATA_PATH; optional once the lake "
                                                     "has events)")
    lake_dir: Path | None = Field(None, description="The lake of ingested events and impressions "
                                  "(RECSYS_LAKE_DIR; default <artifacts_dir>/lake)")
    lake_retention_days: float = Field(365.0, gt=0, description="Lake partitions older than this are deleted "
                                       "by the ingest job")
    data_window_days: float | None = Field(None, gt=0, description="Training reads base data + lake rows of "
                                           "the last N days before the newest row (None: everything)")
    data: DataConfig = DataConfig()
    guardrails: GuardrailConfig = GuardrailConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    loop: LoopConfig = LoopConfig()
    drift: DriftConfig = DriftConfig()
    pruning: PruningConfig = PruningConfig()
    mlflow: MlflowConfig = MlflowConfig()


def get_settings(**overrides: object) -> Settings:
    """Build Settings from the environment, with explicit overrides (CLI options) on top."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)  # type: ignore[arg-type]


def lake_dir(settings: Settings) -> Path:
    """Where the lake lives: RECSYS_LAKE_DIR, else beside the artifacts."""
    return settings.lake_dir if settings.lake_dir is not None else Path(settings.artifacts_dir) / "lake"
