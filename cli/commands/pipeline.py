"""The offline pipeline by hand: evaluate, refresh, train-ranker, and the demo that chains them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from cli import render
from cli.options import (
    ArtifactsOpt,
    DataOpt,
    FactorsOpt,
    HostOpt,
    ItemColOpt,
    PortOpt,
    StoreOpt,
    TimeColOpt,
    UserColOpt,
    load_settings,
)
from recsys.errors import ConfigError

if TYPE_CHECKING:
    from recsys.evaluation.protocol import ProtocolName

app = typer.Typer()


@app.command()
def evaluate(
    data: DataOpt,
    protocol: Annotated[str, typer.Option(help="session-holdout (DESIGN.md §6) | global-time")
                        ] = "session-holdout",
    out: Annotated[Path | None, typer.Option("--out", help="Directory for report.html")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for ALS and the bootstrap (env RECSYS_SEED)")] = None,
    quantile: Annotated[float, typer.Option(help="global-time: cutoff quantile of timestamps")] = 0.9,
    factors: FactorsOpt = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the confidence intervals")] = 1000,
    ease_lambda: Annotated[float, typer.Option(help="EASE L2 regularisation")] = 250.0,
    user_col: UserColOpt = "user_id",
    item_col: ItemColOpt = "item_id",
    time_col: TimeColOpt = "timestamp",
) -> None:
    """Offline evaluation: split, train on the training part only, score the baselines and the pipeline."""
    from recsys.data.loaders import ColumnMap, load_dataset
    from recsys.evaluation.pipeline import build_service_pipeline
    from recsys.evaluation.protocol import EvaluationConfig, run_evaluation
    from recsys.evaluation.report_html import write_report
    from recsys.progress import rich_progress

    s = load_settings(seed=seed)
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
    config = EvaluationConfig(protocol=cast("ProtocolName", protocol), quantile=quantile, seed=s.seed,
                              n_bootstrap=bootstrap, ease_lambda=ease_lambda)
    dataset = load_dataset(data, ColumnMap(user_col, item_col, time_col))
    with rich_progress() as progress:
        result = run_evaluation(dataset, s, config, build_pipeline=build_service_pipeline, progress=progress)
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
    user_col: UserColOpt = "user_id",
    item_col: ItemColOpt = "item_id",
    time_col: TimeColOpt = "timestamp",
    factors: FactorsOpt = None,
    index: Annotated[str | None, typer.Option(help="FAISS index: auto | flat | ivf | hnsw")] = None,
) -> None:
    """Train ALS on the base data + the lake, build the FAISS index, publish 100 candidates per user
    (atomic version swap)."""
    from recsys.data.loaders import ColumnMap
    from recsys.engines.local import run_refresh
    from recsys.progress import rich_progress
    from recsys.store import store_from_settings

    s = load_settings(store, artifacts)
    if factors is not None:
        s.als.factors = factors
    if index is not None:
        s.candidates.index = index
    st = store_from_settings(s)
    with rich_progress() as progress:
        result = run_refresh(s, st, data, columns=ColumnMap(user_col, item_col, time_col), progress=progress)
    render.refresh_summary(result)


@app.command("train-ranker")
def train_ranker(
    data: OptionalDataOpt = None,
    artifacts: ArtifactsOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Promote even if validation nDCG@10 is worse")] = False,
) -> None:
    """Train the LightGBM LambdaMART reranker on held-out tails; promote it if it is at least as good."""
    from recsys.progress import rich_progress
    from recsys.ranking import train

    s = load_settings(None, artifacts)
    with rich_progress() as progress:
        result = train.train_ranker(s, data, force_promote=force, progress=progress)
    render.ranker_training(result)


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
) -> None:
    """Generate data, refresh candidates, train the ranker, show a top-10, then serve the API."""
    from recsys.demo import run_demo
    from recsys.progress import rich_progress
    from recsys.store import store_from_settings

    s = load_settings(store, artifacts, host=host, port=port)
    st = store_from_settings(s)
    with rich_progress() as progress:
        result = run_demo(s, st, data=data, users=users, items=items, progress=progress)
    render.demo(result, s, serve=serve_api)
    if not serve_api:
        return
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(s, st), host=s.host, port=s.port, log_level="warning", access_log=False)
