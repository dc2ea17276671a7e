"""The `recsys` command. One Settings object; every option is also an env var RECSYS_…

Commands live in cli/commands by area and print through cli/render; this module wires them into one
Typer app and owns the one error policy: a RecsysError (bad input, store down, …) is reported as
`error: <message>` with exit code 2, anything else is a bug and keeps its traceback (exit code 1).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import typer
from typer.core import TyperGroup

from cli import render
from cli.commands import data, features, ops, pipeline, serving
from recsys.errors import RecsysError


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn a RecsysError into `error: <message>` on stderr and exit code 2; let the rest through."""
    try:
        yield
    except RecsysError as exc:
        render.error(str(exc))
        raise typer.Exit(code=2) from exc


class RecsysGroup(TyperGroup):
    """The root command: every subcommand (sub-apps' included) runs inside `reported_errors()`."""

    def invoke(self, ctx: click.Context) -> Any:
        with reported_errors():
            return super().invoke(ctx)


app = typer.Typer(cls=RecsysGroup, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Hybrid recommender: ALS + FAISS candidates, LightGBM reranking, served over HTTP.")
app.add_typer(pipeline.app)
app.add_typer(serving.app)
app.add_typer(ops.app)
app.add_typer(data.app, name="data")
app.add_typer(features.app, name="features")


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
