"""The `recsys` shell itself: every command listed, a fast start, one error policy."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from cli.main import app, reporting_errors
from recsys.errors import ConfigError

COMMANDS = ("evaluate", "refresh", "train-ranker", "demo", "serve", "version", "schedule", "jobs", "drift",
            "data", "features")
HEAVY = ("lightgbm", "faiss", "evidently", "implicit", "fastapi", "uvicorn", "apscheduler")


def test_help_lists_every_command_without_importing_the_heavy_libraries() -> None:
    code = ("import sys\nfrom cli.main import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print('loaded:', sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "COLUMNS": "200"}).stdout
    for name in COMMANDS:
        assert re.search(rf"^\W+{re.escape(name)}\s", out, re.MULTILINE), (name, out)
    assert out.splitlines()[-1] == "loaded: []"


def test_a_recsys_error_is_one_line_and_exit_code_2() -> None:
    result = CliRunner().invoke(app, ["version", "--store", "bogus://nowhere"])
    assert result.exit_code == 2
    assert "error: unsupported store URL 'bogus://nowhere'" in result.output
    assert "Traceback" not in result.output


def test_other_exceptions_keep_their_traceback() -> None:
    def broken() -> None:
        raise ValueError("a bug")

    def refused() -> None:
        raise ConfigError("bad input")

    with pytest.raises(ValueError, match="a bug"):
        reporting_errors(broken)()
    with pytest.raises(typer.Exit) as exit_info:
        reporting_errors(refused)()
    assert exit_info.value.exit_code == 2
