"""Building blocks of a self-contained HTML report: inline SVG charts, no script, no network.

Why hand-written SVG: a report must open offline and in any browser, and a plotting library (plus
its fonts and backends) is a heavy dependency for a handful of bars and lines.

Everything here returns a string of HTML; text passed in is escaped here, markup passed in (a
table row, a page body) is the caller's. Reports keep only what is specific to them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

FONT_STYLE = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
LIGHT = "#c9ced6"  # "not evaluated" and other background segments
TABLEAU_10 = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
              "#9c755f", "#bab0ac")

# Rules every report page shares; a report appends its own (`page(css=...)`).
PAGE_CSS = f"""body {{ {FONT_STYLE}; margin: 24px 32px; color: #222; background: #fafafa; max-width: 1240px; }}
h1 {{ font-size: 22px; margin-bottom: 2px; }}
h2 {{ font-size: 17px; margin-top: 30px; border-bottom: 1px solid #ddd; }}
.muted {{ color: #666; }} .row {{ display: flex; flex-wrap: wrap; gap: 10px; }}
.num {{ font-size: 22px; font-weight: 650; }} .lbl {{ font-size: 12px; color: #666; }}
table {{ border-collapse: collapse; background: #fff; font-size: 12.5px; margin-top: 8px; }}
"""


@dataclass(frozen=True)
class Palette:
    """A series' colour: its own when it has one in `named`, else the i-th of `fallback` (cycled)."""

    named: Mapping[str, str] = field(default_factory=dict)
    fallback: Sequence[str] = TABLEAU_10

    def colour(self, name: str, i: int = 0) -> str:
        return self.named.get(name, self.fallback[i % len(self.fallback)])


DEFAULT_PALETTE = Palette()


def escape(text: object) -> str:
    """`text` as HTML text or attribute value (quotes escaped too)."""
    return html.escape(str(text), quote=True)


def format_number(value: float) -> str:
    """Short axis/label form: 0, 1234, 1.5, 0.123."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3f}"


def nice_max(value: float) -> float:
    """Smallest 1/2/2.5/5 x 10^n at or above `value` (axis top)."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        top = step * 10 ** exp
        if top >= value * 0.999:
            return top
    return 10.0 ** (exp + 1)


def _intervals(top: float) -> int:
    """Grid intervals that land on round numbers: 0.25 -> 5 x 0.05, 0.2 -> 4 x 0.05, 1 -> 5 x 0.2."""
    mantissa = top / 10 ** math.floor(math.log10(top))
    return 4 if abs(mantissa - 2.0) < 1e-6 else 5


# --- page -----------------------------------------------------------------------------------------

def page(title: str, body: str, *, css: str = "") -> str:
    """A whole HTML document: `PAGE_CSS` + `css` in the head, `body` (markup) as is."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
{PAGE_CSS}{css}</style></head><body>
{body}</body></html>
"""


def stat_cards(cards: Iterable[tuple[str, str]]) -> str:
    """One card per (label, value): a big number over a small label (style `.card` is the report's)."""
    return "".join(f'<div class="card"><div class="num">{escape(value)}</div><div class="lbl">{escape(label)}'
                   "</div></div>" for label, value in cards)


def table(headers: Sequence[str], rows: Iterable[str]) -> str:
    """A table with one header row of `headers` (text) and the given `<tr>` rows (markup)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f'<table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


# --- SVG primitives -------------------------------------------------------------------------------

def svg(width: float, height: float, body: str, label: str) -> str:
    """The `<svg>` element around `body`; `label` is its accessible name."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(label)}" '
            f'style="{FONT_STYLE}">{body}</svg>')


def svg_text(x: float, y: float, text: object, *, size: float = 10, anchor: str = "start", fill: str = "#222",
             bold: bool = False, extra: str = "") -> str:
    weight = ' font-weight="600"' if bold else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"'
            f'{weight}{extra}>{escape(text)}</text>')


def svg_line(x1: float, y1: float, x2: float, y2: float, stroke: str = "#e3e3e3", extra: str = "") -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"{extra}/>'


def svg_rect(x: float, y: float, w: float, h: float, fill: str, tip: str | None = None) -> str:
    """A filled rectangle; `tip` shows on hover."""
    inner = f"<title>{escape(tip)}</title>" if tip else ""
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}">{inner}</rect>'


def svg_title(width: float, title: str) -> str:
    """A chart's title, centred at the top."""
    return svg_text(width / 2, 16, title, size=13, anchor="middle", bold=True)


def legend_key(x: float, y: float, colour: str, label: str) -> str:
    """A 10 px swatch at (x, y) and its label to the right."""
    return svg_rect(x, y, 10, 10, colour) + svg_text(x + 14, y + 9, label)


# --- charts ---------------------------------------------------------------------------------------

def _value_grid(left: float, x_end: float, vmax: float, py: Callable[[float], float]) -> list[str]:
    """Horizontal grid lines at round values from 0 to `vmax`, labelled left of `left`."""
    parts = []
    steps = _intervals(vmax)
    for t in range(steps + 1):
        v = vmax * t / steps
        parts.append(svg_line(left, py(v), x_end, py(v)))
        parts.append(svg_text(left - 4, py(v) + 4, format_number(v), anchor="end", fill="#666"))
    return parts


def bar_panel(title: str, bars: Sequence[tuple[str, float, tuple[float, float] | None]], *,
              width: int = 300, height: int = 220, palette: Palette = DEFAULT_PALETTE) -> str:
    """Vertical bars (name, value, optional (low, high) whisker) with value labels."""
    left, right, top, bottom = 40, 10, 28, 62
    plot_w, plot_h = width - left - right, height - top - bottom
    vmax = nice_max(max([b[1] for b in bars] + [b[2][1] for b in bars if b[2]] + [1e-9]))
    base = top + plot_h

    def py(v: float) -> float:
        return base - plot_h * v / vmax

    parts = [svg_title(width, title), *_value_grid(left, width - right, vmax, py)]
    slot = plot_w / max(len(bars), 1)
    bw = slot * 0.7
    for i, (name, value, ci) in enumerate(bars):
        x = left + i * slot + (slot - bw) / 2
        cx = x + bw / 2
        parts.append(svg_rect(x, py(value), bw, base - py(value), palette.colour(name, i), f"{name}: {value:.4f}"))
        label_y = py(value) - 4
        if ci is not None:
            lo, hi = py(ci[0]), py(ci[1])
            parts.append(svg_line(cx, lo, cx, hi, "#222") + svg_line(cx - 4, lo, cx + 4, lo, "#222")
                         + svg_line(cx - 4, hi, cx + 4, hi, "#222"))
            label_y = hi - 4
        parts.append(svg_text(cx, label_y, format_number(value), size=9.5, anchor="middle"))
        ly = base + 10
        parts.append(svg_text(cx, ly, name, anchor="end", extra=f' transform="rotate(-35 {cx:.1f} {ly:.1f})"'))
    parts.append(svg_line(left, base, width - right, base, "#999"))
    return svg(width, height, "".join(parts), title)


def line_chart(title: str, series: Sequence[tuple[str, Sequence[float]]], *, x_label: str = "k",
               width: int = 560, height: int = 300, palette: Palette = DEFAULT_PALETTE) -> str:
    """One line per series over x = 1..len(values), legend on the right."""
    left, right, top, bottom = 46, 150, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max((len(v) for _, v in series), default=1)
    vmax = nice_max(max([max(v) for _, v in series if len(v)] + [1e-9]))
    base = top + plot_h

    def px(i: int) -> float:
        return left + plot_w * (i / max(n - 1, 1))

    def py(v: float) -> float:
        return base - plot_h * v / vmax

    parts = [svg_text(left + plot_w / 2, 16, title, size=13, anchor="middle", bold=True),
             *_value_grid(left, left + plot_w, vmax, py)]
    for i in range(n):
        if i == 0 or (i + 1) % 5 == 0:
            parts.append(svg_text(px(i), base + 14, i + 1, anchor="middle", fill="#666"))
    parts.append(svg_text(left + plot_w / 2, height - 4, x_label, size=11, anchor="middle", fill="#444"))
    parts.append(svg_line(left, base, left + plot_w, base, "#999"))
    for j, (name, values) in enumerate(series):
        colour = palette.colour(name, j)
        pts = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2.2">'
                     f"<title>{escape(name)}</title></polyline>")
        for i, v in enumerate(values):
            parts.append(f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="2.3" fill="{colour}">'
                         f"<title>{escape(name)} @{i + 1}: {v:.4f}</title></circle>")
        ly, lx = top + 8 + j * 18, left + plot_w + 14
        parts.append(svg_line(lx, ly, lx + 18, ly, colour, ' stroke-width="3"'))
        parts.append(svg_text(lx + 24, ly + 4, name, size=11))
    return svg(width, height, "".join(parts), title)


def hbar_chart(title: str, rows: Sequence[tuple[str, float]], *, unit: str = "s", colour: str = "#4e79a7",
               width: int = 560) -> str:
    """Horizontal bars with value labels (stage timings, counts)."""
    label_w, right, top, row_h = 190, 60, 28, 20
    height = top + row_h * len(rows) + 10
    plot_w = width - label_w - right
    vmax = max([v for _, v in rows] + [1e-9])
    parts = [svg_title(width, title)]
    for i, (name, value) in enumerate(rows):
        y = top + i * row_h
        w = max(plot_w * value / vmax, 1.0)
        parts.append(svg_text(label_w - 6, y + 13, name, size=11, anchor="end"))
        parts.append(svg_rect(label_w, y + 2, w, row_h - 6, colour, f"{name}: {value:.3f} {unit}"))
        parts.append(svg_text(label_w + w + 4, y + 13, f"{format_number(value)} {unit}", fill="#444"))
    return svg(width, height, "".join(parts), title)


def forest_chart(title: str, rows: Sequence[tuple[str, float, float, float]], *, zero_line: bool = False,
                 width: int = 700, palette: Palette = DEFAULT_PALETTE) -> str:
    """Point estimates with intervals, one row each (name, mean, low, high)."""
    label_w, right, top, row_h = 150, 170, 28, 24
    height = top + row_h * len(rows) + 26
    plot_w = width - label_w - right
    bottom = top + row_h * len(rows)
    lo = min([r[2] for r in rows] + ([0.0] if zero_line else []))
    hi = max([r[3] for r in rows] + ([0.0] if zero_line else []))
    pad = (hi - lo) * 0.08 or 0.01
    lo, hi = lo - pad, hi + pad

    def px(v: float) -> float:
        return label_w + plot_w * (v - lo) / (hi - lo)

    parts = [svg_title(width, title)]
    for t in range(5):
        v = lo + (hi - lo) * t / 4
        parts.append(svg_line(px(v), top, px(v), bottom, "#eee"))
        parts.append(svg_text(px(v), bottom + 14, f"{v:.3f}", anchor="middle", fill="#666"))
    if zero_line:
        parts.append(svg_line(px(0), top - 4, px(0), bottom, "#444", ' stroke-dasharray="4 3"'))
    for i, (name, mean, low, high) in enumerate(rows):
        y = top + i * row_h + row_h / 2
        colour = palette.colour(name, i)
        parts.append(svg_text(label_w - 8, y + 4, name, size=11, anchor="end"))
        parts.append(svg_line(px(low), y, px(high), y, colour, ' stroke-width="3"'))
        parts.append(f'<circle cx="{px(mean):.1f}" cy="{y:.1f}" r="5" fill="{colour}" stroke="#222">'
                     f"<title>{escape(name)}: {mean:.4f} [{low:.4f}, {high:.4f}]</title></circle>")
        parts.append(svg_text(label_w + plot_w + 8, y + 4, f"{mean:.4f} [{low:.4f}, {high:.4f}]", fill="#444"))
    return svg(width, height, "".join(parts), title)


Segment = tuple[str, int, str]  # label, count, colour


def stacked_bar_chart(title: str, rows: Sequence[tuple[str, Sequence[Segment]]], *, width: int = 560,
                      label: str | None = None) -> str:
    """One stacked bar per row (e.g. users, interactions), split into labelled parts with a legend each.

    `label` is the accessible name (default: the title).
    """
    label_w, right, top, row_h = 110, 20, 28, 46
    height = top + row_h * len(rows)
    plot_w = width - label_w - right
    parts = [svg_title(width, title)]
    for i, (name, segments) in enumerate(rows):
        y = top + i * row_h
        total = sum(v for _, v, _ in segments) or 1
        x = float(label_w)
        parts.append(svg_text(label_w - 8, y + 15, name, size=11, anchor="end", bold=True))
        for seg_name, value, colour in segments:
            w = plot_w * value / total
            parts.append(svg_rect(x, y + 2, w, 18, colour, f"{seg_name}: {value:,}"))
            if w > 60:
                ink = "#333" if colour == LIGHT else "#fff"
                parts.append(svg_text(x + 4, y + 15, f"{value:,}", fill=ink))
            x += w
        lx = float(label_w)
        for seg_name, value, colour in segments:
            text = f"{seg_name} ({value:,})"
            parts.append(legend_key(lx, y + 26, colour, text))
            lx += 22 + 6.2 * len(text)
    return svg(width, height, "".join(parts), label or title)


def sparkline(values: Sequence[float | None], *, width: int = 90, height: int = 22, colour: str = "#4e79a7",
              label: str = "trend", point: str = "point") -> str:
    """A tiny line over `values` (a table cell's trend); None leaves a gap, no values gives a dash.

    Each point's tip reads "{point} {i}: {value}" (i from 1).
    """
    pts = [(i, v) for i, v in enumerate(values) if v is not None]
    if not pts:
        return '<span class="muted">–</span>'
    top = max(v for _, v in pts) or 1.0
    step = (width - 8) / max(len(values) - 1, 1)

    def xy(i: int, v: float) -> tuple[str, str]:
        return f"{4 + i * step:.1f}", f"{height - 4 - (height - 8) * v / top:.1f}"

    body = "".join(f'<circle cx="{xy(i, v)[0]}" cy="{xy(i, v)[1]}" r="2" fill="{colour}">'
                   f"<title>{escape(point)} {i + 1}: {v:.4f}</title></circle>" for i, v in pts)
    if len(pts) > 1:
        body = (f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                f'points="{" ".join(",".join(xy(i, v)) for i, v in pts)}"/>' + body)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">{body}</svg>')
