"""Schemathesis hooks for fuzzing the API (CLI: SCHEMATHESIS_HOOKS=tests.schemathesis_hooks; pytest: imported).

Event timestamps must lie in a window relative to *now* (the last 30 days, at most 5 minutes ahead),
which JSON Schema cannot express. Without help, the fuzzer sends any number and reports the 422 on a
"schema-valid" timestamp as a failure. This hook moves every numeric timestamp into the window (a
deterministic function of the generated value, so values still vary); bodies generated invalid for
other reasons stay invalid. The window checks themselves are covered by tests/e2e/test_api.py.
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


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: Any, kwargs: dict[str, Any]) -> None:
    """Every phase (coverage, fuzzing, stateful) goes through here, just before the request is sent."""
    if case.body is not None and not isinstance(case.body, str | bytes):
        case.body = move_timestamps_into_window(case.body)
