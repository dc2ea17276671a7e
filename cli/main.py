"""The `recsys` command. One Settings object; every option is also an env var RECSYS_…

Commands live in cli/commands by area and print through cli/render; this module wires them into one
Typer app and owns the one error policy: a RecsysError (bad input, store down, …) is reported as
`error: <message>` with exit code 2, anything else is a bug and keeps its traceback (exit code 1).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from cli import render
from cli.commands import data, experiments, features, items, loop, models, ops, pipeline, serving
from recsys.errors import RecsysError

P = ParamSpec("P")
R = TypeVar("R")


def reporting_errors(command: Callable[P, R]) -> Callable[P, R]:
    """`command`, with a RecsysError turned into `error: <message>` on stderr and exit code 2.

    Other exceptions pass through: a bug keeps its traceback and exits with 1.
    """
    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except RecsysError as exc:
            render.error(str(exc))
            raise typer.Exit(code=2) from exc

    return run


def add_commands(commands: typer.Typer, name: str | None = None) -> None:
    """Register a cli/commands module's app (merged, or as `recsys NAME …`), every command wrapped once."""
    for info in commands.registered_commands:
        if info.callback is not None:
            info.callback = reporting_errors(info.callback)
    app.add_typer(commands, name=name)


app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Hybrid recommender: ALS + FAISS candidates, LightGBM reranking, served over HTTP.")
add_commands(pipeline.app)
add_commands(serving.app)
add_commands(ops.app)
add_commands(data.app, "data")
add_commands(features.app, "features")
add_commands(models.app, "models")
add_commands(loop.app)
add_commands(loop.users_app, "users")
add_commands(items.app, "items")
add_commands(experiments.app, "experiments")


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
