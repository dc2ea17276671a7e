"""The console's pages as HTML fragments: plain functions of what they show, no framework.

The shell page (static/console.html) fetches a fragment with the admin token and puts it in place;
every figure is rendered here on the server, so the page's JavaScript only fetches, confirms and swaps.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from api.console.stats import WindowStats
from recsys.artifacts.registry import ModelSummary
from recsys.data.schema import EVENT_NAMES
from recsys.ranking.feature_report import FeatureReport
from recsys.ranking.feature_report_html import gain_chart
from recsys.reports.html import escape, sparkline
from recsys.serving.explain import ExplainedItem, Explanation


def age(ts: float | None, now: float | None = None) -> str:
    """'3 min ago' style; '–' when unknown."""
    if ts is None:
        return "–"
    s = max(0.0, (time.time() if now is None else now) - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.1f} {unit} ago" if unit != "min" else f"{s / size:.0f} min ago"
    return f"{s:.0f} s ago"


def stamp(ts: float | None) -> str:
    return "–" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + " UTC"


def fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "") -> str:
    """Cells are markup (escape text before): some carry buttons and badges."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def card(label: str, value: str, note: str = "", *, test_id: str = "") -> str:
    tid = f' data-testid="{escape(test_id)}"' if test_id else ""
    return (f'<div class="card"><div class="lbl">{escape(label)}</div><div class="num"{tid}>{escape(value)}</div>'
            f'<div class="note">{escape(note)}</div></div>')


def badge(text: str, kind: str) -> str:
    return f'<span class="badge {escape(kind)}">{escape(text)}</span>'


def flash(message: str | None, kind: str = "ok") -> str:
    return f'<p class="flash {escape(kind)}" role="status">{escape(message)}</p>' if message else ""


def latency_bars(stats: WindowStats) -> str:
    """p50 and p99 as two SVG bars on one scale (drawn here, no chart library)."""
    values = [("p50", stats.p50_ms), ("p99", stats.p99_ms)]
    top = max((v for _, v in values if v is not None), default=0.0) or 1.0
    rows = []
    for i, (name, v) in enumerate(values):
        w = 0.0 if v is None else 220 * v / top
        y = 6 + i * 24
        rows.append(f'<text x="0" y="{y + 13}" font-size="12">{name}</text>'
                    f'<rect x="34" y="{y}" width="{w:.1f}" height="16" fill="#4e79a7"/>'
                    f'<text x="{40 + w:.1f}" y="{y + 13}" font-size="12">{fmt(v, 2)} ms</text>')
    return (f'<svg class="chart" viewBox="0 0 330 56" width="330" height="56" role="img" '
            f'aria-label="request latency p50 and p99">{"".join(rows)}</svg>')


def overview(health: dict[str, Any], stats: WindowStats, bundle_created: float | None, model_created: float | None,
             loop: dict[str, Any], runs: list[dict[str, Any]], running: list[str]) -> str:
    status = str(health["status"])
    kind = {"ready": "ok", "degraded": "warn"}.get(status, "bad")
    reasons = "".join(f"<li>{escape(r)}</li>" for r in health.get("reasons", [])) or "<li>none</li>"
    window_min = stats.seconds / 60
    cards = "".join([
        card("candidate version", str(health.get("candidates_version") or "–"), f"built {age(bundle_created)}",
             test_id="candidates-version"),
        card("model version", str(health.get("model_version") or "–"), f"trained {age(model_created)}",
             test_id="model-version"),
        card("requests / s", fmt(stats.rate_per_s, 2), f"{stats.requests:.0f} recommendation requests "
             f"in the last {window_min:.0f} min", test_id="request-rate"),
        card("p50 / p99", f"{fmt(stats.p50_ms, 2)} / {fmt(stats.p99_ms, 2)} ms", "server time, recommendations",
             test_id="latency"),
        card("fallback share", "–" if stats.fallback_share is None else f"{100 * stats.fallback_share:.1f} %",
             "responses not fully personalised", test_id="fallback-share"),
        card("events / s", fmt(loop.get("events_rate"), 2), "accepted by POST /v1/events"),
        card("impressions / s", fmt(loop.get("impressions_rate"), 2), "served lists logged"),
        card("ingest lag", "–" if loop.get("ingest_lag_s") is None else f"{loop['ingest_lag_s']:.0f} s",
             "oldest log entry the lake has not taken"),
    ])
    return (f'<h2>Overview</h2><p>Readiness: {badge(status, kind)} <span data-testid="readiness">{escape(status)}'
            f'</span></p><ul class="reasons">{reasons}</ul><div class="cards">{cards}</div>'
            f'<h3>Latency, last {window_min:.0f} min</h3>{latency_bars(stats)}'
            f"<h3>Recent jobs</h3>{job_table(runs[:8], running)}")


def job_table(runs: list[dict[str, Any]], running: list[str]) -> str:
    rows = []
    for r in runs:
        status = str(r.get("status", ""))
        kind = "ok" if status == "ok" else "warn" if status in ("running",) or status.startswith("skipped") else "bad"
        start, seconds = r.get("start"), r.get("duration_s")
        duration = f"{seconds:.1f} s" if isinstance(seconds, int | float) else "–"
        rows.append([escape(r.get("job", "")), escape(r.get("trigger", "")), escape(stamp(start)), duration,
                     badge(status, kind), escape(r.get("version") or ""), escape(r.get("error") or "")])
    note = (f'<p class="note">started from this console, still running: {escape(", ".join(running))}</p>'
            if running else "")
    return note + table(["job", "trigger", "started", "duration", "status", "version", "error"], rows,
                        cls="jobs")


def jobs(runs: list[dict[str, Any]], running: list[str], job_names: Sequence[str], message: str | None) -> str:
    buttons = "".join(f'<button class="run-job" data-job="{escape(j)}" data-testid="run-{escape(j)}">Run '
                      f"{escape(j)} now</button>" for j in job_names)
    return (f"<h2>Jobs</h2>{flash(message)}<p class=\"actions\">{buttons}</p>"
            f'<p class="note">Runs in its own process under the job lock; the history below is the store\'s '
            f'(every scheduler and console). <button class="refresh-view">Reload</button></p>'
            f"{job_table(runs, running)}")


def models(rows: list[ModelSummary], promotions: list[dict[str, Any]], message: str | None,
           error: str | None = None) -> str:
    body = []
    for m in reversed(rows):  # newest first
        action = (badge("serving", "ok") if m.serving else
                  f'<button class="promote" data-version="{escape(m.version)}" '
                  f'data-testid="promote-{escape(m.version)}">Promote</button>')
        body.append([f'<span class="mono">{escape(m.version)}</span>', escape(stamp(m.created_at)),
                     fmt(m.valid_ndcg, 4), str(m.features), str(m.trees), escape(m.data_source or ""),
                     escape(m.promotion or ""), escape(m.problem or ""), action])
    history = [[escape(stamp(p.get("ts"))), f'<span class="mono">{escape(p.get("model_version", ""))}</span>',
                f'<span class="mono">{escape(p.get("previous") or "–")}</span>', escape(p.get("reason", ""))]
               for p in reversed(promotions[-15:])]
    return (f"<h2>Models</h2>{flash(message)}{flash(error, 'bad')}"
            '<p class="actions"><button class="rollback" data-testid="rollback">Roll back to the previous '
            "model</button></p>"
            + table(["version", "trained", "valid nDCG@10", "features", "trees", "data", "last promotion",
                     "problem", ""], body, cls="models")
            + "<h3>Promotions, newest first</h3>"
            + table(["when", "model", "previous", "reason"], history))


def _feature_cells(item: ExplainedItem, names: list[str]) -> list[str]:
    return [fmt(item.features.get(n), 3) for n in names]


def try_page(user_id: str, exp: Explanation | None, k: int, message: str | None) -> str:
    form = (f'<form class="try-form"><label>User id <input name="user" value="{escape(user_id)}" '
            'data-testid="try-user" required></label> <button type="submit">Explain</button></form>')
    if exp is None:
        return f"<h2>Try</h2>{form}<p>Enter a user id to see why they get what they get.</p>"
    reason = exp.fallback.value if exp.fallback is not None else "none (personalised and reranked)"
    session = ", ".join(f"{escape(i)} ({escape(e)}, {age(t)})" for i, e, t in exp.session) or "empty"
    facts = (f'<ul class="facts"><li>Fallback: <b data-testid="try-fallback">{escape(reason)}</b></li>'
             f'<li>Candidate version <span class="mono">{escape(exp.candidates_version or "–")}</span>, model '
             f'<span class="mono" data-testid="try-model">{escape(exp.model_version or "–")}</span></li>'
             f"<li>History: {exp.history_size} items (never recommended again)</li>"
             + (f"<li>Experiment: {escape(exp.experiment)} — its variant decides what the API serves; below is "
                "the model's ranking</li>" if exp.experiment else "")
             +
             f'<li>Session: <span data-testid="try-session">{session}</span></li>'
             f"<li>Candidates scored: {len(exp.items)} ("
             + ", ".join(f"{escape(s)} {sum(1 for i in exp.items if i.source == s)}"
                         for s in sorted({i.source for i in exp.items}))
             + ")</li></ul>")
    top = exp.items[:k]
    reranked = table(["rank", "item", "source", "ALS rank", "score"],
                     [[str(i.rank), f'<span class="mono">{escape(i.item_id)}</span>', escape(i.source),
                       "–" if i.als_rank is None else str(i.als_rank), fmt(i.score, 4)] for i in top], cls="reranked")
    als = table(["ALS rank", "item", "ALS score", "reranked"],
                [[str(i.als_rank), f'<span class="mono">{escape(i.item_id)}</span>', fmt(i.als_score, 4),
                  str(i.rank)] for i in exp.als_order[:k]], cls="als")
    names = exp.feature_names
    features = (table(["item", *names], [[f'<span class="mono">{escape(i.item_id)}</span>',
                                          *_feature_cells(i, names)] for i in top], cls="features")
                if names else "<p>No ranker model: the list is in the fallback order, no features computed.</p>")
    options = "".join(f"<option{' selected' if e == 'click' else ''}>{escape(e)}</option>" for e in EVENT_NAMES)
    event_form = ('<form class="event-form"><label>Post a test event: item <input name="item_id" '
                  f'data-testid="event-item" required></label> <select name="event" data-testid="event-kind">'
                  f'{options}</select> <button type="submit">Post event</button></form>')
    return (f"<h2>Try</h2>{form}{flash(message)}<h3>Why <span class=\"mono\">{escape(exp.user_id)}</span> gets "
            f"what they get</h3>{facts}{event_form}"
            f'<div class="pair"><div><h3>Reranked top {k}</h3>{reranked}</div>'
            f"<div><h3>ALS order (the cached candidates)</h3>{als}</div></div>"
            f"<h3>Features the ranker saw (top {k})</h3>{features}")


def features(report: FeatureReport) -> str:
    """The features report, live: gain share per feature (SVG bars), status, trend, and the pruning runs."""
    measured = [r for r in report.rows if r.gain_share is not None]
    threshold = (report.policy or {}).get("threshold")
    chart = gain_chart(report.rows, threshold) if measured else "<p>No training run has measured features yet.</p>"
    rows = [[f'<span class="mono">{escape(r.name)}</span>', escape(r.group), badge(r.status, _FEATURE_KIND.get(
        r.status, "warn")), "yes" if r.served else "no", fmt(r.gain_share, 4),
        sparkline(r.trend, label=f"{r.name} gain share per run", point="run"), escape("; ".join(r.reasons))]
        for r in report.rows]
    runs = [[str(r.run_number), f'<span class="mono">{escape(r.model_version or "–")}</span>', escape(r.outcome),
             f"{r.features_in} → {r.features_out}", fmt(r.full_valid_ndcg, 4), fmt(r.valid_ndcg, 4),
             escape(", ".join(r.pruned) or "–"), escape(r.reason)] for r in reversed(report.runs)]
    counts = "".join(card(k, str(v)) for k, v in report.counts().items())
    headline = (f'serving model <span class="mono" data-testid="features-model">{escape(report.model_version)}'
                f"</span> uses {len(report.model_features)} features" if report.has_model else "no model yet")
    return (f"<h2>Features</h2><p>{headline}</p><div class=\"cards\">{counts}</div>"
            f'<div class="scroll">{chart}</div>'
            + table(["feature", "group", "status", "served", "gain share", "trend", "why"], rows, cls="features-report")
            + "<h3>Training runs and pruning decisions, newest first</h3>"
            + table(["run", "model", "outcome", "features", "nDCG all", "nDCG kept", "pruned", "reason"], runs))


_FEATURE_KIND = {"active": "ok", "pruned": "bad"}


def drift(runs: list[dict[str, Any]]) -> str:
    """The newest drift verdict per feature, and the history of checks (from the job history)."""
    checks = [r for r in runs if r.get("job") == "drift"]
    latest = next((r for r in checks if (r.get("details") or {}).get("drift_status")), None)
    if latest is None:
        head = "<p>No drift check has run yet (<code>recsys drift</code> or the scheduler's drift job).</p>"
    else:
        d = latest.get("details") or {}
        drifted = d.get("drifted_features") or []
        head = (f'<p>Newest check {escape(stamp(latest.get("start")))}: <b data-testid="drift-status">'
                f'{escape(d.get("drift_status"))}</b> — {escape(d.get("message") or "")}</p>'
                f"<p>Model {escape(d.get('model_version') or '–')}, {escape(d.get('current_rows') or 0)} served rows, "
                f"drifted share {fmt(d.get('drifted_share'), 3)}; drifted features: "
                f"{escape(', '.join(drifted) or 'none')}</p>")
    rows = [[escape(stamp(r.get("start"))), badge(str(r.get("status")), "ok" if r.get("status") == "ok" else "bad"),
             escape((r.get("details") or {}).get("drift_status") or "–"),
             fmt((r.get("details") or {}).get("drifted_share"), 3),
             escape(", ".join((r.get("details") or {}).get("drifted_features") or []) or "–"),
             escape((r.get("details") or {}).get("triggered") or "–"), escape(r.get("error") or "")] for r in checks]
    return ("<h2>Drift</h2>" + head + "<h3>Checks, newest first</h3>"
            + table(["when", "run", "verdict", "drifted share", "drifted features", "triggered", "error"], rows,
                    cls="drift"))
