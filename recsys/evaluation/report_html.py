"""A self-contained HTML report of one evaluation: inline SVG charts, no script, no network.

Why hand-written SVG: the report must open offline and in any browser, and a plotting library
(plus its fonts and backends) is a heavy dependency for a handful of bars and lines.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

from recsys.evaluation.metrics import METRIC_KEYS
from recsys.evaluation.protocol import CANDIDATES, RERANKED, EvaluationResult

MODEL_COLOURS = {
    "popularity": "#9aa0a6",
    "als": "#4e79a7",
    "als+session": "#59a14f",
    "itemknn+session": "#edc948",
    "ease+session": "#b07aa1",
    CANDIDATES: "#f28e2b",
    RERANKED: "#e15759",
}
_LIGHT = "#c9ced6"  # "not evaluated" and other background segments
_FALLBACK = ("#76b7b2", "#ff9da7", "#9c755f", "#bab0ac")
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


def _colour(name: str, i: int = 0) -> str:
    return MODEL_COLOURS.get(name, _FALLBACK[i % len(_FALLBACK)])


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _nice_max(value: float) -> float:
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


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3f}"


def _svg(width: float, height: float, body: str, label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{_e(label)}" '
            f'style="{_FONT}">{body}</svg>')


def _text(x: float, y: float, text: object, *, size: float = 10, anchor: str = "start", fill: str = "#222",
          bold: bool = False, extra: str = "") -> str:
    weight = ' font-weight="600"' if bold else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"'
            f'{weight}{extra}>{_e(text)}</text>')


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str = "#e3e3e3", extra: str = "") -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"{extra}/>'


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str | None = None) -> str:
    inner = f"<title>{_e(tip)}</title>" if tip else ""
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}">{inner}</rect>'


def _title(width: float, title: str) -> str:
    return _text(width / 2, 16, title, size=13, anchor="middle", bold=True)


def bar_panel(title: str, bars: Sequence[tuple[str, float, tuple[float, float] | None]], *,
              width: int = 300, height: int = 220) -> str:
    """Vertical bars (one per model) with optional CI whiskers and value labels."""
    left, right, top, bottom = 40, 10, 28, 62
    plot_w, plot_h = width - left - right, height - top - bottom
    vmax = _nice_max(max([b[1] for b in bars] + [b[2][1] for b in bars if b[2]] + [1e-9]))
    base = top + plot_h

    def py(v: float) -> float:
        return base - plot_h * v / vmax

    parts = [_title(width, title)]
    steps = _intervals(vmax)
    for t in range(steps + 1):
        v = vmax * t / steps
        parts.append(_line(left, py(v), width - right, py(v)))
        parts.append(_text(left - 4, py(v) + 4, _fmt(v), anchor="end", fill="#666"))
    slot = plot_w / max(len(bars), 1)
    bw = slot * 0.7
    for i, (name, value, ci) in enumerate(bars):
        x = left + i * slot + (slot - bw) / 2
        cx = x + bw / 2
        parts.append(_rect(x, py(value), bw, base - py(value), _colour(name, i), f"{name}: {value:.4f}"))
        label_y = py(value) - 4
        if ci is not None:
            lo, hi = py(ci[0]), py(ci[1])
            parts.append(_line(cx, lo, cx, hi, "#222") + _line(cx - 4, lo, cx + 4, lo, "#222")
                         + _line(cx - 4, hi, cx + 4, hi, "#222"))
            label_y = hi - 4
        parts.append(_text(cx, label_y, _fmt(value), size=9.5, anchor="middle"))
        ly = base + 10
        parts.append(_text(cx, ly, name, anchor="end", extra=f' transform="rotate(-35 {cx:.1f} {ly:.1f})"'))
    parts.append(_line(left, base, width - right, base, "#999"))
    return _svg(width, height, "".join(parts), title)


def line_chart(title: str, series: Sequence[tuple[str, Sequence[float]]], *, x_label: str = "k",
               width: int = 560, height: int = 300) -> str:
    """One line per model over k = 1..len(values), legend on the right."""
    left, right, top, bottom = 46, 150, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max((len(v) for _, v in series), default=1)
    vmax = _nice_max(max([max(v) for _, v in series if len(v)] + [1e-9]))
    base = top + plot_h

    def px(i: int) -> float:
        return left + plot_w * (i / max(n - 1, 1))

    def py(v: float) -> float:
        return base - plot_h * v / vmax

    parts = [_text(left + plot_w / 2, 16, title, size=13, anchor="middle", bold=True)]
    steps = _intervals(vmax)
    for t in range(steps + 1):
        v = vmax * t / steps
        parts.append(_line(left, py(v), left + plot_w, py(v)))
        parts.append(_text(left - 4, py(v) + 4, _fmt(v), anchor="end", fill="#666"))
    for i in range(n):
        if i == 0 or (i + 1) % 5 == 0:
            parts.append(_text(px(i), base + 14, i + 1, anchor="middle", fill="#666"))
    parts.append(_text(left + plot_w / 2, height - 4, x_label, size=11, anchor="middle", fill="#444"))
    parts.append(_line(left, base, left + plot_w, base, "#999"))
    for j, (name, values) in enumerate(series):
        colour = _colour(name, j)
        pts = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2.2">'
                     f"<title>{_e(name)}</title></polyline>")
        for i, v in enumerate(values):
            parts.append(f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="2.3" fill="{colour}">'
                         f"<title>{_e(name)} @{i + 1}: {v:.4f}</title></circle>")
        ly, lx = top + 8 + j * 18, left + plot_w + 14
        parts.append(_line(lx, ly, lx + 18, ly, colour, ' stroke-width="3"'))
        parts.append(_text(lx + 24, ly + 4, name, size=11))
    return _svg(width, height, "".join(parts), title)


def hbar_chart(title: str, rows: Sequence[tuple[str, float]], *, unit: str = "s", colour: str = "#4e79a7",
               width: int = 560) -> str:
    """Horizontal bars with value labels (stage timings, counts)."""
    label_w, right, top, row_h = 190, 60, 28, 20
    height = top + row_h * len(rows) + 10
    plot_w = width - label_w - right
    vmax = max([v for _, v in rows] + [1e-9])
    parts = [_title(width, title)]
    for i, (name, value) in enumerate(rows):
        y = top + i * row_h
        w = max(plot_w * value / vmax, 1.0)
        parts.append(_text(label_w - 6, y + 13, name, size=11, anchor="end"))
        parts.append(_rect(label_w, y + 2, w, row_h - 6, colour, f"{name}: {value:.3f} {unit}"))
        parts.append(_text(label_w + w + 4, y + 13, f"{_fmt(value)} {unit}", fill="#444"))
    return _svg(width, height, "".join(parts), title)


def forest_chart(title: str, rows: Sequence[tuple[str, float, float, float]], *, zero_line: bool = False,
                 width: int = 700) -> str:
    """Point estimates with 95% intervals, one row each (mean, low, high)."""
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

    parts = [_title(width, title)]
    for t in range(5):
        v = lo + (hi - lo) * t / 4
        parts.append(_line(px(v), top, px(v), bottom, "#eee"))
        parts.append(_text(px(v), bottom + 14, f"{v:.3f}", anchor="middle", fill="#666"))
    if zero_line:
        parts.append(_line(px(0), top - 4, px(0), bottom, "#444", ' stroke-dasharray="4 3"'))
    for i, (name, mean, low, high) in enumerate(rows):
        y = top + i * row_h + row_h / 2
        colour = _colour(name, i)
        parts.append(_text(label_w - 8, y + 4, name, size=11, anchor="end"))
        parts.append(_line(px(low), y, px(high), y, colour, ' stroke-width="3"'))
        parts.append(f'<circle cx="{px(mean):.1f}" cy="{y:.1f}" r="5" fill="{colour}" stroke="#222">'
                     f"<title>{_e(name)}: {mean:.4f} [{low:.4f}, {high:.4f}]</title></circle>")
        parts.append(_text(label_w + plot_w + 8, y + 4, f"{mean:.4f} [{low:.4f}, {high:.4f}]", fill="#444"))
    return _svg(width, height, "".join(parts), title)


Segment = tuple[str, int, str]  # label, count, colour


def stacked_shape_chart(rows: Sequence[tuple[str, Sequence[Segment]]], *, width: int = 560) -> str:
    """One stacked bar per quantity (users, interactions), split into labelled parts."""
    label_w, right, top, row_h = 110, 20, 28, 46
    height = top + row_h * len(rows)
    plot_w = width - label_w - right
    parts = [_title(width, "Data set shape")]
    for i, (name, segments) in enumerate(rows):
        y = top + i * row_h
        total = sum(v for _, v, _ in segments) or 1
        x = float(label_w)
        parts.append(_text(label_w - 8, y + 15, name, size=11, anchor="end", bold=True))
        for seg_name, value, colour in segments:
            w = plot_w * value / total
            parts.append(_rect(x, y + 2, w, 18, colour, f"{seg_name}: {value:,}"))
            if w > 60:
                ink = "#333" if colour == _LIGHT else "#fff"
                parts.append(_text(x + 4, y + 15, f"{value:,}", fill=ink))
            x += w
        lx = float(label_w)
        for seg_name, value, colour in segments:
            text = f"{seg_name} ({value:,})"
            parts.append(_rect(lx, y + 26, 10, 10, colour) + _text(lx + 14, y + 35, text))
            lx += 22 + 6.2 * len(text)
    return _svg(width, height, "".join(parts), "data set shape")


def _shape_chart(result: EvaluationResult) -> str:
    d = result.dataset
    held = d.interactions - d.train_interactions
    user_parts: list[tuple[str, int, str]]
    if d.cold_users is not None:
        user_parts = [("evaluated, warm", d.eval_users - d.cold_users, "#4e79a7"),
                      ("evaluated, cold", d.cold_users, "#e15759"),
                      ("not evaluated", max(d.users - d.eval_users, 0), _LIGHT)]
    else:
        user_parts = [("evaluated", d.eval_users, "#4e79a7"),
                      ("not evaluated", max(d.users - d.eval_users, 0), _LIGHT)]
    held_name = "held out" if d.cutoff is None else "after cutoff"
    return stacked_shape_chart([
        ("users", user_parts),
        ("interactions", [("training", d.train_interactions, "#59a14f"), (held_name, held, "#f28e2b")]),
    ])


def _metrics_table(result: EvaluationResult) -> str:
    head = "".join(f"<th>{_e(k)}</th>" for k in METRIC_KEYS)
    rows = []
    for name, m in result.models.items():
        swatch = f'<span class="sw" style="background:{_colour(name)}"></span>'
        if not m.available:
            rows.append(f'<tr class="na"><td>{swatch}{_e(name)}</td><td colspan="{len(METRIC_KEYS) + 2}">'
                        f'not available — {_e(m.reason)}</td></tr>')
            continue
        cells = "".join(f"<td>{m.metrics[k]:.4f}</td>" if k in m.metrics else "<td>–</td>"
                        for k in METRIC_KEYS)
        ci = f"[{m.ndcg_ci.low:.4f}, {m.ndcg_ci.high:.4f}]" if m.ndcg_ci else "–"
        rows.append(f"<tr><td>{swatch}{_e(name)}</td>{cells}<td>{ci}</td><td>{m.users:,}</td></tr>")
    return (f'<table><thead><tr><th>model</th>{head}<th>nDCG@10 95% CI</th><th>users</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _groups_section(result: EvaluationResult) -> str:
    if not result.groups:
        return ""
    bars: list[str] = []
    rows: list[str] = []
    for gname, group in result.groups.items():
        if not group.users:
            rows.append(f"<tr><td>{_e(gname)}</td><td>0</td><td colspan='3'>no users in this group</td></tr>")
            continue
        panel = [(n, v["ndcg@10"], None) for n, v in group.models.items() if "ndcg@10" in v]
        bars.append(bar_panel(f"nDCG@10 — {gname} users ({group.users})", panel, width=360))
        for n, v in group.models.items():
            vals = "".join(f"<td>{v[k]:.4f}</td>" if k in v else "<td>–</td>"
                           for k in ("ndcg@10", "recall@10", "hit@10", "recall@100"))
            head = f'<td>{_e(gname)}</td><td>{group.users}</td><td class="l">{_e(n)}</td>'
            rows.append(f"<tr>{head}{vals}</tr>")
    return ('<h2>Warm and cold users</h2><p>Cold users have no interaction before the cutoff: every model '
            'sees only their session.</p><div class="row">' + "".join(bars) + "</div>"
            '<table><thead><tr><th>group</th><th>users</th><th>model</th><th>ndcg@10</th><th>recall@10</th>'
            f'<th>hit@10</th><th>recall@100</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _paired_section(result: EvaluationResult) -> str:
    p = result.paired
    if not p.get("available"):
        best = _e(p.get("best_baseline"))
        return (f'<p class="muted">Paired difference reranked − best baseline ({best}): not available — '
                f'{_e(p.get("reason"))}.</p>')
    lo, hi = p["ci95"]
    chart = forest_chart(f"nDCG@10: reranked − {p['best_baseline']} (paired bootstrap)",
                         [(RERANKED, p["difference"], lo, hi)], zero_line=True)
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "not distinguishable from"
    return (f"{chart}<p>reranked − {_e(p['best_baseline'])}: <b>{p['difference']:+.4f}</b> "
            f"(95% CI [{lo:+.4f}, {hi:+.4f}]) — reranked is {verdict} the best baseline.</p>")


def render_report(result: EvaluationResult) -> str:
    """The whole page as one string."""
    d = result.dataset
    available = [(n, m) for n, m in result.models.items() if m.available]
    panels = []
    for key in METRIC_KEYS:
        bars = [(n, m.metrics[key],
                 (m.ndcg_ci.low, m.ndcg_ci.high) if key == "ndcg@10" and m.ndcg_ci else None)
                for n, m in available if key in m.metrics]
        if bars:
            panels.append(bar_panel(key + (" (95% CI)" if key == "ndcg@10" else ""), bars))
    curves = [(n, m.ndcg_curve) for n, m in available if m.ndcg_curve]
    recall_curves = [(n, m.recall_curve) for n, m in available if m.recall_curve]
    forest = [(n, m.ndcg_ci.mean, m.ndcg_ci.low, m.ndcg_ci.high) for n, m in available if m.ndcg_ci]
    timing_rows = sorted(result.timings.items(), key=lambda kv: -kv[1])
    cards = [("users", d.users), ("items", d.items), ("interactions", d.interactions),
             ("training interactions", d.train_interactions), ("evaluation users", d.eval_users)]
    if d.cold_users is not None:
        cards.append(("cold evaluation users", d.cold_users))
    card_html = "".join(f'<div class="card"><div class="num">{v:,}</div><div class="lbl">{_e(k)}</div></div>'
                        for k, v in cards)
    cutoff = ""
    if d.cutoff is not None:
        cutoff = f" · cutoff timestamp {d.cutoff} (quantile {result.config.quantile})"
    notes = "".join(f"<li>{_e(n)}</li>" for n in result.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>recsys evaluation — {_e(result.protocol)}</title>
<style>
body {{ {_FONT}; margin: 24px 32px; color: #222; background: #fafafa; max-width: 1240px; }}
h1 {{ font-size: 22px; margin-bottom: 2px; }}
h2 {{ font-size: 17px; margin-top: 30px; border-bottom: 1px solid #ddd; }}
.muted {{ color: #666; }} .row {{ display: flex; flex-wrap: wrap; gap: 10px; }}
svg {{ background: #fff; border: 1px solid #e5e5e5; border-radius: 6px; }}
.card {{ background: #fff; border: 1px solid #e5e5e5; border-radius: 6px; padding: 10px 16px;
         min-width: 120px; }}
.num {{ font-size: 22px; font-weight: 650; }} .lbl {{ font-size: 12px; color: #666; }}
table {{ border-collapse: collapse; background: #fff; font-size: 12.5px; margin-top: 8px; }}
th, td {{ border: 1px solid #e2e2e2; padding: 4px 8px; text-align: right; }}
th:first-child, td:first-child, td.l {{ text-align: left; }} tr.na td {{ color: #888; font-style: italic; }}
.sw {{ display: inline-block; width: 10px; height: 10px; margin-right: 6px; border-radius: 2px; }}
</style></head><body>
<h1>Offline evaluation — {_e(result.protocol)}</h1>
<p class="muted">data {_e(d.source)} · seed {result.config.seed} · {d.eval_users:,} evaluation users
{_e(cutoff)} · bootstrap {result.config.n_bootstrap} resamples</p>
<div class="row">{card_html}</div>
<div class="row" style="margin-top:10px">{_shape_chart(result)}</div>
<h2>Metrics per model</h2>
<div class="row">{"".join(panels)}</div>
{_metrics_table(result)}
<h2>nDCG@k and Recall@k, k = 1..{result.config.curve_k}</h2>
<div class="row">{line_chart("nDCG@k", curves)}{line_chart("Recall@k", recall_curves)}</div>
<h2>nDCG@10 with 95% bootstrap intervals</h2>
<div class="row">{forest_chart("nDCG@10 per model", forest) if forest else ""}</div>
{_paired_section(result)}
{_groups_section(result)}
<h2>Time per stage</h2>
<div class="row">{hbar_chart("seconds per stage", timing_rows, width=700) if timing_rows else ""}</div>
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
</body></html>
"""


def write_report(result: EvaluationResult, out_dir: Path) -> Path:
    """Write `report.html` into `out_dir` (created) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    path.write_text(render_report(result), encoding="utf-8")
    return path
