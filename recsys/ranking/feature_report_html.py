"""The feature report as one self-contained HTML page: inline SVG, no script, no network.

Page shell, SVG primitives and the trend sparkline are the shared report helpers (recsys/reports/html.py).
"""

from __future__ import annotations

from pathlib import Path

from recsys.ranking.feature_report import FeatureReport, FeatureRow
from recsys.reports.html import (
    escape,
    format_number,
    legend_key,
    page,
    sparkline,
    stat_cards,
    svg,
    svg_line,
    svg_rect,
    svg_text,
    svg_title,
    table,
)

STATUS_COLOURS = {"active": "#4e79a7", "candidate": "#f28e2b", "pruned": "#9aa0a6", "new": "#59a14f"}
_CSS = """svg { background: #fff; } .chart svg { border: 1px solid #e5e5e5; border-radius: 6px; }
.card { background: #fff; border: 1px solid #e5e5e5; border-radius: 6px; padding: 10px 16px; min-width: 90px; }
th, td { border: 1px solid #e2e2e2; padding: 3px 7px; text-align: right; vertical-align: middle; }
td.l { text-align: left; } td.small { font-size: 11.5px; color: #444; max-width: 340px; }
.badge { color: #fff; border-radius: 3px; padding: 1px 6px; font-size: 11.5px; }
"""


def gain_chart(rows: list[FeatureRow], threshold: float | None, *, width: int = 760) -> str:
    """Horizontal bars: gain share per feature in its last measured run, coloured by status."""
    label_w, right, top, row_h = 210, 70, 30, 18
    height = top + row_h * len(rows) + 26
    plot_w = width - label_w - right
    vmax = max([r.gain_share or 0.0 for r in rows] + [threshold or 0.0, 1e-9])

    def px(v: float) -> float:
        return label_w + plot_w * v / vmax

    parts = [svg_title(width, "Gain share per feature (last measured run)")]
    for i, row in enumerate(rows):
        y = top + i * row_h
        colour = STATUS_COLOURS.get(row.status, "#bab0ac")
        parts.append(svg_text(label_w - 6, y + 12, row.name, size=11, anchor="end",
                              fill="#888" if row.status == "pruned" else "#222"))
        if row.gain_share is None:
            parts.append(svg_text(label_w + 4, y + 12, "not measured", fill="#888"))
            continue
        w = max(px(row.gain_share) - label_w, 1.0)
        tip = f"{row.name}: gain share {row.gain_share:.4f}, {row.split} splits, {row.status}"
        parts.append(svg_rect(label_w, y + 2, w, row_h - 5, colour, tip))
        parts.append(svg_text(label_w + w + 4, y + 12, f"{100 * row.gain_share:.1f}%", fill="#444"))
    bottom = top + row_h * len(rows)
    lx = label_w
    for status, colour in STATUS_COLOURS.items():
        parts.append(legend_key(lx, bottom + 6, colour, status))
        lx += 90
    if threshold:
        parts.append(svg_line(px(threshold), top - 4, px(threshold), bottom, "#e15759", ' stroke-dasharray="4 3"'))
        parts.append(svg_line(lx, bottom + 11, lx + 16, bottom + 11, "#e15759", ' stroke-dasharray="4 3"'))
        parts.append(svg_text(lx + 20, bottom + 15, f"threshold {100 * threshold:g}%", fill="#e15759"))
    return svg(width, height + 6, "".join(parts), "gain share per feature")


def _feature_table(report: FeatureReport) -> str:
    rows = []
    for r in report.rows:
        colour = STATUS_COLOURS.get(r.status, "#bab0ac")
        share = "–" if r.gain_share is None else f"{100 * r.gain_share:.2f}%"
        t = "–" if r.holdout_t is None else f"{r.holdout_t:.1f}"
        split = "–" if r.split is None else str(r.split)
        rows.append(
            f'<tr><td class="l">{escape(r.name)}</td><td class="l">{escape(r.group)}</td>'
            f'<td class="l"><span class="badge" style="background:{colour}">{escape(r.status)}</span></td>'
            f'<td>{"yes" if r.served else "no"}</td><td>{share}</td><td>{split}</td><td>{t}</td>'
            f"<td>{sparkline(r.trend, point='run')}</td><td class=\"l small\">{escape('; '.join(r.reasons))}</td>"
            f'<td class="l small">{escape(r.description)}</td></tr>')
    return table(["feature", "group", "status", "served", "gain share", "splits", "held-out t", "trend",
                  "why low", "description"], rows)


def _runs_table(report: FeatureReport) -> str:
    if not report.runs:
        return '<p class="muted">No training run logged yet.</p>'
    rows = []
    for r in reversed(report.runs[-20:]):
        full = "–" if r.full_valid_ndcg is None else f"{r.full_valid_ndcg:.4f}"
        kept = "–" if r.valid_ndcg is None else f"{r.valid_ndcg:.4f}"
        rows.append(f'<tr><td>{r.run_number}</td><td class="l">{escape(r.run_id)}</td>'
                    f'<td class="l">{escape(r.model_version)}</td><td class="l">{escape(r.outcome)}</td>'
                    f"<td>{r.features_in}</td><td>{r.features_out}</td><td>{full}</td><td>{kept}</td>"
                    f'<td class="l small">{escape(r.reason)}</td></tr>')
    return table(["#", "run", "model", "outcome", "features in", "features out", "valid nDCG@10 full",
                  "valid nDCG@10 kept", "decision"], rows)


def render_feature_report(report: FeatureReport) -> str:
    counts = report.counts()
    threshold = (report.policy or {}).get("threshold")
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    measured = [r for r in report.rows if r.gain_share is not None]
    chart = gain_chart(report.rows, threshold) if measured else ""
    headline = (f"model <b>{escape(report.model_version)}</b> uses {len(report.model_features)} features"
                if report.has_model else "<b>No model yet</b> — every registered feature is listed as new")
    policy = ", ".join(f"{escape(k)}={escape(format_number(v) if isinstance(v, float) else v)}"
                       for k, v in (report.policy or {}).items())
    body = f"""<h1>Feature report</h1>
<p class="muted">artifacts {escape(report.artifacts_dir)} · {headline}</p>
<div class="row">{stat_cards((k, str(v)) for k, v in counts.items())}</div>
{f'<ul>{notes}</ul>' if notes else ''}
<div class="row chart" style="margin-top:12px">{chart}</div>
<h2>Features</h2>
{_feature_table(report)}
<h2>Training runs (newest first)</h2>
{_runs_table(report)}
{f'<p class="muted">policy: {policy}</p>' if policy else ''}
"""
    return page("recsys feature report", body, css=_CSS)


def write_feature_report(report: FeatureReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_feature_report(report), encoding="utf-8")
    return path
