"""Embedded backend: one SQLite file, no server. Same semantics as Redis, TTLs checked on read.

Plain values live in `kv`. A list (sessions, job history, feature log) is one `list_keys` row (its TTL and
the sequence numbers of its first and next item) plus one `list_items` row per item, keyed by
(key, seq). Items are only appended at the tail and trimmed from the head, so the live sequence
numbers are always contiguous: the length is `next_seq - first_seq`, and append + trim touch only the
rows appended and the rows trimmed (a 100k-row feature log costs the same per append as an empty one).
"""

from __future__ import annotations

import functools
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

from recsys.errors import StoreUnavailableError
from recsys.store.backend import BreakerStats

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires_at REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS list_keys (
    key TEXT PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    next_seq INTEGER NOT NULL,
    expires_at REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS list_items (
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (key, seq)
) WITHOUT ROWID;
"""
# PRAGMA user_version of the file: 0 = created before list tables existed (lists may still be packed
# blobs in `kv`, migrated on first touch), 2 = every list is in the list tables.
_LAYOUT_LISTS = 2
_LEN = struct.Struct("<I")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guarded(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Map every SQLite error of a backend call to the store's error (a full disk, a locked or corrupt
    file, a closed connection): callers handle `StoreUnavailableError`, never `sqlite3.Error`."""
    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"embedded store error in {method.__name__}: {exc}") from exc
    return wrapper


def _unpack_list(blob: bytes) -> list[bytes]:
    """The pre-`list_items` format: one kv value of length-prefixed items (read for migration only)."""
    out, off = [], 0
    while off < len(blob):
        (n,) = _LEN.unpack_from(blob, off)
        off += _LEN.size
        out.append(blob[off:off + n])
        off += n
    return out


class EmbeddedBackend:
    """`embedded://PATH` (a file, created on demand) or `embedded://:memory:` (tests, evaluation)."""

    clustered = False

    def __init__(self, url: str, *, path: str) -> None:
        self.url = url
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            if path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            fresh = self._db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'kv'").fetchone()[0] == 0
            self._db.executescript(_SCHEMA)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if fresh and version == 0:
                self._db.execute(f"PRAGMA user_version = {_LAYOUT_LISTS}")
                version = _LAYOUT_LISTS
            # An older file may hold lists as packed kv blobs: look for one whenever a list is missing.
            self._legacy_lists = version < _LAYOUT_LISTS
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot open embedded store {path}: {exc}") from exc
        # One connection shared by threads: sqlite serialises anyway, the lock keeps transactions whole.
        self._lock = threading.RLock()

    @staticmethod
    def _expiry(ttl_ms: int | None) -> float | None:
        return None if not ttl_ms else time.time() + ttl_ms / 1000.0

    def _get(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value, expires_at FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None or (row[1] is not None and row[1] <= time.time()):
            return None
        return bytes(row[0])

    def ping(self) -> bool:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    @_guarded
    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._get(key)

    @_guarded
    def set(self, key: str, value: bytes, ttl_ms: int | None = None) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)",
                             (key, value, self._expiry(ttl_ms)))

    @_guarded
    def set_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        with self._lock, self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, NULL)", items)

    @_guarded
    def delete(self, *keys: str) -> None:
        rows = [(k,) for k in keys]
        with self._lock, self._transaction():
            self._db.executemany("DELETE FROM kv WHERE key = ?", rows)
            self._db.executemany("DELETE FROM list_keys WHERE key = ?", rows)
            self._db.executemany("DELETE FROM list_items WHERE key = ?", rows)

    @_guarded
    def set_if_absent(self, key: str, value: bytes, ttl_ms: int) -> bool:
        with self._lock, self._transaction():
            if self._get(key) is not None:
                return False
            self._db.execute("INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)",
                             (key, value, self._expiry(ttl_ms)))
            return True

    @_guarded
    def compare_and_delete(self, key: str, value: bytes) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM kv WHERE key = ? AND value = ?", (key, value))
            return cur.rowcount > 0

    @_guarded
    def compare_and_expire(self, key: str, value: bytes, ttl_ms: int) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE kv SET expires_at = ? WHERE key = ? AND value = ? AND (expires_at IS NULL OR expires_at > ?)",
                (self._expiry(ttl_ms), key, value, time.time()))
            return cur.rowcount > 0

    @_guarded
    def expire_prefix(self, prefix: str, ttl_ms: int) -> int:
        # Range scan on the primary keys: prefix <= key < prefix + U+FFFF.
        bounds = (prefix, prefix + "\uffff")
        with self._lock, self._transaction():
            if ttl_ms <= 0:
                n = self._db.execute("DELETE FROM kv WHERE key >= ? AND key < ?", bounds).rowcount
                n += self._db.execute("DELETE FROM list_keys WHERE key >= ? AND key < ?", bounds).rowcount
                self._db.execute("DELETE FROM list_items WHERE key >= ? AND key < ?", bounds)
            else:
                expiry = self._expiry(ttl_ms)
                n = 0
                for table in ("kv", "list_keys"):
                    n += self._db.execute(
                        f"UPDATE {table} SET expires_at = ? WHERE key >= ? AND key < ? AND "
                        "(expires_at IS NULL OR expires_at > ?)", (expiry, *bounds, expiry)).rowcount
            self._sweep_expired()
            return n

    def _sweep_expired(self) -> None:
        """Delete what has expired (reads already ignore it; this reclaims the space)."""
        now = time.time()
        self._db.execute("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
        self._db.execute("DELETE FROM list_items WHERE key IN (SELECT key FROM list_keys WHERE "
                         "expires_at IS NOT NULL AND expires_at <= ?)", (now,))
        self._db.execute("DELETE FROM list_keys WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))

    @contextmanager
    def _transaction(self, mode: str = "IMMEDIATE") -> Iterator[None]:
        """BEGIN … COMMIT (ROLLBACK on any error); call with `self._lock` held.

        Writers use IMMEDIATE (take the write lock up front, no upgrade deadlock between processes);
        readers DEFERRED (a consistent snapshot that never waits for a writer, thanks to WAL).
        """
        self._db.execute(f"BEGIN {mode}")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _list_bounds(self, key: str) -> tuple[int, int] | None:
        """(first_seq, next_seq) of a live list, for a writer: drops an expired list, migrates a legacy one."""
        row = self._db.execute("SELECT first_seq, next_seq, expires_at FROM list_keys WHERE key = ?",
                               (key,)).fetchone()
        if row is None:
            return self._migrate_legacy_list(key) if self._legacy_lists else None
        if row[2] is not None and row[2] <= time.time():
            self._db.execute("DELETE FROM list_items WHERE key = ?", (key,))
            self._db.execute("DELETE FROM list_keys WHERE key = ?", (key,))
            return None
        return int(row[0]), int(row[1])

    def _migrate_legacy_list(self, key: str) -> tuple[int, int] | None:
        """Move a list written by an older version (one packed kv blob) into the list tables."""
        row = self._db.execute("SELECT value, expires_at FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        self._db.execute("DELETE FROM kv WHERE key = ?", (key,))
        if row[1] is not None and row[1] <= time.time():
            return None
        items = _unpack_list(bytes(row[0]))
        self._db.executemany("INSERT INTO list_items (key, seq, value) VALUES (?, ?, ?)",
                             [(key, seq, v) for seq, v in enumerate(items)])
        self._db.execute("INSERT INTO list_keys (key, first_seq, next_seq, expires_at) VALUES (?, 0, ?, ?)",
                         (key, len(items), row[1]))
        return 0, len(items)

    def _read_list(self, key: str) -> list[bytes]:
        """The items of a live list, oldest first (a reader: expired lists read as empty, nothing is written)."""
        rows = self._db.execute(
            "SELECT i.value FROM list_keys k JOIN list_items i ON i.key = k.key WHERE k.key = ? AND "
            "(k.expires_at IS NULL OR k.expires_at > ?) ORDER BY i.seq", (key, time.time())).fetchall()
        if not rows and self._legacy_lists:
            blob = self._get(key)
            if blob is not None and self._db.execute("SELECT 1 FROM list_keys WHERE key = ?",
                                                     (key,)).fetchone() is None:
                return _unpack_list(blob)
        return [bytes(r[0]) for r in rows]

    @_guarded
    def list_append(self, key: str, values: Sequence[bytes], max_len: int, ttl_ms: int | None) -> None:
        """RPUSH + LTRIM + PEXPIRE in one transaction: O(len(values) + items trimmed), not O(list)."""
        if not values:
            return
        with self._lock, self._transaction():
            bounds = self._list_bounds(key)
            first, start = bounds if bounds is not None else (0, 0)
            stop = start + len(values)
            new_first = max(first, stop - max_len)
            # Items that would be trimmed at once are never written.
            skip = max(0, new_first - start)
            self._db.executemany("INSERT INTO list_items (key, seq, value) VALUES (?, ?, ?)",
                                 [(key, start + i, values[i]) for i in range(skip, len(values))])
            if new_first > first:
                self._db.execute("DELETE FROM list_items WHERE key = ? AND seq < ?", (key, new_first))
            if bounds is None:
                self._db.execute(
                    "INSERT INTO list_keys (key, first_seq, next_seq, expires_at) VALUES (?, ?, ?, ?)",
                    (key, new_first, stop, self._expiry(ttl_ms)))
            elif ttl_ms:
                self._db.execute("UPDATE list_keys SET first_seq = ?, next_seq = ?, expires_at = ? WHERE key = ?",
                                 (new_first, stop, self._expiry(ttl_ms), key))
            else:  # like RPUSH without PEXPIRE: an existing TTL is kept
                self._db.execute("UPDATE list_keys SET first_seq = ?, next_seq = ? WHERE key = ?",
                                 (new_first, stop, key))

    @_guarded
    def list_range(self, key: str) -> list[bytes]:
        with self._lock, self._transaction("DEFERRED"):
            return self._read_list(key)

    @_guarded
    def fetch(self, keys: Sequence[str], lists: Sequence[str]) -> tuple[list[bytes | None], list[list[bytes]]]:
        with self._lock, self._transaction("DEFERRED"):
            return [self._get(k) for k in keys], [self._read_list(k) for k in lists]

    def breaker(self) -> BreakerStats | None:
        return None

    @_guarded
    def close(self) -> None:
        with self._lock:
            self._db.close()
