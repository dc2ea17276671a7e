"""The catalogue in the store, on every backend: versions, writes under the lock, tombstones, checked decoding,
and files in and out with the same rules as the API."""

from __future__ import annotations

import threading
from pathlib import Path

import polars as pl
import pytest

from recsys.catalogue import delete_items, frame_from_records, patch_item, put_items, read_item_file
from recsys.errors import CorruptValueError, DataValidationError
from recsys.store import ItemRecord, Store
from recsys.store.codec import decode_catalogue, encode_catalogue


def test_writes_bump_the_version_and_keep_each_other(any_store: Store) -> None:
    cat = any_store.catalogue
    assert cat.version() == 0 and cat.snapshot().items == {}
    snap = put_items(any_store, [("a", {"categories": ["x"], "attributes": {"n": 1}}), ("b", {})])
    assert snap.version == 1 == cat.version()
    created = snap.items["a"].created_at
    snap, rec = patch_item(any_store, "a", {"title": "A", "attributes": {"n": None, "s": "v"}})
    assert rec is not None and rec.attributes == {"s": "v"} and rec.categories == ("x",) and rec.created_at == created
    snap, n = delete_items(any_store, ["b", "never-seen"])
    assert n == 2 and snap.items["b"].deleted and snap.items["never-seen"].deleted and cat.version() == 3
    assert delete_items(any_store, ["b"])[1] == 0 and cat.version() == 3  # nothing changed, no new version
    assert patch_item(any_store, "b", {"title": "x"})[1] is None  # deleted: PATCH does not revive

    # Concurrent writers never lose each other's items (read-change-write under the store lock).
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for j in range(5):
                put_items(any_store, [(f"w{w}-{j}", {})])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    snap = cat.snapshot()
    assert {f"w{w}-{j}" for w in range(4) for j in range(5)} <= set(snap.items) and snap.version == 3 + 20


def test_decoding_checks_every_value() -> None:
    blob = encode_catalogue(4, [ItemRecord("a", attributes={"p": 2.5, "ok": True, "c": "red"}, categories=("x",))])
    version, items = decode_catalogue(blob)
    assert version == 4 and items[0].attributes == {"p": 2.5, "ok": True, "c": "red"}
    for bad in (b"not json", b'{"format": 9, "version": 1, "items": []}',
                b'{"format": 1, "version": 1, "items": [{"id": "a", "av": "maybe"}]}',
                b'{"format": 1, "version": 1, "items": [{"id": "a", "av": "hidden", "attrs": {"x": [1]}}]}',
                b'{"format": 1, "version": -1, "items": []}'):
        with pytest.raises(CorruptValueError):
            decode_catalogue(bad)


def test_import_and_export_round_trip(tmp_path: Path, embedded_store: Store) -> None:
    src = tmp_path / "items.csv"
    src.write_text("item_id,title,categories,availability,attr.price,attr.new\n"
                   "i1,One,a|b,available,3.5,true\ni2,Two,,hidden,,false\n")
    records = read_item_file(src)
    assert records[0].categories == ("a", "b") and records[0].attributes == {"price": 3.5, "new": True}
    assert records[1].availability == "hidden" and records[1].attributes == {"new": False}
    put_items(embedded_store, records, max_items=None)
    out = tmp_path / "out.parquet"
    frame_from_records(embedded_store.catalogue.snapshot().items.values()).write_parquet(out)
    again = read_item_file(out)
    assert [(r.item_id, r.categories, r.attributes, r.availability) for r in again] == \
        [(r.item_id, r.categories, r.attributes, r.availability) for r in records]
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,availability\ni1,sold\n")
    with pytest.raises(DataValidationError, match=r"availability.*row 1"):
        read_item_file(bad)
    pl.DataFrame({"item_id": ["i1"], "colour": ["red"]}).write_csv(tmp_path / "extra.csv")
    with pytest.raises(DataValidationError, match="attr.NAME"):
        read_item_file(tmp_path / "extra.csv")


def test_movielens_titles_and_genres(ml100k: Path) -> None:
    records = {r.item_id: r for r in read_item_file(ml100k)}
    assert len(records) == 1682
    assert records["1"].title.startswith("Toy Story") and "Animation" in records["1"].categories


def test_items_import_and_export_commands(tmp_path: Path, ml100k: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app
    from recsys.store import open_store

    url = f"embedded://{tmp_path / 'store.sqlite'}"
    runner = CliRunner()
    result = runner.invoke(app, ["items", "import", str(ml100k), "--store", url])
    assert result.exit_code == 0, result.output
    assert '"imported": 1682' in result.output
    out = tmp_path / "items.csv"
    result = runner.invoke(app, ["items", "export", "--out", str(out), "--store", url])
    assert result.exit_code == 0, result.output
    frame = pl.read_csv(out)
    assert frame.height == 1682 and frame.filter(pl.col("item_id") == 1)["categories"][0] == \
        "Animation|Children's|Comedy"
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,availability\n1,sold\n")
    result = runner.invoke(app, ["items", "import", str(bad), "--store", url])
    assert result.exit_code == 2 and "availability" in result.output and "row 1" in result.output
    store = open_store(url)
    assert store.catalogue.version() == 1 and len(store.catalogue.snapshot().items) == 1682  # nothing written
    store.close()
