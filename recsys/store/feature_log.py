"""The feature log's storage: a capped list of encoded rows, newest last (format: monitoring.feature_log)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from recsys.store.backend import KVBackend
from recsys.store.keys import Keys


class FeatureLogStore:
    def __init__(self, backend: KVBackend, keys: Keys) -> None:
        self._backend = backend
        self._key = keys.feature_log

    def append(self, rows: Sequence[bytes], max_rows: int) -> None:
        """Append encoded rows and trim the log to its newest `max_rows`: one atomic step."""
        if rows:
            self._backend.list_append(self._key, rows, max_rows, None)

    def rows(self) -> list[bytes]:
        return self._backend.list_range(self._key)

    def clear(self) -> None:
        self._backend.delete(self._key)

    def remove_where(self, matches: Callable[[bytes], bool]) -> int:
        """Remove the rows that `matches` (forgetting a user); returns how many."""
        return self._backend.list_remove(self._key, [r for r in self.rows() if matches(r)])
