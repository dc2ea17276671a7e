"""The HTML report is self-contained and its charts render in a real browser (headless Chromium).

The screenshot check skips when no Chromium is installed (`apt-get install -y chromium`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.evaluation.protocol import EvaluationConfig, EvaluationResult, run_evaluation
from recsys.evaluation.report_html import MODEL_COLOURS, render_report, write_report
from tests.evaluation_data import clustered_log

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from screenshot_report import find_browser, screenshot  # noqa: E402


@pytest.fixture(scope="module")
def result() -> EvaluationResult:
    settings = Settings()
    settings.als.factors = 16
    return run_evaluation(Dataset(clustered_log(), None, "synthetic", "table"), settings,
                          EvaluationConfig(protocol="global-time", quantile=0.8, n_bootstrap=200))


def test_report_is_self_contained(result: EvaluationResult) -> None:
    page = render_report(result)
    # No script, no external resource: it must open offline.
    assert "<script" not in page
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)
    assert "@import" not in page
    # Metric bars (7 panels), two curves, the CI forest, the cold/warm panels, timings, data shape.
    assert page.count("<svg") >= 7 + 2 + 1 + 2 + 1 + 1
    for title in ("nDCG@k", "Recall@k", "seconds per stage", "Data set shape", "nDCG@10 per model"):
        assert title in page
    assert "not available" in page  # reranked is shown as such, not faked
    assert "cold users" in page.lower()


def test_report_renders_in_chromium(result: EvaluationResult, tmp_path: Path) -> None:
    if find_browser() is None:
        pytest.skip("no Chromium installed")
    image_mod = pytest.importorskip("PIL.Image")
    path = write_report(result, tmp_path / "out")
    png = screenshot(path, tmp_path / "shot.png", width=1280, height=2200)
    image = image_mod.open(png).convert("RGB")
    assert image.size == (1280, 2200)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None
    counts = {rgb: n for n, rgb in colours}

    def pixels(hex_colour: str) -> int:
        rgb = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
        return counts.get(rgb, 0)

    # Every available model's bars are painted in its colour (a bar panel is ~30 x 100 px at least).
    for name in ("popularity", "als", "als+session", "itemknn+session", "ease+session"):
        assert pixels(MODEL_COLOURS[name]) > 2000, name
    # Not a blank page: plenty of distinct colours (text anti-aliasing, lines, bars).
    assert len(counts) > 200
