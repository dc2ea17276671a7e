"""Screenshots of every console page from a real `recsys demo` run, for the README (docs/images/console-*.png).

    python scripts/console_screenshots.py [--users 5000 --items 1000] [--out docs/images]

What it does, all with the real commands in a scratch directory (nothing in the repo but the PNGs):
`recsys demo --no-serve` (synthetic data → refresh → train-ranker), a second `recsys train-ranker --force`
(so the models page has a model to roll back to), `recsys serve` with an admin token, a few hundred real
requests and events, a drift check, then headless Chromium (Playwright, Debian's binary: `executable_path`, no browser
download) logs in and runs an ingest and a refresh from the Jobs page before taking each picture.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
TOKEN = "screenshot-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def recsys(args: list[str], env: dict[str, str], cwd: Path) -> None:
    print("$ recsys " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=cwd, check=True, stdin=subprocess.DEVNULL)


def wait_for(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"recsys serve exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("recsys serve did not answer")


def traffic(url: str, users: int, items: int, n: int, seed: int = 7) -> None:
    """Real requests, so the overview's rate, latency and fallback figures are measured, not made up."""
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=30) as c:
        for i in range(n):
            user = f"u{rng.randrange(users)}" if i % 10 else f"new-user-{i}"  # some unknown users: fallbacks
            c.get(f"/v1/users/{user}/recommendations", params={"k": 10}).raise_for_status()
            if i % 5 == 0:
                c.post("/v1/events", json={"user_id": user, "item_id": f"i{rng.randrange(items)}",
                                           "event": "click"}).raise_for_status()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    ap.add_argument("--work", type=Path, default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--reuse", action="store_true", help="--work already holds a finished demo: skip it")
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = ap.parse_args()
    if not args.chromium:
        raise SystemExit("no chromium binary: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    work = args.work or Path(tempfile.mkdtemp(prefix="console-shots-"))
    work.mkdir(parents=True, exist_ok=True)
    artifacts = work / "artifacts"
    data = work / "generated" / "demo"  # where `recsys demo` writes its synthetic data
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    env.update(RECSYS_STORE_URL=f"embedded://{artifacts / 'store.sqlite'}", RECSYS_ARTIFACTS_DIR=str(artifacts),
               PYTHONPATH=str(REPO))
    if not args.reuse:
        recsys(["demo", "--no-serve", "--users", str(args.users), "--items", str(args.items)], env, work)
        recsys(["train-ranker", "--data", str(data), "--force"], env, work)
    env.update(RECSYS_ADMIN_TOKEN=TOKEN, RECSYS_DATA_PATH=str(data), RECSYS_PORT=str(port),
               RECSYS_HOST="127.0.0.1")
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "cli", "serve"], env=env, cwd=work, stdin=subprocess.DEVNULL)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        wait_for(url, server)
        traffic(url, args.users, args.items, args.requests)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.on("dialog", lambda d: d.accept())
            page.goto(url + "/console")
            page.fill("#token", TOKEN)
            page.click("#login button[type=submit]")
            page.wait_for_selector("[data-testid=readiness]")
            # jobs from the console itself: the history and the overview then show real runs
            page.click("nav a[data-page=jobs]")
            for job in ("ingest", "refresh"):
                page.click(f"[data-testid=run-{job}]")
                page.wait_for_selector(f".flash:has-text('{job} started')")
                deadline = time.monotonic() + 900
                while True:
                    runs = httpx.get(url + "/v1/admin/jobs", params={"job": job},
                                     headers={"Authorization": f"Bearer {TOKEN}"}).json()["runs"]
                    if runs and runs[0]["status"] != "running":
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{job} did not finish")
                    time.sleep(1)
            time.sleep(1.5)  # the API's reload poller picks up the new version
            traffic(url, args.users, args.items, args.requests // 2, seed=8)
            time.sleep(2)  # the feature-log writer flushes the sampled rows the drift check reads
            subprocess.run([sys.executable, "-m", "cli", "drift", "--no-retrain"], env=env, cwd=work, check=False,
                           stdin=subprocess.DEVNULL)
            shots = [("overview", "#overview", "[data-testid=readiness]"),
                     ("models", "#models", "table.models"),
                     ("jobs", "#jobs", "table.jobs"),
                     ("features", "#features", "table.features-report"),
                     ("drift", "#drift", "table.drift"),
                     ("try", "#try?user=u1", "table.features")]
            for name, hash_, ready in shots:
                page.goto(url + "/console" + hash_)
                page.wait_for_selector(ready)
                path = args.out / f"console-{name}.png"
                page.screenshot(path=str(path), full_page=True)
                print(f"wrote {path}")
            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
            phone.goto(url + "/console")
            phone.fill("#token", TOKEN)
            phone.click("#login button[type=submit]")
            phone.wait_for_selector("[data-testid=readiness]")
            phone.screenshot(path=str(args.out / "console-phone.png"), full_page=False)
            print(f"wrote {args.out / 'console-phone.png'}")
            login = browser.new_page(viewport={"width": 800, "height": 420})
            login.goto(url + "/console")
            login.fill("#token", "wrong")
            login.click("#login button[type=submit]")
            login.wait_for_selector("#login-error:not([hidden])")
            login.screenshot(path=str(args.out / "console-login.png"))
            print(f"wrote {args.out / 'console-login.png'}")
            browser.close()
    finally:
        server.terminate()
        server.wait(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
