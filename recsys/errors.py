"""One root exception; every error a user can act on derives from it.

The HTTP layer maps these classes to status codes in one place (api/errors.py).
"""

from __future__ import annotations


class RecsysError(Exception):
    """Root of every error raised on purpose by the library."""


class DataValidationError(RecsysError):
    """Input data failed validation: names the file, the column and how many rows."""

    def __init__(self, message: str, *, path: str | None = None, column: str | None = None,
                 bad_rows: int | None = None) -> None:
        parts = [message]
        if path is not None:
            parts.append(f"file={path}")
        if column is not None:
            parts.append(f"column={column}")
        if bad_rows is not None:
            parts.append(f"bad_rows={bad_rows}")
        super().__init__("; ".join(parts))
        self.path = path
        self.column = column
        self.bad_rows = bad_rows


class ConfigError(RecsysError):
    """A setting or argument has a value that cannot work."""


class StoreError(RecsysError):
    """Root of the store's errors: every backend failure (SQLite, Redis) surfaces as one of these."""


class StoreUnavailableError(StoreError):
    """The candidate/session store cannot be reached (or refused the command)."""


class CorruptValueError(StoreError):
    """A stored value cannot be decoded (truncated, wrong magic, out-of-range contents)."""


class StoreLayoutError(StoreError):
    """A published version was written in a store layout this release does not read (refresh to fix)."""


class NoVersionPublishedError(RecsysError):
    """The store holds no published candidate version yet (run `recsys refresh`)."""


class ArtifactError(RecsysError):
    """An artifact (bundle, model) is missing, incomplete or corrupt."""


class NotFittedError(RecsysError):
    """A model was used before `fit` was called."""


class PublishAbortedError(RecsysError):
    """A publish was stopped before the pointer flip; nothing was published."""


class InvalidRequestError(RecsysError):
    """A request's parameters cannot be applied (e.g. a filter on an unknown attribute): the message says why."""


class ConflictError(RecsysError):
    """A write that contradicts what is stored (e.g. an attribute given another type than the catalogue's)."""


class ExperimentNotFoundError(RecsysError):
    """No experiment of that name is defined (`recsys experiments list` shows them)."""


class ExperimentConflictError(RecsysError):
    """An experiment cannot be created or changed as asked (name taken, no free traffic left...)."""
