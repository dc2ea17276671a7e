"""MLflow off (no RECSYS_MLFLOW__TRACKING_URI): nothing imports mlflow, whether or not it is installed.

A fresh interpreter trains and promotes a ranker through every path that calls the tracking hooks (the
train-ranker job, `recsys models promote`, the console's rollback), then lists the mlflow modules loaded.
With the extra installed this is the check that matters: the hooks return before importing anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as cli_app
from jobs.definitions import DEFAULT_JOBS
from jobs.runner import JobRunner
from recsys.artifacts import registry_for
from recsys.config import Settings
from recsys.data.synthetic import write_synthetic
from recsys.engines.local import run_refresh
from recsys.store import store_from_settings

tmp = Path(sys.argv[1])
write_synthetic(tmp / "data", 200, 100, seed=3)
s = Settings(store_url=f"embedded://{tmp / 'store.sqlite'}", artifacts_dir=tmp / "artifacts",
             data_path=tmp / "data", admin_token="t")
s.als.factors = 8
s.als.iterations = 3
assert not s.mlflow.tracking_uri
store = store_from_settings(s)
run_refresh(s, store, tmp / "data")
runner = JobRunner(s, store, DEFAULT_JOBS)
first = runner.run("train-ranker")
second = runner.run("train-ranker")
assert first.status == "ok" and second.status == "ok", (first, second)
assert "mlflow_run_id" not in first.details
env = {"RECSYS_ARTIFACTS_DIR": str(s.artifacts_dir)}
out = CliRunner().invoke(cli_app, ["models", "promote", second.version], env=env)
assert out.exit_code == 0, out.output
with TestClient(create_app(s, store)) as c:
    r = c.post("/console/models/rollback", headers={"Authorization": "Bearer t"})
    assert r.status_code == 200 and "rolled back" in r.text, r.text
assert registry_for(s, store).current_model() == first.version
print(json.dumps(sorted(m for m in sys.modules if m == "mlflow" or m.startswith("mlflow."))))
"""


@pytest.mark.slow
def test_with_mlflow_off_nothing_imports_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_MLFLOW")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
