"""Everything the command line prints: commands compute, these functions show the result.

Library types are imported for annotations only, so that `recsys --help` stays fast.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from recsys.redact import redact_url

if TYPE_CHECKING:
    from recsys.artifacts.registry import ModelSummary
    from recsys.config import Settings
    from recsys.data.synthetic import SynthSummary
    from recsys.demo import DemoResult
    from recsys.engines.local import RefreshResult
    from recsys.evaluation.protocol import EvaluationResult
    from recsys.ranking.feature_report import FeatureReport
    from recsys.ranking.train import TrainResult
    from recsys.store.job_history import JobRun

console = Console(stderr=False)
err = Console(stderr=True)

JOB_STATUS_COLOUR = {"ok": "green", "failed": "red", "lost": "red", "abandoned": "yellow", "running": "cyan"}
FEATURE_STATUS_COLOUR = {"active": "blue", "candidate": "yellow", "pruned": "dim", "new": "green"}
GROUP_METRICS = ("ndcg@10", "recall@10", "hit@10", "recall@100")


def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")


def notes(lines: list[str], *, soft_wrap: bool = False) -> None:
    for note in lines:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=soft_wrap)


def written(label: str, path: Path | str) -> None:
    """One line naming a file the command wrote (`json: …`, `report: …`)."""
    console.print(f"{label}: {path}")


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    written("json", path)


def print_json(data: object) -> None:
    console.print_json(json.dumps(data, default=str))


def refresh_summary(result: RefreshResult) -> None:
    table = Table(title=f"refresh published version {result.version}")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage, sec in result.seconds.items():
        table.add_row(stage, f"{sec:.2f}")
    table.add_row("[bold]total", f"[bold]{result.total_seconds:.2f}")
    console.print(table)
    console.print(f"users={result.users} items={result.items} interactions={result.interactions} "
                  f"(base data {result.rows_base}, lake {result.rows_lake}) "
                  f"candidate_bytes_per_user={result.bytes_per_user:.0f} bundle={result.bundle_path}")
    notes(result.notes)


def evaluation(result: EvaluationResult) -> None:
    from recsys.evaluation.metrics import METRIC_KEYS

    d = result.dataset
    shape = (f"users={d.users} items={d.items} interactions={d.interactions} "
             f"train={d.train_interactions} eval_users={d.eval_users}")
    if d.cold_users is not None:
        shape += f" cold_users={d.cold_users} cutoff={d.cutoff}"
    columns = [k.replace("precision", "prec").replace("coverage", "cov") for k in METRIC_KEYS]
    columns += ["nDCG@10 95% CI", "users"]
    rows: list[tuple[str, list[str]]] = []
    unavailable = []
    for name, m in result.models.items():
        if not m.available:
            rows.append((f"[dim]{name}", ["[dim]–"] * len(METRIC_KEYS) + ["[dim]not available", ""]))
            unavailable.append(f"{name}: not available — {m.reason}")
            continue
        cells = [f"{m.metrics[k]:.4f}" if k in m.metrics else "–" for k in METRIC_KEYS]
        ci = f"[{m.ndcg_ci.low:.4f}, {m.ndcg_ci.high:.4f}]" if m.ndcg_ci else "–"
        rows.append((name, [*cells, ci, str(m.users)]))
    # One table needs ~120 columns; a narrower terminal gets the columns in two tables.
    parts = [range(len(columns))] if console.width >= 120 else [range(0, 5), range(5, len(columns))]
    for i, part in enumerate(parts):
        table = Table(title=f"{result.protocol} on {d.source}" if i == 0 else None,
                      caption=shape if i == len(parts) - 1 else None)
        table.add_column("model", no_wrap=True)
        for c in part:
            table.add_column(columns[c], justify="right", no_wrap=True)
        for name, row in rows:
            table.add_row(name, *[row[c] for c in part])
        console.print(table)
    for line in unavailable:
        console.print(f"[dim]{line}")
    p = result.paired
    if p.get("available"):
        console.print(f"paired nDCG@10 reranked − {p['best_baseline']}: {p['difference']:+.4f} "
                      f"(95% CI [{p['ci95'][0]:+.4f}, {p['ci95'][1]:+.4f}])")
    else:
        console.print(f"paired nDCG@10 reranked − {p.get('best_baseline')}: "
                      f"not available ({p.get('reason')})")
    for gname, group in result.groups.items():
        gt = Table(title=f"{gname} users ({group.users})")
        gt.add_column("model")
        for key in GROUP_METRICS:
            gt.add_column(key, justify="right")
        for name, vals in group.models.items():
            gt.add_row(name, *[f"{vals[k]:.4f}" if k in vals else "–" for k in GROUP_METRICS])
        console.print(gt)
    notes(result.notes)


def ranker_training(result: TrainResult) -> None:
    table = Table(title=f"ranker {result.model_version}")
    for col in ("feature", "gain share", "splits"):
        table.add_column(col, justify="right" if col != "feature" else "left")
    for name, imp in sorted(result.importances.items(), key=lambda kv: -kv[1]["gain_share"]):
        table.add_row(name, f"{imp['gain_share']:.3f}", str(int(imp["split"])))
    console.print(table)
    console.print(f"training rows: base data {result.rows_base}, lake {result.rows_lake}")
    console.print(f"valid nDCG@10={result.valid_ndcg:.4f} best_iteration={result.best_iteration} "
                  f"seconds={result.seconds:.1f} path={result.path}")
    console.print(f"promoted={result.promoted}: {result.reason}", soft_wrap=True)
    if result.guardrails is not None and result.guardrails.forced:
        console.print("[yellow]note:[/] trained with --force over the publish guardrails: "
                      + escape("; ".join(result.guardrails.problems)), soft_wrap=True)
    if result.pruning:
        console.print(f"feature pruning: {result.pruning.get('outcome')} — {result.pruning.get('reason')} "
                      f"(details: recsys features report)", soft_wrap=True)


def serving(settings: Settings) -> None:
    console.print(f"serving on http://{settings.host}:{settings.port} with {settings.workers} worker(s)  "
                  f"(docs: /docs, metrics: /metrics, store: {redact_url(settings.store_url)})")


def demo(result: DemoResult, settings: Settings, *, serve: bool) -> None:
    """What the demo built, a sample top-10, and where to look next (the API's addresses when it serves)."""
    refresh_summary(result.refresh)
    console.print(f"ranker {result.ranker.model_version}: valid nDCG@10={result.ranker.valid_ndcg:.4f} "
                  f"promoted={result.ranker.promoted}")
    table = Table(title=f"top-10 for user {result.sample.user_id} (data: {result.data_path})")
    for col in ("rank", "item_id", "score"):
        table.add_column(col)
    for item in result.sample.items:
        table.add_row(str(item.rank), item.item_id, f"{item.score:.4f}")
    console.print(table)
    console.print(f"store: {redact_url(settings.store_url)}\nartifacts: {settings.artifacts_dir}")
    if serve:
        base = f"http://{settings.host}:{settings.port}"
        console.print(f"API:     {base}/v1/users/{result.sample.user_id}/recommendations?k=10\n"
                      f"docs:    {base}/docs\nmetrics: {base}/metrics\nready:   {base}/readyz\n(Ctrl-C stops)")


def synthetic_summary(summary: SynthSummary) -> None:
    table = Table(title="synthetic data set written")
    table.add_column("")
    table.add_column("value", justify="right")
    for name, value in (("rows", f"{summary.rows:,}"), ("users", f"{summary.users:,}"),
                        ("items", f"{summary.items:,}"),
                        ("events per user", f"{summary.rows / max(summary.users, 1):.1f}"),
                        ("seconds", f"{summary.seconds:.1f}"), ("path", summary.path)):
        table.add_row(name, value)
    console.print(table)


def _utc(ts: float | str | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(float(ts), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def job_history(runs: list[dict[str, Any]]) -> None:
    table = Table(title=f"job history ({len(runs)} runs, newest first, UTC)")
    for col in ("job", "trigger", "start", "end", "s", "status", "version", "error / reason / summary",
                "host"):
        table.add_column(col, justify="right" if col == "s" else "left", overflow="fold")
    for r in runs:
        status = str(r.get("status"))
        style = JOB_STATUS_COLOUR.get(status, "yellow" if status.startswith("skipped") else "")
        info = r.get("error") or r.get("reason") or (r.get("details") or {}).get("message") or ""
        duration = r.get("duration_s")
        table.add_row(str(r.get("job")), str(r.get("trigger")), _utc(r.get("start")), _utc(r.get("end")),
                      "" if duration is None else f"{duration:.1f}",
                      f"[{style}]{status}[/]" if style else status,
                      str(r.get("version") or ""), str(info), str(r.get("host") or ""))
    console.print(table)


def drift_not_run(run: JobRun | None) -> None:
    err.print(f"[bold red]drift check did not run:[/] {run.status if run else 'shutting down'} "
              f"{(run.error or '') if run else ''}")


def drift_check(details: dict[str, Any]) -> None:
    d = details
    console.print(f"status={d['drift_status']} model={d.get('model_version')} rows={d.get('current_rows')} "
                  f"drifted_share={d.get('drifted_share')}")
    console.print(d["message"])
    for key in ("report_json", "report_html"):
        if d.get(key):
            written(key.replace("report_", ""), d[key])
    if d.get("triggered"):
        console.print(f"[yellow]triggered train-ranker:[/] {d.get('retrain_status')} "
                      f"(run {d.get('retrain_run_id')})")


def feature_report(report: FeatureReport, artifacts_dir: Path, runs: int) -> None:
    """The feature table (essential columns only below 150 terminal columns), counts, last run, notes."""
    from recsys.ranking.feature_report import sparkline

    top = max((r.gain_share or 0.0 for r in report.rows), default=0.0) or 1.0
    title = (f"features of model {report.model_version}" if report.has_model
             else f"features (no model yet in {artifacts_dir})")
    wide = console.width >= 150
    columns = ["feature", "group", "status", "served", "gain share", "", "splits", "held-out t",
               f"trend ({len(report.runs[-runs:])} runs)", "why low"]
    shown = range(len(columns)) if wide else [0, 2, 3, 4, 5, 6, 8]
    table = Table(title=title)
    for c in shown:
        table.add_column(columns[c], justify="right" if c in (4, 6, 7) else "left", overflow="fold",
                         no_wrap=c in (0, 5))
    for r in report.rows:
        style = FEATURE_STATUS_COLOUR.get(r.status, "")
        share = "–" if r.gain_share is None else f"{100 * r.gain_share:.2f}%"
        n_bar = int(round((20 if wide else 10) * (r.gain_share or 0.0) / top))
        bar = "█" * max(n_bar, 1 if r.gain_share else 0)
        cells = [r.name, r.group, f"[{style}]{r.status}[/]", "yes" if r.served else "no", share, bar,
                 "–" if r.split is None else str(r.split), "–" if r.holdout_t is None else f"{r.holdout_t:.1f}",
                 sparkline(r.trend) or "–", "; ".join(r.reasons)]
        table.add_row(*[cells[c] for c in shown])
    console.print(table)
    console.print(" ".join(f"{k}={v}" for k, v in report.counts().items()))
    if report.runs:
        last = report.runs[-1]
        console.print(f"last run #{last.run_number} ({last.run_id}): {last.outcome} — {last.reason}")
    notes(report.notes, soft_wrap=True)


def models(rows: list[ModelSummary], location: str) -> None:
    table = Table(title=f"ranker models in {location} (newest last; * = serving)")
    for col in ("", "version", "created (UTC)", "valid nDCG@10", "features", "trees", "data", "promotion"):
        table.add_column(col, justify="right" if col in ("valid nDCG@10", "features", "trees") else "left")
    for r in rows:
        ndcg = "–" if r.valid_ndcg is None else f"{r.valid_ndcg:.4f}"
        table.add_row("*" if r.serving else "", r.version, _utc(r.created_at), ndcg, str(r.features),
                      str(r.trees), escape(str(r.data_source or "")), escape(r.promotion or ""))
    console.print(table)
    if not rows:
        console.print("no models yet: run `recsys train-ranker --data PATH`")


def promoted(version: str, previous: str | None) -> None:
    console.print(f"serving model {version} (was {previous or 'none'}); API replicas switch at their next reload")


def job_run(title: str, run: JobRun | None) -> None:
    """A one-shot job run by hand (`recsys ingest`, `recsys update`): its status and details."""
    if run is None:
        error(f"{title}: not started (shutting down)")
        return
    table = Table(title=f"{title}: {run.status}" + (f" — {run.error}" if run.error else ""))
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in run.details.items():
        table.add_row(key, escape(str(value)))
    console.print(table)


def forgotten(user_id: str, log_entries: int, feature_rows: int) -> None:
    console.print(f"forgot {escape(user_id)}: session, candidates and history deleted; {log_entries} waiting log "
                  f"entries and {feature_rows} feature-log rows deleted; the lake drops the user's rows at the "
                  "next `recsys ingest`")


def experiments(rows: list[dict[str, Any]]) -> None:
    table = Table(title="experiments (running first)")
    for col in ("name", "kind", "status", "traffic", "slot", "variants (name:ranker:share)", "created (UTC)"):
        table.add_column(col)
    for e in rows:
        variants = ", ".join(f"{v['name']}:{v['ranker']}:{v['share']:g}" for v in e["variants"])
        table.add_row(escape(e["name"]), e["kind"], e["status"], f"{e['traffic']:g}", f"{e['slot_start']:g}",
                      escape(variants), _utc(e["created_at"]))
    console.print(table)
    if not rows:
        console.print("no experiments: `recsys experiments create NAME --variant control:als:0.5 "
                      "--variant treatment:model:0.5`")


def _num(value: float | None, fmt: str = ".4f") -> str:
    return "–" if value is None or value != value else format(value, fmt)


def experiment_report(r: dict[str, Any]) -> None:
    """The terminal form of an experiment report (the JSON has every figure)."""
    e = r["experiment"]
    console.print(f"[bold]{escape(e['name'])}[/] ({e['kind']}, {e['status']}): {r['impressions']} impressions, "
                  f"{r['users']} users")
    if r["variants"]:
        table = Table(title=f"per variant (clicks per impression: per-user delta method, {1 - r['alpha']:.0%})")
        for col in ("variant", "share", "users", "impressions", "clicks", "CTR [interval]", "clicks/user",
                    "conv./impr.", "first click pos."):
            table.add_column(col, justify="left" if col == "variant" else "right")
        for v in r["variants"]:
            table.add_row(escape(v["name"]), f"{v['expected_share']:g}", str(v["users"]), str(v["impressions"]),
                          str(v["clicks"]), f"{_num(v['ctr'])} [{_num(v['ctr_low'])}, {_num(v['ctr_high'])}]",
                          _num(v["clicks_per_user"], ".3f"), _num(v["conversions_per_impression"]),
                          _num(v["first_click_position"], ".2f"))
        console.print(table)
    for c in r["comparisons"]:
        lift = (f"; relative lift {_num(c['lift'], '+.1%')} [{_num(c['lift_low'], '+.1%')}, "
                f"{_num(c['lift_high'], '+.1%')}]" if c["lift"] is not None else "")
        colour = "green" if c["decided"] else "yellow"
        console.print(f"[{colour}]{escape(c['variant'])} vs {escape(c['control'])}:[/] {escape(c['verdict'])}{lift}")
    if r["srm"] is not None:
        s = r["srm"]
        state = "[red]FIRED[/]" if s["fired"] else "[green]quiet[/]"
        console.print(f"sample ratio check: {state} (chi-square {s['chi2']:.2f}, p = {s['p_value']:.3g}; users "
                      f"{s['observed']}, expected {', '.join(f'{k}: {v:.0f}' for k, v in s['expected'].items())})")
    if r["interleaving"] is not None:
        i = r["interleaving"]
        colour = "green" if i["decided"] else "yellow"
        console.print(f"interleaving: {i['impressions']} impressions, {i['impressions_with_clicks']} with clicks; "
                      f"impressions won {i['wins']}, ties {i['ties']}; users preferring {i['users_preferring']}")
        console.print(f"[{colour}]{escape(i['verdict'])}[/]")
    notes(r["notes"])
