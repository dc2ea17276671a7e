"""The console in a real browser: Playwright driving Debian's Chromium against a real uvicorn process.

An operator logs in, sees why a user gets what they get (Try, checked against the API's own answer),
posts an event and sees the list change, rolls back a model and runs a refresh — each asserted on the
state of the service afterwards (/readyz, the recommendations, the store), not on the page alone.
Skips without a chromium binary locally; in CI (`.ci/run` installs chromium) it must run.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from recsys.artifacts import registry_for
from recsys.store import store_from_settings
from tests.e2e.console_server import ADMIN_TOKEN, LiveConsole, start_server, trained_settings

pytestmark = pytest.mark.slow

BROWSERS = ("chromium", "chromium-browser")


def chromium_path() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("Chromium is required in CI (.ci/run installs it with apt-get)")
    pytest.skip("no chromium binary (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveConsole]:
    chromium_path()  # skip before training when there is no browser
    tmp = tmp_path_factory.mktemp("console")
    server = start_server(trained_settings(tmp), tmp / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(live: LiveConsole) -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, live: LiveConsole) -> Iterator[Page]:
    """A logged-in page; every confirm() dialog is accepted (the operator clicks OK)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.on("dialog", lambda d: d.accept())
    pg.goto(live.url + "/console")
    pg.fill("#token", ADMIN_TOKEN)
    pg.click("#login button[type=submit]")
    pg.wait_for_selector("[data-testid=readiness]")
    yield pg
    context.close()


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:.0f} s waiting for {what}"
        time.sleep(0.3)


def readyz(live: LiveConsole) -> dict[str, object]:
    return live.get("/readyz").json()


def test_a_wrong_token_is_refused_and_nothing_is_shown(browser: Browser, live: LiveConsole) -> None:
    context = browser.new_context()
    pg = context.new_page()
    pg.goto(live.url + "/console")
    pg.fill("#token", "not-the-token")
    pg.click("#login button[type=submit]")
    pg.wait_for_selector("#login-error:not([hidden])")
    assert pg.inner_text("#login-error") == "Wrong token."
    assert pg.is_hidden("#nav")
    assert pg.locator("[data-testid=readiness]").count() == 0
    assert pg.evaluate("sessionStorage.getItem('recsys-admin-token')") is None
    context.close()
    # and the fragments themselves refuse a request without the token
    assert live.get("/console/view/overview").status_code == 401


def test_overview_shows_what_the_api_says(page: Page, live: LiveConsole) -> None:
    for _ in range(3):
        assert live.get("/v1/users/u1/recommendations?k=5").status_code == 200
    page.reload()
    page.wait_for_selector("[data-testid=readiness]")
    ready = readyz(live)
    assert page.inner_text("[data-testid=readiness]") == ready["status"]
    assert page.inner_text("[data-testid=candidates-version]") == ready["candidates_version"]
    assert page.inner_text("[data-testid=model-version]") == ready["model_version"]
    assert float(page.inner_text("[data-testid=request-rate]")) > 0


def _column(page: Page, table: str, col: int) -> list[str]:
    return [c.strip() for c in page.locator(f"table.{table} tbody tr td:nth-child({col})").all_inner_texts()]


def test_try_shows_why_a_user_gets_what_they_get_and_an_event_changes_it(page: Page, live: LiveConsole) -> None:
    user = "u7"
    page.click("nav a[data-page=try]")
    page.fill("[data-testid=try-user]", user)
    page.click(".try-form button[type=submit]")
    page.wait_for_selector("table.reranked")
    api = live.get(f"/v1/users/{user}/recommendations?k=10").json()
    assert _column(page, "reranked", 2) == [i["item_id"] for i in api["items"]]
    assert page.inner_text("[data-testid=try-model]") == api["model_version"]
    assert api["fallback"] is None
    assert page.inner_text("[data-testid=try-fallback]").startswith("none")
    # beside it, the cached candidates in ALS order, as GET /candidates returns them
    cands = live.get(f"/v1/users/{user}/candidates?k=10").json()
    assert _column(page, "als", 2) == [i["item_id"] for i in cands["items"]]
    # the features the ranker saw: one row per listed item, one column per model feature
    assert page.locator("table.features tbody tr").count() == 10
    manifest = live.admin_get("/console/view/models")  # the token works outside the browser too
    assert manifest.status_code == 200

    # post a click on the top item from the page: a session item is never recommended again
    top = api["items"][0]["item_id"]
    page.fill("[data-testid=event-item]", top)
    page.select_option("[data-testid=event-kind]", "click")
    page.click(".event-form button[type=submit]")
    page.wait_for_selector(f"[data-testid=try-session]:has-text('{top}')")
    after = live.get(f"/v1/users/{user}/recommendations?k=10").json()
    assert top not in [i["item_id"] for i in after["items"]]
    assert _column(page, "reranked", 2) == [i["item_id"] for i in after["items"]]

    # an unknown user: the page names the fallback the API reports
    page.fill("[data-testid=try-user]", "nobody-here")
    page.click(".try-form button[type=submit]")
    page.wait_for_selector("[data-testid=try-fallback]:has-text('unknown_user')")
    assert live.get("/v1/users/nobody-here/recommendations").json()["fallback"] == "unknown_user"


def test_rolling_back_a_model_from_the_console_changes_the_serving_model(page: Page, live: LiveConsole) -> None:
    registry = registry_for(live.settings)
    versions = registry.model_versions()
    serving = readyz(live)["model_version"]
    assert serving == registry.current_model() == versions[-1]
    page.click("nav a[data-page=models]")
    page.wait_for_selector("[data-testid=rollback]")
    page.click("[data-testid=rollback]")
    page.wait_for_selector(".flash:has-text('rolled back')")
    assert registry.current_model() == versions[-2]
    assert readyz(live)["model_version"] == versions[-2]
    assert live.get("/v1/users/u3/recommendations").json()["model_version"] == versions[-2]
    assert registry.promotions()[-1]["reason"] == f"rollback from {serving}"
    # and promote it back from the same page
    page.click(f"[data-testid=promote-{serving}]")
    page.wait_for_selector(".flash:has-text('promoted')")
    assert readyz(live)["model_version"] == serving == registry.current_model()


def test_running_a_refresh_from_the_console_publishes_a_new_version(page: Page, live: LiveConsole) -> None:
    store = store_from_settings(live.settings)
    try:
        before = store.candidates.current_version()
        runs_before = {r["run_id"] for r in store.jobs.runs(limit=None)}
        page.click("nav a[data-page=jobs]")
        page.click("[data-testid=run-refresh]")
        page.wait_for_selector(".flash:has-text('refresh started')")

        def finished() -> bool:
            return any(r["job"] == "refresh" and r["status"] != "running" and r["run_id"] not in runs_before
                       for r in store.jobs.runs(limit=None))

        wait_until(finished, 240, "the console's refresh to finish")
        run = next(r for r in store.jobs.runs(limit=None) if r["run_id"] not in runs_before)
        assert (run["status"], run["trigger"], run["error"]) == ("ok", "console", None)
        assert run["version"] != before
        assert store.candidates.current_version() == run["version"]
        wait_until(lambda: readyz(live)["candidates_version"] == run["version"], 30, "the API to serve it")
        page.click("button.refresh-view")
        page.wait_for_selector(f"table.jobs td:has-text('{run['version']}')")
    finally:
        store.close()


def test_features_and_drift_pages_show_the_registry_and_the_history(page: Page, live: LiveConsole) -> None:
    from jobs.definitions import DEFAULT_JOBS
    from jobs.runner import JobRunner

    page.click("nav a[data-page=features]")
    page.wait_for_selector("[data-testid=features-model]")
    assert page.inner_text("[data-testid=features-model]") == readyz(live)["model_version"]
    served = registry_for(live.settings).model_manifest(str(readyz(live)["model_version"])).features
    rows = page.locator("table.features-report tbody tr").all_inner_texts()
    assert {r.split("\t")[0].strip() for r in rows} >= set(served)

    store = store_from_settings(live.settings)
    try:  # a real drift check (no served rows yet: its verdict says so), then the page
        run = JobRunner(live.settings, store, DEFAULT_JOBS).run("drift", options={"retrain": False})
        assert run is not None and run.status == "ok", run
    finally:
        store.close()
    page.click("nav a[data-page=drift]")
    page.wait_for_selector("[data-testid=drift-status]")
    assert page.inner_text("[data-testid=drift-status]") == run.details["drift_status"]
    assert page.locator("table.drift tbody tr").count() == 1
