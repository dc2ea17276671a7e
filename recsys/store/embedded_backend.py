"""Embedded backend: one SQLite file, no server. Same semantics as Redis, TTLs checked on read."""

from __future__ import annotations

import sqlite3
import struct
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from recsys.errors import StoreUnavailableError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires_at REAL
) WITHOUT ROWID;
"""
_LEN = struct.Struct("<I")


def _pack_list(values: list[bytes]) -> bytes:
    return b"".join(_LEN.pack(len(v)) + v for v in values)


def _unpack_list(blob: bytes) -> list[bytes]:
    out, off = [], 0
    while off < len(blob):
        (n,) = _LEN.unpack_from(blob, off)
        off += _LEN.size
        out.append(blob[off:off + n])
        off += n
    return out


class EmbeddedBackend:
    """`embedded://PATH` (a file, created on demand) or `embedded://:memory:` (tests, evaluation)."""

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
            self._db.executescript(_SCHEMA)
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

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._get(key)

    def set(self, key: str, value: bytes, ttl_ms: int | None = None) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)",
                             (key, value, self._expiry(ttl_ms)))

    def set_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, NULL)",
                                     items)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def delete(self, *keys: str) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM kv WHERE key = ?", [(k,) for k in keys])

    def set_if_absent(self, key: str, value: bytes, ttl_ms: int) -> bool:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self._get(key) is not None:
                    self._db.execute("COMMIT")
                    return False
                self._db.execute("INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)",
                                 (key, value, self._expiry(ttl_ms)))
                self._db.execute("COMMIT")
                return True
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def compare_and_delete(self, key: str, value: bytes) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM kv WHERE key = ? AND value = ?", (key, value))
            return cur.rowcount > 0

    def compare_and_expire(self, key: str, value: bytes, ttl_ms: int) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE kv SET expires_at = ? WHERE key = ? AND value = ? AND (expires_at IS NULL OR expires_at > ?)",
                (self._expiry(ttl_ms), key, value, time.time()))
            return cur.rowcount > 0

    def expire_prefix(self, prefix: str, ttl_ms: int) -> int:
        # Range scan on the primary key: prefix <= key < prefix + U+FFFF.
        upper = prefix + "\uffff"
        with self._lock:
            if ttl_ms <= 0:
                cur = self._db.execute("DELETE FROM kv WHERE key >= ? AND key < ?", (prefix, upper))
            else:
                cur = self._db.execute(
                    "UPDATE kv SET expires_at = ? WHERE key >= ? AND key < ? AND "
                    "(expires_at IS NULL OR expires_at > ?)", (self._expiry(ttl_ms), prefix, upper,
                                                                self._expiry(ttl_ms)))
            self._db.execute("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", (time.time(),))
            return cur.rowcount

    def list_append(self, key: str, values: list[bytes], max_len: int, ttl_ms: int | None) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                current = self._get(key)
                items = (_unpack_list(current) if current else []) + list(values)
                self._db.execute("INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)",
                                 (key, _pack_list(items[-max_len:]), self._expiry(ttl_ms)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def list_range(self, key: str) -> list[bytes]:
        with self._lock:
            blob = self._get(key)
        return _unpack_list(blob) if blob else []

    def read_user(self, keys: list[str], list_key: str | None) -> tuple[list[bytes | None], list[bytes]]:
        with self._lock:
            values = [self._get(k) for k in keys]
            blob = self._get(list_key) if list_key is not None else None
        return values, (_unpack_list(blob) if blob else [])

    def memory_usage(self, key: str) -> int | None:
        return None

    def flush_prefix(self, prefix: str) -> int:
        return self.expire_prefix(prefix, 0)

    def close(self) -> None:
        with self._lock:
            self._db.close()
