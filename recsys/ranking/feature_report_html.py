"""The feature report as one self-contained HTML page: inline SVG, no script, no network.

Same house style and SVG helpers as the evaluation report (recsys/evaluation/report_html.py).
"""

from __future__ import annotations

from pathlib import Path

from recsys.evaluation.report_html import _FONT, _e, _fmt, _line, _rect, _svg, _text
from recsys.ranking.feature_report import FeatureReport, FeatureRow

STATUS_COLOURS = {"active": "#4e79a7", "candidate": "#f28e2b", "pruned": "#9aa0a6", "new": "#59a14f"}


def gain_chart(rows: list[FeatureRow], threshold: float | None, *, width: int = 760) -> str:
    """Horizontal bars: gain share per feature in its last measured run, coloured by status."""
    label_w, right, top, row_h = 210, 70, 30, 18
    height = top + row_h * len(rows) + 26
    plot_w = width - label_w - right
    vmax = max([r.gain_share or 0.0 for r in rows] + [threshold or 0.0, 1e-9])

    def px(v: float) -> float:
        return label_w + plot_w * v / vmax

    parts = [_text(width / 2, 16, "Gain share per feature (last measured run)", size=13, anchor="middle", bold=True)]
    for i, row in enumerate(rows):
        y = top + i * row_h
        colour = STATUS_COLOURS.get(row.status, "#bab0ac")
        parts.append(_text(label_w - 6, y + 12, row.name, size=11, anchor="end",
                           fill="#888" if row.status == "pruned" else "#222"))
        if row.gain_share is None:
            parts.append(_text(label_w + 4, y + 12, "not measured", fill="#888"))
            continue
        w = max(px(row.gain_share) - label_w, 1.0)
        tip = f"{row.name}: gain share {row.gain_share:.4f}, {row.split} splits, {row.status}"
        parts.append(_rect(label_w, y + 2, w, row_h - 5, colour, tip))
        parts.append(_text(label_w + w + 4, y + 12, f"{100 * row.gain_share:.1f}%", fill="#444"))
    bottom = top + row_h * len(rows)
    lx = label_w
    for status, colour in STATUS_COLOURS.items():
        parts.append(_rect(lx, bottom + 6, 10, 10, colour) + _text(lx + 14, bottom + 15, status))
        lx += 90
    if threshold:
        parts.append(_line(px(threshold), top - 4, px(threshold), bottom, "#e15759", ' stroke-dasharray="4 3"'))
        parts.append(_line(lx, bottom + 11, lx + 16, bottom + 11, "#e15759", ' stroke-dasharray="4 3"'))
        parts.append(_text(lx + 20, bottom + 15, f"threshold {100 * threshold:g}%", fill="#e15759"))
    return _svg(width, height + 6, "".join(parts), "gain share per feature")


def trend_svg(values: list[float | None], *, width: int = 90, height: int = 22) -> str:
    """A tiny line of the gain share over recent runs; gaps where the feature was not measured."""
    pts = [(i, v) for i, v in enumerate(values) if v is not None]
    if not pts:
        return '<span class="muted">–</span>'
    top = max(v for _, v in pts) or 1.0
    step = (width - 8) / max(len(values) - 1, 1)

    def xy(i: int, v: float) -> str:
        return f"{4 + i * step:.1f},{height - 4 - (height - 8) * v / top:.1f}"

    body = "".join(f'<circle cx="{xy(i, v).split(",")[0]}" cy="{xy(i, v).split(",")[1]}" r="2" fill="#4e79a7">'
                   f"<title>run {i + 1}: {v:.4f}</title></circle>" for i, v in pts)
    if len(pts) > 1:
        body = (f'<polyline fill="none" stroke="#4e79a7" stroke-width="1.5" '
                f'points="{" ".join(xy(i, v) for i, v in pts)}"/>' + body)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="trend">{body}</svg>')


def _feature_table(report: FeatureReport) -> str:
    rows = []
    for r in report.rows:
        colour = STATUS_COLOURS.get(r.status, "#bab0ac")
        share = "–" if r.gain_share is None else f"{100 * r.gain_share:.2f}%"
        t = "–" if r.holdout_t is None else f"{r.holdout_t:.1f}"
        split = "–" if r.split is None else str(r.split)
        rows.append(
            f'<tr><td class="l">{_e(r.name)}</td><td class="l">{_e(r.group)}</td>'
            f'<td class="l"><span class="badge" style="background:{colour}">{_e(r.status)}</span></td>'
            f'<td>{"yes" if r.served else "no"}</td><td>{share}</td><td>{split}</td><td>{t}</td>'
            f"<td>{trend_svg(r.trend)}</td><td class=\"l small\">{_e('; '.join(r.reasons))}</td>"
            f'<td class="l small">{_e(r.description)}</td></tr>')
    return ('<table><thead><tr><th>feature</th><th>group</th><th>status</th><th>served</th><th>gain share</th>'
            '<th>splits</th><th>held-out t</th><th>trend</th><th>why low</th><th>description</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _runs_table(report: FeatureReport) -> str:
    if not report.runs:
        return '<p class="muted">No training run logged yet.</p>'
    rows = []
    for r in reversed(report.runs[-20:]):
        full = "–" if r.full_valid_ndcg is None else f"{r.full_valid_ndcg:.4f}"
        kept = "–" if r.valid_ndcg is None else f"{r.valid_ndcg:.4f}"
        rows.append(f'<tr><td>{r.run_number}</td><td class="l">{_e(r.run_id)}</td>'
                    f'<td class="l">{_e(r.model_version)}</td><td class="l">{_e(r.outcome)}</td>'
                    f"<td>{r.features_in}</td><td>{r.features_out}</td><td>{full}</td><td>{kept}</td>"
                    f'<td class="l small">{_e(r.reason)}</td></tr>')
    return ('<table><thead><tr><th>#</th><th>run</th><th>model</th><th>outcome</th><th>features in</th>'
            '<th>features out</th><th>valid nDCG@10 full</th><th>valid nDCG@10 kept</th><th>decision</th>'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def render_feature_report(report: FeatureReport) -> str:
    counts = report.counts()
    cards = "".join(f'<div class="card"><div class="num">{v}</div><div class="lbl">{_e(k)}</div></div>'
                    for k, v in counts.items())
    threshold = (report.policy or {}).get("threshold")
    notes = "".join(f"<li>{_e(n)}</li>" for n in report.notes)
    measured = [r for r in report.rows if r.gain_share is not None]
    chart = gain_chart(report.rows, threshold) if measured else ""
    headline = (f"model <b>{_e(report.model_version)}</b> uses {len(report.model_features)} features"
                if report.has_model else "<b>No model yet</b> — every registered feature is listed as new")
    policy = ", ".join(f"{_e(k)}={_e(_fmt(v) if isinstance(v, float) else v)}"
                       for k, v in (report.policy or {}).items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>recsys feature report</title>
<style>
body {{ {_FONT}; margin: 24px 32px; color: #222; background: #fafafa; max-width: 1240px; }}
h1 {{ font-size: 22px; margin-bottom: 2px; }}
h2 {{ font-size: 17px; margin-top: 30px; border-bottom: 1px solid #ddd; }}
.muted {{ color: #666; }} .row {{ display: flex; flex-wrap: wrap; gap: 10px; }}
svg {{ background: #fff; }} .chart svg {{ border: 1px solid #e5e5e5; border-radius: 6px; }}
.card {{ background: #fff; border: 1px solid #e5e5e5; border-radius: 6px; padding: 10px 16px; min-width: 90px; }}
.num {{ font-size: 22px; font-weight: 650; }} .lbl {{ font-size: 12px; color: #666; }}
table {{ border-collapse: collapse; background: #fff; font-size: 12.5px; margin-top: 8px; }}
th, td {{ border: 1px solid #e2e2e2; padding: 3px 7px; text-align: right; vertical-align: middle; }}
td.l {{ text-align: left; }} td.small {{ font-size: 11.5px; color: #444; max-width: 340px; }}
.badge {{ color: #fff; border-radius: 3px; padding: 1px 6px; font-size: 11.5px; }}
</style></head><body>
<h1>Feature report</h1>
<p class="muted">artifacts {_e(report.artifacts_dir)} · {headline}</p>
<div class="row">{cards}</div>
{f'<ul>{notes}</ul>' if notes else ''}
<div class="row chart" style="margin-top:12px">{chart}</div>
<h2>Features</h2>
{_feature_table(report)}
<h2>Training runs (newest first)</h2>
{_runs_table(report)}
{f'<p class="muted">policy: {policy}</p>' if policy else ''}
</body></html>
"""


def write_feature_report(report: FeatureReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_feature_report(report), encoding="utf-8")
    return path
