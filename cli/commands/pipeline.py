"""The offline pipeline by hand: evaluate, refresh, train-ranker, and the demo that chains them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, cast

import typer

from cli import render
from cli.options import (
    ArtifactsOpt,
    DataOpt,
    EventColOpt,
    FactorsOpt,
    ForceOpt,
    HostOpt,
    ItemColOpt,
    PortOpt,
    StoreOpt,
    TimeColOpt,
    UserColOpt,
    WeightColOpt,
    load_settings,
)
from recsys.errors import ConfigError

if TYPE_CHECKING:
    from recsys.evaluation.protocol import ProtocolName

app = typer.Typer()


SMALL_DATA_HINT = (
    "To evaluate a small data set: lower the per-user threshold with --min-events N (at least 11: the last "
    "10 interactions are held out; fewer events per user give noisier numbers, not comparable with the "
    "README's), or use --protocol global-time (one time cutoff; users with >= 4 interactions after it are "
    "evaluated, new users included)")


@app.command()
def evaluate(
    data: DataOpt,
    protocol: Annotated[str, typer.Option(help="session-holdout (DESIGN.md §6: users with >= --min-events "
                                          "interactions, their last 10 held out) | global-time (one time "
                                          "cutoff; works on small data sets)")] = "session-holdout",
    out: Annotated[Path | None, typer.Option("--out", help="Directory for report.html")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for ALS and the bootstrap (env RECSYS_SEED)")] = None,
    quantile: Annotated[float, typer.Option(help="global-time: cutoff quantile of timestamps")] = 0.9,
    min_events: Annotated[int, typer.Option(help="session-holdout: interactions a user needs to be evaluated "
                                            "(the last 10 are held out: 3 session, 7 targets). The protocol "
                                            "says 20; a small data set may need fewer (>= 11)")] = 20,
    factors: FactorsOpt = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the confidence intervals")] = 1000,
    ease_lambda: Annotated[float, typer.Option(help="EASE L2 regularisation")] = 250.0,
    user_col: UserColOpt = None,
    item_col: ItemColOpt = None,
    time_col: TimeColOpt = None,
    event_col: EventColOpt = None,
    weight_col: WeightColOpt = None,
) -> None:
    """Offline evaluation: split, train on the training part only, score the baselines and the pipeline.

    session-holdout (the default, DESIGN.md §6) evaluates users with at least --min-events (20)
    interactions: each one's last 10 are held out, the first 3 of them as the live session, the rest
    as targets. On a small data set lower --min-events (>= 11) or use --protocol global-time.
    """
    from recsys.data.loaders import ColumnMap, load_dataset
    from recsys.data.splits import SplitTooSmallError
    from recsys.evaluation.pipeline import build_service_pipeline
    from recsys.evaluation.protocol import EvaluationConfig, run_evaluation
    from recsys.evaluation.report_html import write_report
    from recsys.progress import rich_progress

    s = load_settings(seed=seed, columns={"user_col": user_col, "item_col": item_col, "time_col": time_col,
                                          "event_col": event_col, "weight_col": weight_col})
    if seed is not None:
        s.als.random_state = seed
    if factors is not None:
        s.als.factors = factors
    if protocol not in ("session-holdout", "global-time"):
        raise ConfigError(f"unknown protocol {protocol!r}: use session-holdout or global-time")
    if not 0.0 < quantile < 1.0:
        raise ConfigError(f"--quantile must be in (0, 1), got {quantile}")
    if bootstrap < 100 or ease_lambda <= 0:
        raise ConfigError("--bootstrap must be >= 100 and --ease-lambda > 0")
    if min_events < 11:
        raise ConfigError(f"--min-events must be >= 11 (the last 10 interactions are held out), got {min_events}")
    config = EvaluationConfig(protocol=cast("ProtocolName", protocol), quantile=quantile, seed=s.seed,
                              n_bootstrap=bootstrap, ease_lambda=ease_lambda, min_interactions=min_events)
    dataset = load_dataset(data, ColumnMap.from_config(s.data))
    try:
        with rich_progress() as progress:
            result = run_evaluation(dataset, s, config, build_pipeline=build_service_pipeline, progress=progress)
    except SplitTooSmallError as exc:
        raise ConfigError(f"{exc}. {SMALL_DATA_HINT}") from exc
    render.evaluation(result)
    if json_path is not None:
        render.write_json(json_path, result.to_json_dict())
    if out is not None:
        render.written("report", write_report(result, out))


OptionalDataOpt = Annotated[Path | None, typer.Option("--data", help="Base interactions (a Parquet/CSV file or a "
                                                    "directory); default RECSYS_DATA_PATH. Read with the lake")]


@app.command()
def refresh(
    data: OptionalDataOpt = None,
    store: StoreOpt = None,
    artifacts: ArtifactsOpt = None,
    user_col: UserColOpt = None,
    item_col: ItemColOpt = None,
    time_col: TimeColOpt = None,
    event_col: EventColOpt = None,
    weight_col: WeightColOpt = None,
    factors: FactorsOpt = None,
    index: Annotated[str | None, typer.Option(help="FAISS index: auto | flat | ivf | hnsw")] = None,
    force: ForceOpt = False,
    engine: Annotated[str | None, typer.Option(help="local (implicit ALS + FAISS, one process) | spark (the "
                                               "[spark] extra; RECSYS_SPARK__MASTER). Default RECSYS_ENGINE "
                                               "or local")] = None,
) -> None:
    """Train ALS on the base data + the lake, build the FAISS index, publish 100 candidates per user
    (atomic version swap).

    Refuses (exit 2, nothing published) data that shrinks users, items or interactions by more than
    RECSYS_GUARDRAILS__MAX_SHRINK compared with the serving version, keeps too few of its items, or is
    below the minimum sizes; --force publishes anyway and is recorded.
    """
    from jobs.definitions import refresh_engine
    from recsys.progress import rich_progress
    from recsys.store import store_from_settings

    s = load_settings(store, artifacts, columns={"user_col": user_col, "item_col": item_col, "time_col": time_col,
                                                 "event_col": event_col, "weight_col": weight_col})
    if engine is not None:
        if engine not in ("local", "spark"):
            raise ConfigError(f"unknown engine {engine!r}: use local or spark")
        s.engine = cast("Literal['local', 'spark']", engine)
    run_refresh = refresh_engine(s)
    if factors is not None:
        s.als.factors = factors
    if index is not None:
        s.candidates.index = index
    st = store_from_settings(s)
    with rich_progress() as progress:
        result = run_refresh(s, st, data, progress=progress, force=force)
    render.refresh_summary(result)


@app.command("train-ranker")
def train_ranker(
    data: OptionalDataOpt = None,
    store: StoreOpt = None,
    artifacts: ArtifactsOpt = None,
    user_col: UserColOpt = None,
    item_col: ItemColOpt = None,
    time_col: TimeColOpt = None,
    event_col: EventColOpt = None,
    weight_col: WeightColOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Promote even if the serving model ranks better, and "
                                        "train even if the data fails the publish guardrails (recorded)")] = False,
) -> None:
    """Train the LightGBM LambdaMART reranker on held-out tails; promote it if it ranks at least as well as the
    serving model on the same validation users (champion/challenger).

    The data is checked against the serving candidate version first (the publish guardrails of refresh).
    """
    from jobs.tracking import record_train
    from recsys.artifacts import registry_for
    from recsys.engines.publish import serving_shape
    from recsys.progress import rich_progress
    from recsys.ranking import train
    from recsys.store import store_from_settings

    s = load_settings(store, artifacts, columns={"user_col": user_col, "item_col": item_col, "time_col": time_col,
                                                 "event_col": event_col, "weight_col": weight_col})
    serving = serving_shape(store_from_settings(s))
    with rich_progress() as progress:
        result = train.train_ranker(s, data, force_promote=force, progress=progress, serving=serving)
    render.ranker_training(result)
    record_train(s, registry_for(s), result)


@app.command()
def demo(
    data: Annotated[Path | None, typer.Option("--data", help="Use this data set instead of synthetic data")] = None,
    users: Annotated[int, typer.Option(help="Synthetic users")] = 5000,
    items: Annotated[int, typer.Option(help="Synthetic items")] = 1000,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the API afterwards")] = True,
    host: HostOpt = None,
    port: PortOpt = None,
    store: StoreOpt = None,
    artifacts: ArtifactsOpt = None,
    user_col: UserColOpt = None,
    item_col: ItemColOpt = None,
    time_col: TimeColOpt = None,
    event_col: EventColOpt = None,
    weight_col: WeightColOpt = None,
    force: ForceOpt = False,
) -> None:
    """Generate data, refresh candidates, train the ranker, show a top-10, then serve the API.

    With --serve (the default) the port is checked first: a busy port fails at once, before any work.
    """
    from jobs.tracking import record_train
    from recsys.artifacts import registry_for
    from recsys.demo import run_demo
    from recsys.progress import rich_progress
    from recsys.store import store_from_settings

    s = load_settings(store, artifacts, host=host, port=port,
                      columns={"user_col": user_col, "item_col": item_col, "time_col": time_col,
                               "event_col": event_col, "weight_col": weight_col})
    if serve_api:
        ensure_port_free(s.host, s.port)
    st = store_from_settings(s)
    with rich_progress() as progress:
        result = run_demo(s, st, data=data, users=users, items=items, progress=progress, force=force)
    record_train(s, registry_for(s, st), result.ranker)
    render.demo(result, s, serve=serve_api)
    if not serve_api:
        return
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(s, st), host=s.host, port=s.port, log_level="warning", access_log=False)


def ensure_port_free(host: str, port: int) -> None:
    """Raise ConfigError when (host, port) cannot be bound: before the demo replaces anything in the store."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror or exc}. Nothing was done; pick "
                              "another port with --port (env RECSYS_PORT), stop what uses it, or run with "
                              "--no-serve") from exc
