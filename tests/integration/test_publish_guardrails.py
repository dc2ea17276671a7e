"""Publish guardrails: degenerate or shrunken data never replaces the serving version (real Redis, real CLI).

Before: `recsys refresh` on a 2-row, a 1-user or a 1-item file exited 0 and published it over the
943-user ml-100k version; every real user then fell back to `unknown_user`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from cli.main import app
from recsys.artifacts import registry_for
from recsys.config import Settings
from recsys.store import Store, open_store
from tests.conftest import ML100K, REDIS_URL, redis_available

pytestmark = [pytest.mark.redis, pytest.mark.ml100k]


@dataclass
class Served:
    store: Store
    env: dict[str, str]
    artifacts: Path
    version: str


def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """ml-100k refreshed into its own Redis namespace: the version the degenerate files must not replace."""
    ml100k = ML100K
    if not (ml100k / "u.data").exists():
        pytest.skip(f"MovieLens 100k not found at {ml100k}")
    if not redis_available():
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI but does not answer at {REDIS_URL}")
        pytest.skip(f"no Redis at {REDIS_URL}")
    ns = f"test-guard-{uuid.uuid4().hex[:8]}"
    artifacts = tmp_path_factory.mktemp("guard") / "artifacts"
    env = {"RECSYS_STORE_URL": REDIS_URL, "RECSYS_STORE_NAMESPACE": ns, "RECSYS_ARTIFACTS_DIR": str(artifacts)}
    code, out = _cli(env, "refresh", "--data", str(ml100k))
    assert code == 0, out
    store = open_store(REDIS_URL, namespace=ns)
    version = store.candidates.current_version()
    assert version is not None and store.candidates.meta(version)["interactions"] == 100_000  # type: ignore[index]
    yield Served(store, env, artifacts, version)
    store.wipe()
    store.close()


def _write(tmp_path: Path, name: str, rows: list[tuple[str, str, int]]) -> Path:
    path = tmp_path / f"{name}.csv"
    pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp"], orient="row").write_csv(path)
    return path


DEGENERATE = {
    "two_rows": [("1", "1", 881_250_949), ("2", "2", 881_250_950)],
    "one_user": [("1", str(i), 881_250_949 + i) for i in range(1, 301)],
    "one_item": [(str(u), "50", 881_250_949 + u) for u in range(1, 301)],
}


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_file_is_refused_and_the_version_keeps_serving(served: Served, tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, name, DEGENERATE[name])
    code, out = _cli(served.env, "refresh", "--data", str(path))
    assert code == 2, out
    flat = " ".join(out.split())
    assert "refusing to publish" in flat and "Nothing was published" in flat and "--force" in flat
    assert "943" in flat  # what changed is named, with the serving version's numbers
    assert served.store.candidates.current_version() == served.version
    assert [v["version"] for v in served.store.candidates.versions()] == [served.version]
    settings = Settings(store_url=REDIS_URL, store_namespace=served.env["RECSYS_STORE_NAMESPACE"],
                        artifacts_dir=served.artifacts)
    assert registry_for(settings, served.store).bundle_versions() == [served.version]  # no new bundle either
    # The real users are still served from the ml-100k version.
    assert served.store.read_user(served.version, "196").candidates is not None


def test_shrink_beyond_the_share_is_refused_and_force_publishes_and_is_recorded(
        served: Served, ml100k: Path, tmp_path: Path) -> None:
    ratings = pl.read_csv(ml100k / "u.data", separator="\t", has_header=False,
                          new_columns=["user_id", "item_id", "weight", "timestamp"])
    few = ratings.filter(pl.col("user_id") <= 300)  # 300 of 943 users: -68%
    path = tmp_path / "few.csv"
    few.write_csv(path)
    code, out = _cli(served.env, "refresh", "--data", str(path))
    flat = " ".join(out.split())
    assert code == 2 and "users shrink from 943 to 300" in flat and "MAX_SHRINK=0.5" in flat, out
    assert served.store.candidates.current_version() == served.version
    # The limit is a setting: a larger share lets it through (then the original is restored with it too).
    code, out = _cli({**served.env, "RECSYS_GUARDRAILS__MAX_SHRINK": "0.8"}, "refresh", "--data", str(path))
    assert code == 0, out
    smaller = served.store.candidates.current_version()
    assert smaller != served.version
    code, out = _cli(served.env, "refresh", "--data", str(ml100k))  # growing back is never refused
    assert code == 0, out
    # --force publishes a refused data set and the override is recorded with the version.
    code, out = _cli(served.env, "refresh", "--data", str(_write(tmp_path, "two", DEGENERATE["two_rows"])),
                     "--force")
    assert code == 0, out
    forced = served.store.candidates.current_version()
    assert forced is not None
    meta = served.store.candidates.meta(forced)
    assert meta is not None and any("943" in p for p in meta["guardrails_forced"])
    assert "published with --force" in " ".join(out.split())
    code, out = _cli(served.env, "refresh", "--data", str(ml100k))
    assert code == 0, out
    served.version = str(served.store.candidates.current_version())


def test_a_different_item_catalogue_is_refused(served: Served, tmp_path: Path) -> None:
    rows = [(str(u), f"sku-{(u * 7 + j) % 2000}", 881_250_949 + j) for u in range(1, 944) for j in range(100)]
    code, out = _cli(served.env, "refresh", "--data", str(_write(tmp_path, "other", rows)))
    flat = " ".join(out.split())
    assert code == 2 and "only 0 of the serving version's 1682 items" in flat, out
    assert served.store.candidates.current_version() == served.version


def test_first_publish_has_only_the_minimum_sizes(tmp_path: Path) -> None:
    store_url = f"embedded://{tmp_path / 'store.sqlite'}"
    env = {"RECSYS_STORE_URL": store_url, "RECSYS_ARTIFACTS_DIR": str(tmp_path / "art")}
    code, out = _cli(env, "refresh", "--data", str(_write(tmp_path, "two", DEGENERATE["two_rows"])))
    flat = " ".join(out.split())
    assert code == 2 and "below the minimum RECSYS_GUARDRAILS__MIN_USERS=10" in flat, out
    assert "first publish" in flat
    assert open_store(store_url).candidates.current_version() is None
    small = [(f"u{u}", f"i{(u + j) % 30}", 1_600_000_000 + j) for u in range(12) for j in range(12)]
    code, out = _cli(env, "refresh", "--data", str(_write(tmp_path, "small", small)))
    assert code == 0, out
