"""Embedded store lists: a file written before the list tables existed still reads, and migrates on append."""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

from recsys.store import open_backend


def _legacy_file(path: Path, lists: dict[str, list[bytes]]) -> None:
    """The old layout: only the kv table, each list one length-prefixed blob, user_version 0."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL) WITHOUT ROWID")
    for key, items in lists.items():
        blob = b"".join(struct.pack("<I", len(v)) + v for v in items)
        db.execute("INSERT INTO kv VALUES (?, ?, NULL)", (key, blob))
    db.execute("INSERT INTO kv VALUES ('plain', x'01', NULL)")
    db.commit()
    db.close()


def test_legacy_lists_read_then_migrate_on_append(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _legacy_file(path, {"ns:jobs": [b"r1", b"r2", b"r3"], "ns:s:u1": [b"e1"]})
    backend = open_backend(f"embedded://{path}")
    assert backend.list_range("ns:jobs") == [b"r1", b"r2", b"r3"]
    assert backend.fetch(["plain"], ["ns:s:u1"]) == ([b"\x01"], [[b"e1"]])
    backend.list_append("ns:jobs", [b"r4", b"r5"], 4, None)
    assert backend.list_range("ns:jobs") == [b"r2", b"r3", b"r4", b"r5"]
    backend.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM kv WHERE key = 'ns:jobs'").fetchone()[0] == 0  # moved, not copied
    assert db.execute("SELECT count(*) FROM list_items WHERE key = 'ns:jobs'").fetchone()[0] == 4
    db.close()
    reopened = open_backend(f"embedded://{path}")
    assert reopened.list_range("ns:jobs") == [b"r2", b"r3", b"r4", b"r5"]
    assert reopened.list_range("ns:s:u1") == [b"e1"]
    reopened.close()


def test_append_touches_only_new_and_trimmed_rows(tmp_path: Path) -> None:
    """The cost claim behind the list tables: at the cap, one append inserts n rows and deletes n."""
    backend = open_backend(f"embedded://{tmp_path / 's.sqlite'}")
    backend.list_append("log", [b"x%d" % i for i in range(3000)], 3000, None)
    db = backend._db  # type: ignore[attr-defined]
    before = db.total_changes
    backend.list_append("log", [b"new1", b"new2"], 3000, None)
    # 2 inserts + 2 deletes + 1 update of the list's bounds, however long the list.
    assert db.total_changes - before == 5
    assert backend.list_range("log")[-2:] == [b"new1", b"new2"]
    assert len(backend.list_range("log")) == 3000
    backend.close()
