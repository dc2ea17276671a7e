"""The `recsys` command. One Settings object; every option is also an env var RECSYS_…"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from recsys.config import Settings, get_settings
from recsys.errors import RecsysError
from recsys.logging_setup import configure_logging

app = typer.Typer(help="Hybrid recommender: ALS + FAISS candidates, LightGBM reranking, served over HTTP.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Data utilities (synthetic generator).", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(stderr=False)
err = Console(stderr=True)

StoreOpt = Annotated[Optional[str], typer.Option("--store", help="Store URL (env RECSYS_STORE_URL): "
                                                  "redis://host:port/db or embedded://PATH")]
ArtifactsOpt = Annotated[Optional[Path], typer.Option("--artifacts", help="Artifacts dir (env RECSYS_ARTIFACTS_DIR)")]


def _settings(store: str | None = None, artifacts: Path | None = None, **extra: object) -> Settings:
    s = get_settings(store_url=store, artifacts_dir=artifacts, **extra)
    configure_logging(s.log_level)
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


@app.command()
def refresh(
    data: Annotated[Path, typer.Option("--data", help="Interactions: a Parquet/CSV file or a directory "
                                       "(MovieLens ml-100k/ml-1m/ml-latest, or interactions.parquet)")],
    store: StoreOpt = None,
    artifacts: ArtifactsOpt = None,
    user_col: Annotated[str, typer.Option(help="Column holding the user id")] = "user_id",
    item_col: Annotated[str, typer.Option(help="Column holding the item id")] = "item_id",
    time_col: Annotated[str, typer.Option(help="Column holding the timestamp")] = "timestamp",
    factors: Annotated[Optional[int], typer.Option(help="ALS factors (env RECSYS_ALS__FACTORS)")] = None,
    index: Annotated[Optional[str], typer.Option(help="FAISS index: flat | ivf | hnsw")] = None,
) -> None:
    """Train ALS, build the FAISS index, publish 100 candidates per user (atomic version swap)."""
    from recsys.data.loaders import ColumnMap
    from recsys.progress import rich_progress
    from recsys.refresh import run_refresh
    from recsys.store import open_store

    s = _settings(store, artifacts)
    if factors is not None:
        s.als.factors = factors
    if index is not None:
        s.candidates.index = index
    try:
        st = open_store(s.store_url, grace_seconds=s.version_grace_seconds, batch_size=s.publish_batch_size)
        with rich_progress() as progress:
            result = run_refresh(s, st, data, columns=ColumnMap(user_col, item_col, time_col), progress=progress)
    except RecsysError as exc:
        _fail(exc)
        return
    _print_refresh(result)


@app.command()
def version(store: StoreOpt = None) -> None:
    """Show the published candidate version and the versions the store knows."""
    from recsys.store import open_store

    s = _settings(store)
    try:
        st = open_store(s.store_url)
        console.print_json(json.dumps({"current": st.current_version(), "versions": st.versions()}))
    except RecsysError as exc:
        _fail(exc)


@app.command()
def schedule(store: StoreOpt = None, artifacts: ArtifactsOpt = None) -> None:
    """Run the job scheduler (refresh, train-ranker, drift on cron) until SIGTERM; = `python -m jobs`."""
    from jobs.scheduler import serve
    from recsys.store import open_store

    s = _settings(store, artifacts)
    try:
        st = open_store(s.store_url, grace_seconds=s.version_grace_seconds, batch_size=s.publish_batch_size)
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
    from recsys.store import open_store

    s = _settings(store)
    try:
        runs = list_job_runs(open_store(s.store_url), limit=limit, job=job)
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
    from jobs.runner import JobRunner
    from recsys.store import open_store

    s = _settings(store, artifacts)
    try:
        st = open_store(s.store_url, grace_seconds=s.version_grace_seconds, batch_size=s.publish_batch_size)
        run = JobRunner(s, st).run("drift", options={"json_path": json_out, "html_path": html_out,
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


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
