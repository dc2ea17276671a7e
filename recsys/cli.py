"""The `recsys` command. One Settings object; every option is also an env var RECSYS_…"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from recsys.config import Settings, get_settings
from recsys.errors import ConfigError, RecsysError
from recsys.logging_setup import configure_logging

app = typer.Typer(help="Hybrid recommender: ALS + FAISS candidates, LightGBM reranking, served over HTTP.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Data utilities (synthetic generator).", no_args_is_help=True)
app.add_typer(data_app, name="data")
features_app = typer.Typer(help="Ranker features: importances, pruning status.", no_args_is_help=True)
app.add_typer(features_app, name="features")
console = Console(stderr=False)
err = Console(stderr=True)

StoreOpt = Annotated[str | None, typer.Option("--store", help="Store URL (env RECSYS_STORE_URL): "
                                                  "redis://host:port/db or embedded://PATH")]
ArtifactsOpt = Annotated[Path | None, typer.Option("--artifacts", help="Artifacts dir (env RECSYS_ARTIFACTS_DIR)")]


def _settings(store: str | None = None, artifacts: Path | None = None, **extra: object) -> Settings:
    s = get_settings(store_url=store, artifacts_dir=artifacts, **extra)
    # Batch commands show progress bars; their INFO logs only clutter the terminal unless asked for.
    configure_logging(s.log_level if "RECSYS_LOG_LEVEL" in os.environ else "WARNING")
    return s


def _fail(exc: Exception) -> None:
    err.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(code=2 if isinstance(exc, RecsysError) else 1)


def _print_refresh(result: object) -> None:
    from recsys.refresh import RefreshResult

    assert isinstance(result, RefreshResult)
    table = Table(title=f"refresh published version {result.version}")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage, sec in result.seconds.items():
        table.add_row(stage, f"{sec:.2f}")
    table.add_row("[bold]total", f"[bold]{result.total_seconds:.2f}")
    console.print(table)
    console.print(f"users={result.users} items={result.items} interactions={result.interactions} "
                  f"candidate_bytes_per_user={result.bytes_per_user:.0f} bundle={result.bundle_path}")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")


def _print_evaluation(result: object) -> None:
    from recsys.evaluation.metrics import METRIC_KEYS
    from recsys.evaluation.protocol import EvaluationResult

    assert isinstance(result, EvaluationResult)
    d = result.dataset
    shape = (f"users={d.users} items={d.items} interactions={d.interactions} "
             f"train={d.train_interactions} eval_users={d.eval_users}")
    if d.cold_users is not None:
        shape += f" cold_users={d.cold_users} cutoff={d.cutoff}"
    columns = [k.replace("precision", "prec").replace("coverage", "cov") for k in METRIC_KEYS]
    columns += ["nDCG@10 95% CI", "users"]
    rows: list[tuple[str, list[str]]] = []
    unavailable = []
    for name, m in result.models.items():
        if not m.available:
            rows.append((f"[dim]{name}", ["[dim]–"] * len(METRIC_KEYS) + ["[dim]not available", ""]))
            unavailable.append(f"{name}: not available — {m.reason}")
            continue
        cells = [f"{m.metrics[k]:.4f}" if k in m.metrics else "–" for k in METRIC_KEYS]
        ci = f"[{m.ndcg_ci.low:.4f}, {m.ndcg_ci.high:.4f}]" if m.ndcg_ci else "–"
        rows.append((name, [*cells, ci, str(m.users)]))
    # One table needs ~120 columns; a narrower terminal gets the columns in two tables.
    parts = [range(len(columns))] if console.width >= 120 else [range(0, 5), range(5, len(columns))]
    for i, part in enumerate(parts):
        table = Table(title=f"{result.protocol} on {d.source}" if i == 0 else None,
                      caption=shape if i == len(parts) - 1 else None)
        table.add_column("model", no_wrap=True)
        for c in part:
            table.add_column(columns[c], justify="right", no_wrap=True)
        for name, cells in rows:
            table.add_row(name, *[cells[c] for c in part])
        console.print(table)
    for line in unavailable:
        console.print(f"[dim]{line}")
    p = result.paired
    if p.get("available"):
        console.print(f"paired nDCG@10 reranked − {p['best_baseline']}: {p['difference']:+.4f} "
                      f"(95% CI [{p['ci95'][0]:+.4f}, {p['ci95'][1]:+.4f}])")
    else:
        console.print(f"paired nDCG@10 reranked − {p.get('best_baseline')}: "
                      f"not available ({p.get('reason')})")
    for gname, group in result.groups.items():
        gt = Table(title=f"{gname} users ({group.users})")
        gt.add_column("model")
        for key in ("ndcg@10", "recall@10", "hit@10", "recall@100"):
            gt.add_column(key, justify="right")
        for name, vals in group.models.items():
            gt.add_row(name, *[f"{vals[k]:.4f}" if k in vals else "–"
                               for k in ("ndcg@10", "recall@10", "hit@10", "recall@100")])
        console.print(gt)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    console.print(f"json: {path}")


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="Interactions: a Parquet/CSV file or a directory "
                                       "(MovieLens ml-100k/ml-1m/ml-latest, or interactions.parquet)")],
    protocol: Annotated[str, typer.Option(help="session-holdout (DESIGN.md §6) | global-time")
                        ] = "session-holdout",
    out: Annotated[Path | None, typer.Option("--out", help="Directory for report.html")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for ALS and the bootstrap (env RECSYS_SEED)")] = None,
    quantile: Annotated[float, typer.Option(help="global-time: cutoff quantile of timestamps")] = 0.9,
    factors: Annotated[int | None, typer.Option(help="ALS factors (env RECSYS_ALS__FACTORS)")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the confidence intervals")] = 1000,
    ease_lambda: Annotated[float, typer.Option(help="EASE L2 regularisation")] = 250.0,
    user_col: Annotated[str, typer.Option(help="Column holding the user id")] = "user_id",
    item_col: Annotated[str, typer.Option(help="Column holding the item id")] = "item_id",
    time_col: Annotated[str, typer.Option(help="Column holding the timestamp")] = "timestamp",
) -> None:
    """Offline evaluation: split, train on the training part only, score the baselines and the pipeline."""
    from recsys.data.loaders import ColumnMap, load_dataset
    from recsys.errors import ConfigError
    from recsys.evaluation.pipeline import build_service_pipeline
    from recsys.evaluation.protocol import EvaluationConfig, run_evaluation
    from recsys.evaluation.report_html import write_report
    from recsys.progress import rich_progress

    s = _settings(None, None, **({"seed": seed} if seed is not None else {}))
    if seed is not None:
        s.als.random_state = seed
    if factors is not None:
        s.als.factors = factors
    try:
        if protocol not in ("session-holdout", "global-time"):
            raise ConfigError(f"unknown protocol {protocol!r}: use session-holdout or global-time")
        if not 0.0 < quantile < 1.0:
            raise ConfigError(f"--quantile must be in (0, 1), got {quantile}")
        if bootstrap < 100 or ease_lambda <= 0:
            raise ConfigError("--bootstrap must be >= 100 and --ease-lambda > 0")
        config = EvaluationConfig(protocol=protocol, quantile=quantile, seed=s.seed, n_bootstrap=bootstrap,
                                  ease_lambda=ease_lambda)
        dataset = load_dataset(data, ColumnMap(user_col, item_col, time_col))
        with rich_progress() as progress:
            result = run_evaluation(dataset, s, config, build_pipeline=build_service_pipeline, progress=progress)
    except RecsysError as exc:
        _fail(exc)
        return
    _print_evaluation(result)
    if json_path is not None:
        _write_json(json_path, result.to_json_dict())
    if out is not None:
        console.print(f"report: {write_report(result, out)}")


@app.command()
def refresh(
    data: Annotated[Path, typer.Option("--data", help="Interactions: a Parquet/CSV file or a directory "
                                       "(MovieLens ml-100k/ml-1m/ml-latest, or interactions.parquet)")],
    store: StoreOpt = None,
    artifacts: ArtifactsOpt = None,
    user_col: Annotated[str, typer.Option(help="Column holding the user id")] = "user_id",
    item_col: Annotated[str, typer.Option(help="Column holding the item id")] = "item_id",
    time_col: Annotated[str, typer.Option(help="Column holding the timestamp")] = "timestamp",
    factors: Annotated[int | None, typer.Option(help="ALS factors (env RECSYS_ALS__FACTORS)")] = None,
    index: Annotated[str | None, typer.Option(help="FAISS index: auto | flat | ivf | hnsw")] = None,
) -> None:
    """Train ALS, build the FAISS index, publish 100 candidates per user (atomic version swap)."""
    from recsys.data.loaders import ColumnMap
    from recsys.progress import rich_progress
    from recsys.refresh import run_refresh
    from recsys.store import store_from_settings

    s = _settings(store, artifacts)
    if factors is not None:
        s.als.factors = factors
    if index is not None:
        s.candidates.index = index
    try:
        st = store_from_settings(s)
        with rich_progress() as progress:
            result = run_refresh(s, st, data, columns=ColumnMap(user_col, item_col, time_col), progress=progress)
    except RecsysError as exc:
        _fail(exc)
        return
    _print_refresh(result)


@app.command("train-ranker")
def train_ranker_cmd(
    data: Annotated[Path, typer.Option("--data", help="Interactions (same formats as refresh)")],
    artifacts: ArtifactsOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Promote even if validation nDCG@10 is worse")] = False,
) -> None:
    """Train the LightGBM LambdaMART reranker on held-out tails; promote it if it is at least as good."""
    from recsys.progress import rich_progress
    from recsys.ranking.train import train_ranker

    s = _settings(None, artifacts)
    try:
        with rich_progress() as progress:
            result = train_ranker(s, data, force_promote=force, progress=progress)
    except RecsysError as exc:
        _fail(exc)
        return
    table = Table(title=f"ranker {result.model_version}")
    for col in ("feature", "gain share", "splits"):
        table.add_column(col, justify="right" if col != "feature" else "left")
    for name, imp in sorted(result.importances.items(), key=lambda kv: -kv[1]["gain_share"]):
        table.add_row(name, f"{imp['gain_share']:.3f}", str(int(imp["split"])))
    console.print(table)
    console.print(f"valid nDCG@10={result.valid_ndcg:.4f} best_iteration={result.best_iteration} "
                  f"seconds={result.seconds:.1f} promoted={result.promoted} ({result.reason}) path={result.path}")
    if result.pruning:
        console.print(f"feature pruning: {result.pruning.get('outcome')} — {result.pruning.get('reason')} "
                      f"(details: recsys features report)", soft_wrap=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (env RECSYS_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env RECSYS_PORT)")] = None,
    store: StoreOpt = None,
    artifacts: ArtifactsOpt = None,
    workers: Annotated[int | None, typer.Option(help="uvicorn worker processes (env RECSYS_WORKERS)")] = None,
) -> None:
    """Serve the HTTP API with uvicorn (docs at /docs, metrics at /metrics)."""
    import uvicorn

    from api.app import create_app

    s = _settings(store, artifacts, host=host, port=port, workers=workers)
    console.print(f"serving on http://{s.host}:{s.port} with {s.workers} worker(s)  "
                  f"(docs: /docs, metrics: /metrics, store: {s.store_url})")
    if s.workers == 1:
        uvicorn.run(create_app(s), host=s.host, port=s.port, log_level=s.log_level.lower(), access_log=False)
        return
    # Worker processes build their own app from the environment: hand the CLI's choices down.
    os.environ["RECSYS_STORE_URL"] = s.store_url
    os.environ["RECSYS_ARTIFACTS_DIR"] = str(s.artifacts_dir)
    uvicorn.run("api.app:create_app", factory=True, host=s.host, port=s.port, workers=s.workers,
                log_level=s.log_level.lower(), access_log=False)


@app.command()
def demo(
    data: Annotated[Path | None, typer.Option("--data", help="Use this data set instead of synthetic data")] = None,
    users: Annotated[int, typer.Option(help="Synthetic users")] = 5000,
    items: Annotated[int, typer.Option(help="Synthetic items")] = 1000,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the API afterwards")] = True,
    host: Annotated[str | None, typer.Option(help="Bind address (env RECSYS_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env RECSYS_PORT)")] = None,
    store: StoreOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Generate data, refresh candidates, train the ranker, show a top-10, then serve the API."""
    from recsys.demo import run_demo
    from recsys.progress import rich_progress
    from recsys.store import store_from_settings

    s = _settings(store, artifacts, host=host, port=port)
    try:
        st = store_from_settings(s)
        with rich_progress() as progress:
            result = run_demo(s, st, data=data, users=users, items=items, progress=progress)
    except RecsysError as exc:
        _fail(exc)
        return
    _print_refresh(result.refresh)
    console.print(f"ranker {result.ranker.model_version}: valid nDCG@10={result.ranker.valid_ndcg:.4f} "
                  f"promoted={result.ranker.promoted}")
    table = Table(title=f"top-10 for user {result.sample.user_id} (data: {result.data_path})")
    for col in ("rank", "item_id", "score"):
        table.add_column(col)
    for item in result.sample.items:
        table.add_row(str(item.rank), item.item_id, f"{item.score:.4f}")
    console.print(table)
    base = f"http://{s.host}:{s.port}"
    console.print(f"store: {s.store_url}\nartifacts: {s.artifacts_dir}")
    if not serve_api:
        return
    console.print(f"API:     {base}/v1/users/{result.sample.user_id}/recommendations?k=10\n"
                  f"docs:    {base}/docs\nmetrics: {base}/metrics\nready:   {base}/readyz\n(Ctrl-C stops)")
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(s, st), host=s.host, port=s.port, log_level="warning", access_log=False)


@app.command()
def version(store: StoreOpt = None) -> None:
    """Show the published candidate version and the versions the store knows."""
    from recsys.store import store_from_settings

    s = _settings(store)
    try:
        st = store_from_settings(s)
        console.print_json(json.dumps({"current": st.current_version(), "versions": st.versions()}))
    except RecsysError as exc:
        _fail(exc)


@data_app.command("synth")
def data_synth(
    users: Annotated[int, typer.Option("--users", help="Number of users")] = 10_000,
    items: Annotated[int, typer.Option("--items", help="Number of items (>= 10)")] = 2_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same files")] = 42,
    out: Annotated[Path, typer.Option("--out", help="Output directory (interactions.parquet, items.parquet)")
                   ] = Path("data/generated/synthetic"),
    mean_events: Annotated[float, typer.Option("--mean-events", help="Mean interactions per user")] = 50.0,
    min_events: Annotated[int, typer.Option("--min-events", help="Minimum interactions per user")] = 5,
) -> None:
    """Write a deterministic synthetic data set (taste clusters, Zipf popularity, sessions) to --out."""
    from recsys.data.synthetic import SynthConfig, write_synthetic
    from recsys.progress import rich_progress

    _settings()
    try:
        SynthConfig(n_users=users, n_items=items, seed=seed, mean_events=mean_events,
                    min_events=min_events).validate()
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} exists and is not a directory")
        with rich_progress() as progress:
            summary = write_synthetic(out, users, items, seed, mean_events=mean_events, min_events=min_events,
                                      progress=progress.stage("generating users", users))
    except RecsysError as exc:
        _fail(exc)
        return
    table = Table(title="synthetic data set written")
    table.add_column("")
    table.add_column("value", justify="right")
    for name, value in (("rows", f"{summary.rows:,}"), ("users", f"{summary.users:,}"),
                        ("items", f"{summary.items:,}"),
                        ("events per user", f"{summary.rows / max(summary.users, 1):.1f}"),
                        ("seconds", f"{summary.seconds:.1f}"), ("path", summary.path)):
        table.add_row(name, value)
    console.print(table)


@app.command()
def schedule(store: StoreOpt = None, artifacts: ArtifactsOpt = None) -> None:
    """Run the job scheduler (refresh, train-ranker, drift on cron) until SIGTERM; = `python -m jobs`."""
    from jobs.scheduler import serve
    from recsys.store import store_from_settings

    s = _settings(store, artifacts)
    try:
        st = store_from_settings(s)
        code = serve(s, st)
    except RecsysError as exc:
        _fail(exc)
        return
    raise typer.Exit(code=code)


@app.command("jobs")
def jobs_history(
    store: StoreOpt = None,
    limit: Annotated[int, typer.Option(help="How many runs, newest first")] = 30,
    job: Annotated[str | None, typer.Option(help="Only this job (refresh, train-ranker, drift)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Job history of every scheduler on the store: job, start, end, status, error, version produced."""
    from datetime import datetime, timezone

    from recsys.jobs_history import list_job_runs
    from recsys.store import store_from_settings

    s = _settings(store)
    try:
        runs = list_job_runs(store_from_settings(s), limit=limit, job=job)
    except RecsysError as exc:
        _fail(exc)
        return
    if as_json:
        console.print_json(json.dumps(runs, default=str))
        return

    def when(ts: object) -> str:
        if ts is None:
            return ""
        return datetime.fromtimestamp(float(ts), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")

    colour = {"ok": "green", "failed": "red", "lost": "red", "abandoned": "yellow", "running": "cyan"}
    table = Table(title=f"job history ({len(runs)} runs, newest first, UTC)")
    for col in ("job", "trigger", "start", "end", "s", "status", "version", "error / reason / summary",
                "host"):
        table.add_column(col, justify="right" if col == "s" else "left", overflow="fold")
    for r in runs:
        status = str(r.get("status"))
        style = colour.get(status, "yellow" if status.startswith("skipped") else "")
        info = r.get("error") or r.get("reason") or (r.get("details") or {}).get("message") or ""
        duration = r.get("duration_s")
        table.add_row(str(r.get("job")), str(r.get("trigger")), when(r.get("start")), when(r.get("end")),
                      "" if duration is None else f"{duration:.1f}",
                      f"[{style}]{status}[/]" if style else status,
                      str(r.get("version") or ""), str(info), str(r.get("host") or ""))
    console.print(table)


@app.command()
def drift(
    store: StoreOpt = None,
    artifacts: ArtifactsOpt = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON summary here")] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write evidently's HTML report")] = None,
    retrain: Annotated[bool, typer.Option(help="Run train-ranker when the drifted share exceeds the "
                                          "threshold (RECSYS_DRIFT__THRESHOLD)")] = True,
) -> None:
    """Data drift of served ranker features vs the ranker's training reference (evidently)."""
    from jobs.definitions import DEFAULT_JOBS
    from jobs.runner import JobRunner
    from recsys.store import store_from_settings

    s = _settings(store, artifacts)
    try:
        st = store_from_settings(s)
        run = JobRunner(s, st, DEFAULT_JOBS).run("drift", options={"json_path": json_out, "html_path": html_out,
                                                     "retrain": retrain})
    except RecsysError as exc:
        _fail(exc)
        return
    if run is None or run.status != "ok":
        err.print(f"[bold red]drift check did not run:[/] {run.status if run else 'shutting down'} "
                  f"{(run.error or '') if run else ''}")
        raise typer.Exit(code=1)
    d = run.details
    console.print(f"status={d['drift_status']} model={d.get('model_version')} rows={d.get('current_rows')} "
                  f"drifted_share={d.get('drifted_share')}")
    console.print(d["message"])
    for key in ("report_json", "report_html"):
        if d.get(key):
            console.print(f"{key.replace('report_', '')}: {d[key]}")
    if d.get("triggered"):
        console.print(f"[yellow]triggered train-ranker:[/] {d.get('retrain_status')} "
                      f"(run {d.get('retrain_run_id')})")


@features_app.command("report")
def features_report(
    artifacts: ArtifactsOpt = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON here")] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report here")] = None,
    runs: Annotated[int, typer.Option(help="Training runs shown in the trend column")] = 5,
) -> None:
    """Every registered feature: gain share, splits, trend over recent runs, status (active/candidate/pruned)."""
    from recsys.ranking.feature_report import build_feature_report, sparkline
    from recsys.ranking.feature_report_html import write_feature_report

    s = _settings(None, artifacts)
    report = build_feature_report(s.artifacts_dir, trend_runs=max(runs, 1))
    colour = {"active": "blue", "candidate": "yellow", "pruned": "dim", "new": "green"}
    top = max((r.gain_share or 0.0 for r in report.rows), default=0.0) or 1.0
    title = (f"features of model {report.model_version}" if report.has_model
             else f"features (no model yet in {s.artifacts_dir})")
    # The full table needs ~150 columns; a narrower terminal gets the essential columns only.
    wide = console.width >= 150
    columns = ["feature", "group", "status", "served", "gain share", "", "splits", "held-out t",
               f"trend ({len(report.runs[-runs:])} runs)", "why low"]
    shown = range(len(columns)) if wide else [0, 2, 3, 4, 5, 6, 8]
    table = Table(title=title)
    for c in shown:
        table.add_column(columns[c], justify="right" if c in (4, 6, 7) else "left", overflow="fold",
                         no_wrap=c in (0, 5))
    for r in report.rows:
        style = colour.get(r.status, "")
        share = "–" if r.gain_share is None else f"{100 * r.gain_share:.2f}%"
        n_bar = int(round((20 if wide else 10) * (r.gain_share or 0.0) / top))
        bar = "█" * max(n_bar, 1 if r.gain_share else 0)
        cells = [r.name, r.group, f"[{style}]{r.status}[/]", "yes" if r.served else "no", share, bar,
                 "–" if r.split is None else str(r.split), "–" if r.holdout_t is None else f"{r.holdout_t:.1f}",
                 sparkline(r.trend) or "–", "; ".join(r.reasons)]
        table.add_row(*[cells[c] for c in shown])
    console.print(table)
    counts = report.counts()
    console.print(" ".join(f"{k}={v}" for k, v in counts.items()))
    if report.runs:
        last = report.runs[-1]
        console.print(f"last run #{last.run_number} ({last.run_id}): {last.outcome} — {last.reason}")
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    if json_out is not None:
        _write_json(json_out, report.to_json_dict())
    if html_out is not None:
        console.print(f"html: {write_feature_report(report, html_out)}")


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
