"""Schemathesis hooks for fuzzing the API (CLI: SCHEMATHESIS_HOOKS=tests.schemathesis_hooks; pytest: imported).

Event timestamps must lie in a window relative to *now* (the last 30 days, at most 5 minutes ahead),
which JSON Schema cannot express. Without help, the fuzzer sends any number and reports the 422 on a
"schema-valid" timestamp as a failure. This hook moves every numeric timestamp into the window (a
deterministic function of the generated value, so values still vary); bodies generated invalid for
other reasons stay invalid. The window checks themselves are covered by tests/e2e/test_api.py.

An experiment definition has three cross-field rules JSON Schema cannot state either (distinct variant
names, A/B shares adding up to 1, two variants for interleaving): `consistent_experiment` makes a
generated definition follow them (tests/e2e/test_experiments.py covers the 422s).
"""

from __future__ import annotations

import time
from typing import Any

import schemathesis

WINDOW_SECONDS = 29 * 86400


def move_timestamps_into_window(body: Any, now: float | None = None) -> Any:
    now = time.time() if now is None else now
    if isinstance(body, list):
        return [move_timestamps_into_window(x, now) for x in body]
    if isinstance(body, dict):
        out = {k: move_timestamps_into_window(v, now) for k, v in body.items()}
        ts = out.get("timestamp")
        if isinstance(ts, int | float) and not isinstance(ts, bool):
            out["timestamp"] = now - abs(float(ts)) % WINDOW_SECONDS
        return out
    return body


def consistent_experiment(body: Any) -> Any:
    if not (isinstance(body, dict) and isinstance(body.get("variants"), list)
            and all(isinstance(v, dict) for v in body["variants"]) and len(body["variants"]) >= 2):
        return body
    variants = body["variants"][:2] if body.get("kind") == "interleaving" else body["variants"]
    out = []
    for i, v in enumerate(variants):
        v = dict(v)
        if isinstance(v.get("name"), str):
            v["name"] = f"{v['name'][:60]}-{i}"  # distinct, still matching the name pattern
        v["share"] = 1.0 / len(variants)
        out.append(v)
    return {**body, "variants": out}


def prepared(body: Any) -> Any:
    return consistent_experiment(move_timestamps_into_window(body))


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: Any, kwargs: dict[str, Any]) -> None:
    """Every phase (coverage, fuzzing, stateful) goes through here, just before the request is sent."""
    if case.body is not None and not isinstance(case.body, str | bytes):
        case.body = prepared(case.body)
