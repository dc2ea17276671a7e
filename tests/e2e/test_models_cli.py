"""`recsys models list|show|promote|rollback` on a real registry, and the API following the promotion."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from recsys.artifacts import open_registry
from tests.conftest import TrainedRanker


def _second_model(artifacts: Path, version: str) -> str:
    """A copy of the serving model under another version (same files, its own manifest)."""
    registry = open_registry(artifacts)
    current = registry.current_model()
    assert current is not None
    manifest = registry.model_manifest(current)
    registry.save_model(version, {name: registry.model_file(current, name) for name in manifest.files},
                        manifest.model_dump(exclude={"files", "model_version"}))
    return current


def test_list_show_promote_and_roll_back(tmp_path: Path, trained_ranker: TrainedRanker) -> None:
    artifacts = tmp_path / "artifacts"
    trained_ranker.install(artifacts)
    first = _second_model(artifacts, "99990101T000000000")
    runner = CliRunner()
    env = {"RECSYS_ARTIFACTS_DIR": str(artifacts)}

    listed = runner.invoke(app, ["models", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = {r["version"]: r for r in json.loads(listed.output)}
    assert rows[first]["serving"] and not rows["99990101T000000000"]["serving"]
    assert rows[first]["valid_ndcg"] is not None and rows[first]["features"] > 0

    shown = runner.invoke(app, ["models", "show", first], env=env)
    assert shown.exit_code == 0 and json.loads(shown.output)["model_version"] == first

    promoted = runner.invoke(app, ["models", "promote", "99990101T000000000", "--reason", "canary"], env=env)
    assert promoted.exit_code == 0, promoted.output
    assert open_registry(artifacts).current_model() == "99990101T000000000"
    assert open_registry(artifacts).promotions()[-1]["reason"] == "canary"

    back = runner.invoke(app, ["models", "rollback"], env=env)
    assert back.exit_code == 0, back.output
    assert open_registry(artifacts).current_model() == first
    table = runner.invoke(app, ["models", "list"], env={**env, "COLUMNS": "200"}).output
    assert first in table and "99990101T000000000" in table and "canary" in table

    missing = runner.invoke(app, ["models", "promote", "no-such-model"], env=env)
    assert missing.exit_code == 2 and "no such model" in missing.output
