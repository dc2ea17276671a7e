"""`recsys features report` on a fresh artifacts directory and on a trained one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.features import REGISTRY
from recsys.ranking.train import TrainResult

runner = CliRunner()


def test_fresh_directory_says_there_is_no_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    result = runner.invoke(app, ["features", "report", "--artifacts", str(tmp_path / "fresh"), "--json",
                                 str(out_json), "--html", str(out_html)])
    assert result.exit_code == 0, result.output
    assert "no model yet" in result.output and "recsys train-ranker" in result.output
    report = json.loads(out_json.read_text())
    assert report["model_version"] is None
    assert report["counts"] == {"registered": len(REGISTRY.names), "served": 0, "active": 0, "candidate": 0,
                                "pruned": 0, "new": len(REGISTRY.names)}
    assert {f["name"] for f in report["features"]} == set(REGISTRY.names)
    assert all(f["gain_share"] is None and f["trend"] == [] for f in report["features"])
    page = out_html.read_text()
    assert "No model yet" in page and "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert not (tmp_path / "fresh").exists()  # a report never writes into the artifacts directory


def test_trained_directory_lists_every_feature_with_numbers(
        trained_artifacts: tuple[Settings, Dataset, TrainResult], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings, _, ranker = trained_artifacts
    monkeypatch.setenv("COLUMNS", "160")
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    result = runner.invoke(app, ["features", "report", "--artifacts", str(settings.artifacts_dir), "--json",
                                 str(out_json), "--html", str(out_html)])
    assert result.exit_code == 0, result.output
    report = json.loads(out_json.read_text())
    assert report["model_version"] == ranker.model_version
    rows = {f["name"]: f for f in report["features"]}
    assert set(rows) == set(REGISTRY.names)
    served = {n for n, f in rows.items() if f["served"]}
    assert served == set(ranker.feature_names)
    measured = ranker.pruning["features_in"]
    assert abs(sum(rows[n]["gain_share"] for n in measured) - 1.0) < 1e-6  # shares of the run's full fit
    assert all(rows[n]["status"] == "pruned" for n in ranker.pruning["pruned"])
    assert all(rows[n]["status"] in ("active", "candidate") for n in ranker.feature_names)
    assert all(len(rows[n]["trend"]) == 1 for n in measured)
    assert report["runs"][-1]["outcome"] == ranker.pruning["outcome"]
    page = out_html.read_text()
    assert page.count("<svg") >= 1 + len(measured) and "Gain share per feature" in page
