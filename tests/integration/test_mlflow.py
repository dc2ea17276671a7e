"""MLflow on: train-ranker runs land in a real MLflow server and promotions move the `champion` alias.

The server is a real `mlflow server` process on loopback (SQLite backend store, a local artifact
destination, a free port) started here. Needs the `[mlflow]` extra: skipped without it locally, required
in CI (`.ci/run` installs it). MLflow off: tests/unit/test_mlflow_off.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from jobs.definitions import DEFAULT_JOBS
from jobs.runner import JobRunner
from jobs.tracking import record_train
from recsys.artifacts import registry_for
from recsys.config import Settings
from recsys.data.synthetic import write_synthetic
from recsys.engines.local import run_refresh
from recsys.ranking.model import RankerModel
from recsys.ranking.train import train_ranker
from recsys.store import store_from_settings
from tests.redis_server import free_port

pytestmark = pytest.mark.slow

if os.environ.get("CI"):
    import mlflow  # noqa: F401  (CI installs the extra: a missing mlflow fails here, never skips)
else:
    pytest.importorskip("mlflow", reason="the [mlflow] extra is not installed")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    exe = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")
    assert exe is not None, "the mlflow command of the [mlflow] extra"
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen([exe, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                             "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
                             "--artifacts-destination", str(tmp / "mlartifacts")],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            assert proc.poll() is None, (tmp / "server.log").read_text()[-3000:]
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "no mlflow server: " + (tmp / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, 15)  # its own session: the server and its workers, nothing else
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(5)
        log.close()


def test_train_ranker_runs_and_promotions_appear_in_mlflow(tmp_path: Path, mlflow_server: str) -> None:
    from mlflow import MlflowClient
    from mlflow import lightgbm as mlflow_lightgbm

    data = tmp_path / "data"
    write_synthetic(data, 300, 150, seed=5)
    s = Settings(store_url=f"embedded://{tmp_path / 'store.sqlite'}", artifacts_dir=tmp_path / "artifacts",
                 data_path=data)
    s.als.factors = 8
    s.als.iterations = 5
    s.mlflow.tracking_uri = mlflow_server
    s.mlflow.experiment = "console-test"
    s.mlflow.model_name = "console-test-ranker"
    store = store_from_settings(s)
    registry = registry_for(s, store)
    client = MlflowClient(mlflow_server)
    try:
        run_refresh(s, store, data)
        # 1. the scheduled job: trains, promotes the first model, logs the run and the model
        job = JobRunner(s, store, DEFAULT_JOBS).run("train-ranker")
        assert job is not None and job.status == "ok", job
        first = job.version
        run = client.get_run(job.details["mlflow_run_id"])
        manifest = registry.model_manifest(first)
        assert run.data.tags["recsys_model_version"] == first
        assert run.data.metrics["valid_ndcg_at_10"] == pytest.approx(manifest.valid_ndcg)
        assert run.data.metrics["promoted"] == 1.0
        assert int(run.data.params["features"]) == len(manifest.features)
        assert {"importances.json", "decision.json"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
        champion = client.get_model_version_by_alias("console-test-ranker", "champion")
        assert champion.run_id == run.info.run_id and champion.tags["recsys_model_version"] == first

        # the registered model is the served one: same predictions as the registry's RankerModel
        booster = mlflow_lightgbm.load_model("models:/console-test-ranker@champion")
        served = RankerModel.load(registry, first)
        x = np.random.default_rng(0).normal(size=(50, len(served.feature_names))).astype(np.float32)
        np.testing.assert_allclose(booster.predict(x), served.predict(x), rtol=1e-6)

        # 2. a second model, forced through: a second registered version, the alias moves to it
        second = train_ranker(s, data, force_promote=True, registry=registry)
        run2 = record_train(s, registry, second)
        assert run2 is not None and run2 != run.info.run_id
        champion = client.get_model_version_by_alias("console-test-ranker", "champion")
        assert champion.tags["recsys_model_version"] == second.model_version
        assert int(champion.version) == 2

        # 3. `recsys models rollback`: the project's registry and MLflow's alias go back together
        env = {"RECSYS_ARTIFACTS_DIR": str(s.artifacts_dir), "RECSYS_MLFLOW__TRACKING_URI": mlflow_server,
               "RECSYS_MLFLOW__MODEL_NAME": "console-test-ranker"}
        out = CliRunner().invoke(app, ["models", "rollback"], env=env)
        assert out.exit_code == 0, out.output
        assert registry.current_model() == first
        champion = client.get_model_version_by_alias("console-test-ranker", "champion")
        assert champion.tags["recsys_model_version"] == first and int(champion.version) == 1
    finally:
        store.close()
