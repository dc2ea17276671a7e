"""Experiments through the real app: admin API and CLI, assignment on every response, interleaving, the
impressions in the log and the lake, clicks credited through rec_id, the report. Real Redis (the test db)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as cli
from recsys.config import Settings
from recsys.data.loaders import Dataset
from recsys.engines.local import run_refresh
from recsys.events.ingest import run_ingest
from recsys.experiments.assignment import ExperimentSet
from recsys.experiments.manage import list_experiments
from recsys.ranking.train import TrainResult
from recsys.store import IMPRESSIONS, Store

ADMIN = {"Authorization": "Bearer s3cret-token"}
AB = {"name": "ranker-vs-als", "variants": [{"name": "control", "share": 0.5, "ranker": "als"},
                                            {"name": "treatment", "share": 0.5, "ranker": "model"}]}


@pytest.fixture
def setup(redis_store: Store, trained_artifacts: tuple[Settings, Dataset, TrainResult],
          tmp_path: Path) -> tuple[Settings, Dataset, Store]:
    settings, ds, _ = trained_artifacts
    settings = settings.model_copy(update={"lake_dir": tmp_path / "lake"})
    run_refresh(settings, redis_store, ds)
    return settings, ds, redis_store


@pytest.fixture
def client(setup: tuple[Settings, Dataset, Store]) -> Iterator[TestClient]:
    settings, _, store = setup
    with TestClient(create_app(settings, store, background_reload=False)) as c:
        yield c


def _users(ds: Dataset, n: int) -> list[str]:
    return [str(u) for u in ds.interactions["user_id"].unique(maintain_order=True).to_list()[:n]]


def test_admin_api_validates_and_refuses_without_the_token(client: TestClient) -> None:
    assert client.post("/v1/admin/experiments", json=AB).status_code == 401
    bad = client.post("/v1/admin/experiments", json={**AB, "variants": AB["variants"][:1]}, headers=ADMIN)
    assert bad.status_code == 422 and "variants" in bad.json()["detail"]
    shares = client.post("/v1/admin/experiments", headers=ADMIN, json={
        "name": "x", "variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.6}]})
    assert shares.status_code == 422 and "add up to 1" in shares.json()["detail"]
    assert client.post("/v1/admin/experiments", json=AB, headers=ADMIN).status_code == 201
    again = client.post("/v1/admin/experiments", json=AB, headers=ADMIN)
    assert again.status_code == 409 and "exists already" in again.json()["detail"]
    full = client.post("/v1/admin/experiments", json={**AB, "name": "other"}, headers=ADMIN)
    assert full.status_code == 409 and "no free traffic" in full.json()["detail"]
    assert client.get("/v1/admin/experiments/nope/report", headers=ADMIN).status_code == 404
    listed = client.get("/v1/admin/experiments", headers=ADMIN).json()["experiments"]
    assert [e["name"] for e in listed] == ["ranker-vs-als"]


def test_ab_variants_serve_what_they_name_and_stick_across_restarts(
        setup: tuple[Settings, Dataset, Store], client: TestClient) -> None:
    settings, ds, store = setup
    users = _users(ds, 60)
    before = {u: client.get(f"/v1/users/{u}/recommendations?k=10").json() for u in users}
    assert all(b["experiment"] is None and b["variant"] is None for b in before.values())
    assert client.post("/v1/admin/experiments", json=AB, headers=ADMIN).status_code == 201
    expected = ExperimentSet(list_experiments(store))
    served: dict[str, str] = {}
    for u in users:
        body = client.get(f"/v1/users/{u}/recommendations?k=10").json()
        want = expected.assign(u)
        assert want is not None and body["experiment"] == "ranker-vs-als" and body["variant"] == want.variant
        served[u] = body["variant"]
        items = [i["item_id"] for i in body["items"]]
        if body["variant"] == "control":  # ranking off: the cached candidates in ALS order, no model
            cands = client.get(f"/v1/users/{u}/candidates?k=10").json()
            assert items == [i["item_id"] for i in cands["items"]] and body["model_version"] is None
        else:  # the full reranked path, as before the experiment
            assert items == [i["item_id"] for i in before[u]["items"]] and body["model_version"] is not None
    assert set(served.values()) == {"control", "treatment"}
    # Another process of the API (a restart, or another replica) assigns every user the same way.
    with TestClient(create_app(settings, store, background_reload=False)) as other:
        for u in users:
            assert other.get(f"/v1/users/{u}/recommendations").json()["variant"] == served[u]
    # Stopping it sends everyone back to the default path at once on this replica.
    assert client.post("/v1/admin/experiments/ranker-vs-als/stop", headers=ADMIN).json()["status"] == "stopped"
    assert client.get(f"/v1/users/{users[0]}/recommendations").json()["variant"] is None


def test_interleaving_records_teams_and_credits_clicks_through_rec_id(
        setup: tuple[Settings, Dataset, Store], client: TestClient) -> None:
    settings, ds, store = setup
    body = {"name": "tdi", "kind": "interleaving", "variants": [{"name": "als", "share": 0.5, "ranker": "als"},
                                                                 {"name": "ranker", "share": 0.5, "ranker": "model"}]}
    assert client.post("/v1/admin/experiments", json=body, headers=ADMIN).status_code == 201
    clicked_team: dict[str, str] = {}
    for n, u in enumerate(_users(ds, 40)):
        rec = client.get(f"/v1/users/{u}/recommendations?k=10").json()
        assert rec["experiment"] == "tdi" and rec["variant"] == "interleaved" and len(rec["items"]) == 10
        pos = n % 10  # click one shown item, at a different position each time
        events = [{"user_id": u, "item_id": rec["items"][pos]["item_id"], "event": "click", "rec_id": rec["rec_id"]},
                  # an event citing the list but on an item it did not show is not credited
                  {"user_id": u, "item_id": "not-shown", "event": "click", "rec_id": rec["rec_id"]}]
        assert client.post("/v1/events", json=events).status_code == 202
        clicked_team[rec["rec_id"]] = pos  # type: ignore[assignment]
    assert client.app.state.loop.flush()  # type: ignore[attr-defined]
    logged = [orjson.loads(raw) for _, raw in store.event_log.read(IMPRESSIONS, None, 1000)]
    assert len(logged) == 40
    wins = {"als": 0, "ranker": 0}
    for imp in logged:
        assert imp["experiment"] == "tdi" and len(imp["teams"]) == len(imp["items"]) == 10
        assert set(imp["teams"]) <= {"als", "ranker"}
        assert abs(imp["teams"].count("als") - imp["teams"].count("ranker")) <= 1  # team draft balance
        wins[imp["teams"][clicked_team[imp["rec_id"]]]] += 1
    run_ingest(settings, store)
    report = client.get("/v1/admin/experiments/tdi/report", headers=ADMIN).json()
    result = report["interleaving"]
    assert report["impressions"] == 40 and result["impressions_with_clicks"] == 40
    assert result["wins"] == wins and result["ties"] == 0
    assert sum(result["users_preferring"].values()) == 40


def test_cli_creates_lists_and_reports_from_the_lake(setup: tuple[Settings, Dataset, Store], client: TestClient,
                                                     tmp_path: Path) -> None:
    settings, ds, store = setup
    env = {"RECSYS_STORE_URL": store.url, "RECSYS_STORE_NAMESPACE": store.namespace,
           "RECSYS_ARTIFACTS_DIR": str(settings.artifacts_dir), "RECSYS_LAKE_DIR": str(settings.lake_dir)}
    runner = CliRunner()
    made = runner.invoke(cli, ["experiments", "create", "cli-ab", "--variant", "control:als:0.5",
                               "--variant", "treatment:model:0.5"], env=env)
    assert made.exit_code == 0, made.output
    bad = runner.invoke(cli, ["experiments", "create", "cli-bad", "--variant", "control:0.5"], env=env)
    assert bad.exit_code == 2 and "NAME:RANKER:SHARE" in bad.output
    client.app.state.service.reload_experiments()  # type: ignore[attr-defined]
    users = _users(ds, 80)
    clicks = {"control": 0, "treatment": 0}
    for n, u in enumerate(users):
        rec = client.get(f"/v1/users/{u}/recommendations?k=5").json()
        # every 2nd treatment user clicks, every 6th control user: the report must see the difference
        if n % (2 if rec["variant"] == "treatment" else 6) == 0:
            clicks[rec["variant"]] += 1
            client.post("/v1/events", json={"user_id": u, "item_id": rec["items"][0]["item_id"],
                                            "rec_id": rec["rec_id"]})
    assert client.app.state.loop.flush()  # type: ignore[attr-defined]
    run_ingest(settings, store)
    out = runner.invoke(cli, ["experiments", "report", "cli-ab", "--json", str(tmp_path / "r.json")], env=env)
    assert out.exit_code == 0, out.output
    report = orjson.loads((tmp_path / "r.json").read_bytes())
    by = {v["name"]: v for v in report["variants"]}
    assert {k: by[k]["clicks"] for k in clicks} == clicks
    assert by["control"]["users"] + by["treatment"]["users"] == 80
    assert report["comparisons"][0]["decided"] and report["srm"]["fired"] is False
    assert "treatment is better" in out.output
    listed = runner.invoke(cli, ["experiments", "list"], env=env)
    assert "cli-ab" in listed.output and "running" in listed.output
