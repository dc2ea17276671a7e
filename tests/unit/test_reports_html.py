"""The shared HTML report helpers: escaping, number formats, axis tops, page shell, tables, charts."""

from __future__ import annotations

import pytest

from recsys.reports.html import (
    PAGE_CSS,
    Palette,
    bar_panel,
    escape,
    format_number,
    nice_max,
    page,
    sparkline,
    stat_cards,
    table,
)


def test_escape_quotes_and_markup() -> None:
    assert escape('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert escape(None) == "None"


@pytest.mark.parametrize(("value", "text"), [(0, "0"), (1234.4, "1234"), (1.5, "1.5"), (2.0, "2"),
                                             (0.12345, "0.123"), (-0.5, "-0.500")])
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(("value", "top"), [(0.0, 1.0), (0.17, 0.2), (0.21, 0.25), (0.3, 0.5), (0.7, 1.0),
                                            (12.0, 20.0)])
def test_nice_max_is_a_round_axis_top(value: float, top: float) -> None:
    assert nice_max(value) == pytest.approx(top)


def test_palette_named_colour_else_cycles_the_fallback() -> None:
    palette = Palette({"a": "#000000"}, fallback=("#111111", "#222222"))
    assert palette.colour("a", 5) == "#000000"
    assert [palette.colour("x", i) for i in range(3)] == ["#111111", "#222222", "#111111"]


def test_page_table_and_cards_escape_text_but_not_markup() -> None:
    body = table(["model", "a<b"], ["<tr><td>x</td><td>1</td></tr>"]) + stat_cards([("users & items", "1,000")])
    html = page("t <1>", body, css=".x { color: red; }\n")
    assert html.startswith("<!DOCTYPE html>") and html.endswith("</body></html>\n")
    assert "<title>t &lt;1&gt;</title>" in html
    assert PAGE_CSS + ".x { color: red; }\n</style>" in html
    assert "<th>a&lt;b</th>" in html and "<tr><td>x</td><td>1</td></tr>" in html
    assert '<div class="num">1,000</div><div class="lbl">users &amp; items</div>' in html


def test_charts_are_inline_svg_with_escaped_labels() -> None:
    chart = bar_panel("m<1>", [("<a>", 0.2, (0.1, 0.3)), ("b", 0.1, None)])
    assert chart.startswith("<svg") and 'aria-label="m&lt;1&gt;"' in chart and "&lt;a&gt;" in chart
    assert sparkline([None, None]) == '<span class="muted">–</span>'
    line = sparkline([0.1, None, 0.3], point="run")
    assert line.count("<circle") == 2 and "run 3: 0.3000" in line and "<polyline" in line
