"""The online side: serve the HTTP API, show the published candidate version."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cli import render
from cli.options import ArtifactsOpt, HostOpt, PortOpt, StoreOpt, load_settings

app = typer.Typer()


@app.command()
def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    store: StoreOpt = None,
    artifacts: ArtifactsOpt = None,
    workers: Annotated[int | None, typer.Option(help="uvicorn worker processes (env RECSYS_WORKERS)")] = None,
) -> None:
    """Serve the HTTP API with uvicorn (docs at /docs, metrics at /metrics)."""
    import uvicorn

    from api.app import create_app

    s = load_settings(store, artifacts, host=host, port=port, workers=workers)
    render.serving(s)
    if s.workers == 1:
        uvicorn.run(create_app(s), host=s.host, port=s.port, log_level=s.log_level.lower(), access_log=False)
        return
    # Worker processes build their own app from the environment: hand the CLI's choices down.
    os.environ["RECSYS_STORE_URL"] = s.store_url
    os.environ["RECSYS_ARTIFACTS_DIR"] = str(s.artifacts_dir)
    uvicorn.run("api.app:create_app", factory=True, host=s.host, port=s.port, workers=s.workers,
                log_level=s.log_level.lower(), access_log=False)


@app.command()
def version(store: StoreOpt = None) -> None:
    """Show the published candidate version and the versions the store knows."""
    from recsys.store import store_from_settings

    st = store_from_settings(load_settings(store))
    render.print_json({"current": st.candidates.current_version(), "versions": st.candidates.versions()})
