"""A self-contained HTML report of one evaluation: inline SVG charts, no script, no network.

The page shell and the charts are the shared report helpers (recsys/reports/html.py); this module
only lays out what an evaluation result holds.
"""

from __future__ import annotations

from pathlib import Path

from recsys.evaluation.metrics import METRIC_KEYS
from recsys.evaluation.protocol import CANDIDATES, RERANKED, EvaluationResult
from recsys.reports.html import (
    LIGHT,
    Palette,
    Segment,
    bar_panel,
    escape,
    forest_chart,
    hbar_chart,
    line_chart,
    page,
    stacked_bar_chart,
    stat_cards,
    table,
)

MODEL_COLOURS = {
    "popularity": "#9aa0a6",
    "als": "#4e79a7",
    "als+session": "#59a14f",
    "itemknn+session": "#edc948",
    "ease+session": "#b07aa1",
    CANDIDATES: "#f28e2b",
    RERANKED: "#e15759",
}
MODEL_PALETTE = Palette(MODEL_COLOURS, fallback=("#76b7b2", "#ff9da7", "#9c755f", "#bab0ac"))

_CSS = """svg { background: #fff; border: 1px solid #e5e5e5; border-radius: 6px; }
.card { background: #fff; border: 1px solid #e5e5e5; border-radius: 6px; padding: 10px 16px;
         min-width: 120px; }
th, td { border: 1px solid #e2e2e2; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child, td.l { text-align: left; } tr.na td { color: #888; font-style: italic; }
.sw { display: inline-block; width: 10px; height: 10px; margin-right: 6px; border-radius: 2px; }
"""


def _shape_chart(result: EvaluationResult) -> str:
    d = result.dataset
    held = d.interactions - d.train_interactions
    user_parts: list[Segment]
    if d.cold_users is not None:
        user_parts = [("evaluated, warm", d.eval_users - d.cold_users, "#4e79a7"),
                      ("evaluated, cold", d.cold_users, "#e15759"),
                      ("not evaluated", max(d.users - d.eval_users, 0), LIGHT)]
    else:
        user_parts = [("evaluated", d.eval_users, "#4e79a7"),
                      ("not evaluated", max(d.users - d.eval_users, 0), LIGHT)]
    held_name = "held out" if d.cutoff is None else "after cutoff"
    return stacked_bar_chart("Data set shape", [
        ("users", user_parts),
        ("interactions", [("training", d.train_interactions, "#59a14f"), (held_name, held, "#f28e2b")]),
    ], label="data set shape")


def _metrics_table(result: EvaluationResult) -> str:
    rows = []
    for name, m in result.models.items():
        swatch = f'<span class="sw" style="background:{MODEL_PALETTE.colour(name)}"></span>'
        if not m.available:
            rows.append(f'<tr class="na"><td>{swatch}{escape(name)}</td><td colspan="{len(METRIC_KEYS) + 2}">'
                        f'not available — {escape(m.reason)}</td></tr>')
            continue
        cells = "".join(f"<td>{m.metrics[k]:.4f}</td>" if k in m.metrics else "<td>–</td>"
                        for k in METRIC_KEYS)
        ci = f"[{m.ndcg_ci.low:.4f}, {m.ndcg_ci.high:.4f}]" if m.ndcg_ci else "–"
        rows.append(f"<tr><td>{swatch}{escape(name)}</td>{cells}<td>{ci}</td><td>{m.users:,}</td></tr>")
    return table(["model", *METRIC_KEYS, "nDCG@10 95% CI", "users"], rows)


def _groups_section(result: EvaluationResult) -> str:
    if not result.groups:
        return ""
    bars: list[str] = []
    rows: list[str] = []
    for gname, group in result.groups.items():
        if not group.users:
            rows.append(f"<tr><td>{escape(gname)}</td><td>0</td><td colspan='3'>no users in this group</td></tr>")
            continue
        panel = [(n, v["ndcg@10"], None) for n, v in group.models.items() if "ndcg@10" in v]
        bars.append(bar_panel(f"nDCG@10 — {gname} users ({group.users})", panel, width=360,
                              palette=MODEL_PALETTE))
        for n, v in group.models.items():
            vals = "".join(f"<td>{v[k]:.4f}</td>" if k in v else "<td>–</td>"
                           for k in ("ndcg@10", "recall@10", "hit@10", "recall@100"))
            head = f'<td>{escape(gname)}</td><td>{group.users}</td><td class="l">{escape(n)}</td>'
            rows.append(f"<tr>{head}{vals}</tr>")
    return ('<h2>Warm and cold users</h2><p>Cold users have no interaction before the cutoff: every model '
            'sees only their session.</p><div class="row">' + "".join(bars) + "</div>"
            + table(["group", "users", "model", "ndcg@10", "recall@10", "hit@10", "recall@100"], rows))


def _paired_section(result: EvaluationResult) -> str:
    p = result.paired
    if not p.get("available"):
        best = escape(p.get("best_baseline"))
        return (f'<p class="muted">Paired difference reranked − best baseline ({best}): not available — '
                f'{escape(p.get("reason"))}.</p>')
    lo, hi = p["ci95"]
    chart = forest_chart(f"nDCG@10: reranked − {p['best_baseline']} (paired bootstrap)",
                         [(RERANKED, p["difference"], lo, hi)], zero_line=True, palette=MODEL_PALETTE)
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "not distinguishable from"
    return (f"{chart}<p>reranked − {escape(p['best_baseline'])}: <b>{p['difference']:+.4f}</b> "
            f"(95% CI [{lo:+.4f}, {hi:+.4f}]) — reranked is {verdict} the best baseline.</p>")


def _metric_panels(result: EvaluationResult) -> str:
    """One bar panel per metric, over the available models (nDCG@10 with its interval)."""
    available = [(n, m) for n, m in result.models.items() if m.available]
    panels = []
    for key in METRIC_KEYS:
        bars = [(n, m.metrics[key],
                 (m.ndcg_ci.low, m.ndcg_ci.high) if key == "ndcg@10" and m.ndcg_ci else None)
                for n, m in available if key in m.metrics]
        if bars:
            panels.append(bar_panel(key + (" (95% CI)" if key == "ndcg@10" else ""), bars, palette=MODEL_PALETTE))
    return "".join(panels)


def _curves(result: EvaluationResult) -> str:
    available = [(n, m) for n, m in result.models.items() if m.available]
    ndcg = [(n, m.ndcg_curve) for n, m in available if m.ndcg_curve]
    recall = [(n, m.recall_curve) for n, m in available if m.recall_curve]
    return line_chart("nDCG@k", ndcg, palette=MODEL_PALETTE) + line_chart("Recall@k", recall, palette=MODEL_PALETTE)


def _forest(result: EvaluationResult) -> str:
    rows = [(n, m.ndcg_ci.mean, m.ndcg_ci.low, m.ndcg_ci.high) for n, m in result.models.items()
            if m.available and m.ndcg_ci]
    return forest_chart("nDCG@10 per model", rows, palette=MODEL_PALETTE) if rows else ""


def _timings(result: EvaluationResult) -> str:
    rows = sorted(result.timings.items(), key=lambda kv: -kv[1])
    return hbar_chart("seconds per stage", rows, width=700) if rows else ""


def render_report(result: EvaluationResult) -> str:
    """The whole page as one string."""
    d = result.dataset
    cards = [("users", d.users), ("items", d.items), ("interactions", d.interactions),
             ("training interactions", d.train_interactions), ("evaluation users", d.eval_users)]
    if d.cold_users is not None:
        cards.append(("cold evaluation users", d.cold_users))
    cutoff = ""
    if d.cutoff is not None:
        cutoff = f" · cutoff timestamp {d.cutoff} (quantile {result.config.quantile})"
    notes = "".join(f"<li>{escape(n)}</li>" for n in result.notes)
    body = f"""<h1>Offline evaluation — {escape(result.protocol)}</h1>
<p class="muted">data {escape(d.source)} · seed {result.config.seed} · {d.eval_users:,} evaluation users
{escape(cutoff)} · bootstrap {result.config.n_bootstrap} resamples</p>
<div class="row">{stat_cards((k, f"{v:,}") for k, v in cards)}</div>
<div class="row" style="margin-top:10px">{_shape_chart(result)}</div>
<h2>Metrics per model</h2>
<div class="row">{_metric_panels(result)}</div>
{_metrics_table(result)}
<h2>nDCG@k and Recall@k, k = 1..{result.config.curve_k}</h2>
<div class="row">{_curves(result)}</div>
<h2>nDCG@10 with 95% bootstrap intervals</h2>
<div class="row">{_forest(result)}</div>
{_paired_section(result)}
{_groups_section(result)}
<h2>Time per stage</h2>
<div class="row">{_timings(result)}</div>
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
"""
    return page(f"recsys evaluation — {result.protocol}", body, css=_CSS)


def write_report(result: EvaluationResult, out_dir: Path) -> Path:
    """Write `report.html` into `out_dir` (created) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    path.write_text(render_report(result), encoding="utf-8")
    return path
