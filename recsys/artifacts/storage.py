"""Where artifact files live. The registry speaks to storage only through `ArtifactStorage`.

`FileStorage` is the on-disk layout (the embedded default and a shared volume):

    <root>/<kind>/<version>/<file>     one directory per artifact version (kind: bundles, models)
    <root>/<kind>/<POINTER>            a pointer file (models/CURRENT: the promoted model)
    <root>/<kind>/<log>.jsonl          append-only JSON-lines logs (promotions, importances, pruning)

Writes are atomic: a version is written to `.tmp-<version>` and renamed; pointers and single files
are written to a temporary name and replaced. Readers never see half an artifact.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from recsys.errors import ArtifactError

# Temporary directories older than this were left by a writer that died.
STALE_TMP_SECONDS = 3600.0


class ArtifactStorage(Protocol):
    """Versioned sets of named files, pointers and append-only logs, grouped by kind."""

    def location(self, kind: str, version: str | None = None) -> str:
        """Where a kind (or one version of it) lives, for messages."""

    def put(self, kind: str, version: str, files: Mapping[str, bytes]) -> None:
        """Write a whole version at once (replacing one of the same name); all or nothing."""

    def add_file(self, kind: str, version: str, name: str, data: bytes) -> None:
        """Add (or replace) one file of an existing version, atomically."""

    def get_file(self, kind: str, version: str, name: str) -> bytes:
        """The file's bytes; ArtifactError when the version or the file does not exist."""

    def has_file(self, kind: str, version: str, name: str) -> bool: ...

    def versions(self, kind: str) -> list[str]:
        """Complete versions of a kind, sorted by name (version ids sort by time)."""

    def delete(self, kind: str, version: str) -> None: ...

    def get_pointer(self, kind: str, name: str) -> str | None: ...

    def set_pointer(self, kind: str, name: str, value: str) -> None: ...

    def append_lines(self, kind: str, log: str, lines: list[str]) -> None: ...

    def read_lines(self, kind: str, log: str) -> list[str]: ...


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


class FileStorage:
    """Artifacts as files under one root directory (`RECSYS_ARTIFACTS_DIR`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _dir(self, kind: str, version: str) -> Path:
        if not version or "/" in version or version.startswith("."):
            raise ArtifactError(f"invalid artifact version {version!r}")
        return self.root / kind / version

    def location(self, kind: str, version: str | None = None) -> str:
        return str(self.root / kind if version is None else self._dir(kind, version))

    def put(self, kind: str, version: str, files: Mapping[str, bytes]) -> None:
        final = self._dir(kind, version)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{version}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            for name, data in files.items():
                (tmp / name).write_bytes(data)
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ArtifactError(f"cannot write artifact {final}: {exc}") from exc

    def add_file(self, kind: str, version: str, name: str, data: bytes) -> None:
        directory = self._dir(kind, version)
        if not directory.is_dir():
            raise ArtifactError(f"no artifact {directory} to add {name} to")
        _atomic_write(directory / name, data)

    def get_file(self, kind: str, version: str, name: str) -> bytes:
        path = self._dir(kind, version) / name
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ArtifactError(f"artifact file {path} is missing") from exc
        except OSError as exc:
            raise ArtifactError(f"cannot read artifact file {path}: {exc}") from exc

    def has_file(self, kind: str, version: str, name: str) -> bool:
        return (self._dir(kind, version) / name).is_file()

    def versions(self, kind: str) -> list[str]:
        root = self.root / kind
        if not root.is_dir():
            return []
        self._sweep_stale_tmp(root)
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    @staticmethod
    def _sweep_stale_tmp(root: Path) -> None:
        for p in root.glob(".tmp-*"):
            try:
                if time.time() - p.stat().st_mtime > STALE_TMP_SECONDS:
                    shutil.rmtree(p, ignore_errors=True)
            except OSError:
                continue

    def delete(self, kind: str, version: str) -> None:
        shutil.rmtree(self._dir(kind, version), ignore_errors=True)

    def get_pointer(self, kind: str, name: str) -> str | None:
        path = self.root / kind / name
        if not path.is_file():
            return None
        return path.read_text().strip() or None

    def set_pointer(self, kind: str, name: str, value: str) -> None:
        (self.root / kind).mkdir(parents=True, exist_ok=True)
        _atomic_write(self.root / kind / name, (value + "\n").encode())

    def append_lines(self, kind: str, log: str, lines: list[str]) -> None:
        """One write of whole lines to a file opened with O_APPEND: concurrent appends do not interleave,
        and a line a crash cut short is never glued onto the next record."""
        text = "".join(line + "\n" for line in lines)
        if not text:
            return
        path = self.root / kind / f"{log}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size:
            with path.open("rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    text = "\n" + text
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def read_lines(self, kind: str, log: str) -> list[str]:
        path = self.root / kind / f"{log}.jsonl"
        if not path.is_file():
            return []
        return [line for line in path.read_text().splitlines() if line.strip()]
