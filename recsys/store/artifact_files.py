"""Artifact files in the store: bundles and models reach every API replica with nothing but the store URL.

    {ns}:a:{kind}:{a<version>}:f:{name}:{i}   chunk i of a file (at most `chunk_bytes`)
    {ns}:a:{kind}:{a<version>}:index          JSON {name: [size, chunks]}: written last, the commit mark
    {ns}:a:{kind}:versions                    JSON list of committed versions of the kind
    {ns}:a:{kind}:ptr:{name}                  a pointer (models CURRENT)
    {ns}:a:{kind}:log:{name}                  an append-only list of records (promotions, importances)

A version is written chunk by chunk, then its index, then it joins the versions list: a reader that
finds no index sees no version, so a writer that dies half way leaves nothing readable (its chunks are
removed by `delete`, and by the next `put` of the same version). The hash tag `{a<version>}` keeps one
version's chunks on one Redis Cluster node. Checksums are the artifact registry's (its manifests).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from recsys.errors import ArtifactError
from recsys.store.backend import KVBackend

CHUNK_BYTES = 1 << 20  # large values block a Redis server while they are copied; 1 MiB does not
LOG_MAX_RECORDS = 100_000


class ArtifactFiles:
    def __init__(self, backend: KVBackend, namespace: str, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._backend = backend
        self._ns = namespace
        self.chunk_bytes = chunk_bytes

    def _version_prefix(self, kind: str, version: str) -> str:
        return f"{self._ns}:a:{kind}:{{a{version}}}:"

    def _versions_key(self, kind: str) -> str:
        return f"{self._ns}:a:{kind}:versions"

    def location(self, kind: str, version: str | None = None) -> str:
        where = f"{self._backend.url.split('@')[-1]} {self._ns}:a:{kind}"
        return where if version is None else f"{where}:{version}"

    def put(self, kind: str, version: str, files: Mapping[str, bytes]) -> None:
        if version in self.versions(kind) or self.has_file(kind, version, "manifest.json"):
            self.delete(kind, version)  # replacing a version: never mix two writes' chunks
        prefix = self._version_prefix(kind, version)
        index: dict[str, list[int]] = {}
        for name, data in files.items():
            chunks = [data[i:i + self.chunk_bytes] for i in range(0, len(data), self.chunk_bytes)] or [b""]
            self._backend.set_many([(f"{prefix}f:{name}:{i}", chunk) for i, chunk in enumerate(chunks)])
            index[name] = [len(data), len(chunks)]
        self._backend.set(f"{prefix}index", json.dumps(index).encode())
        versions = [v for v in self.versions(kind) if v != version]
        self._backend.set(self._versions_key(kind), json.dumps(sorted([*versions, version])).encode())

    def _index(self, kind: str, version: str) -> dict[str, list[int]]:
        raw = self._backend.get(f"{self._version_prefix(kind, version)}index")
        if raw is None:
            raise ArtifactError(f"no {kind[:-1]} {version} in the store ({self.location(kind)})")
        index: dict[str, list[int]] = json.loads(raw)
        return index

    def add_file(self, kind: str, version: str, name: str, data: bytes) -> None:
        index = self._index(kind, version)
        prefix = self._version_prefix(kind, version)
        chunks = [data[i:i + self.chunk_bytes] for i in range(0, len(data), self.chunk_bytes)] or [b""]
        self._backend.set_many([(f"{prefix}f:{name}:{i}", chunk) for i, chunk in enumerate(chunks)])
        index[name] = [len(data), len(chunks)]
        self._backend.set(f"{prefix}index", json.dumps(index).encode())

    def get_file(self, kind: str, version: str, name: str) -> bytes:
        entry = self._index(kind, version).get(name)
        if entry is None:
            raise ArtifactError(f"{kind[:-1]} {version} has no file {name} in the store")
        size, n = entry
        prefix = self._version_prefix(kind, version)
        values, _ = self._backend.fetch([f"{prefix}f:{name}:{i}" for i in range(n)], [])
        if any(v is None for v in values):
            raise ArtifactError(f"{kind[:-1]} {version}: a chunk of {name} is missing in the store")
        data = b"".join(v for v in values if v is not None)
        if len(data) != size:
            raise ArtifactError(f"{kind[:-1]} {version}: {name} has {len(data)} bytes in the store, expected {size}")
        return data

    def has_file(self, kind: str, version: str, name: str) -> bool:
        try:
            return name in self._index(kind, version)
        except ArtifactError:
            return False

    def versions(self, kind: str) -> list[str]:
        raw = self._backend.get(self._versions_key(kind))
        return list(json.loads(raw)) if raw else []

    def delete(self, kind: str, version: str) -> None:
        self._backend.expire_prefix(self._version_prefix(kind, version), 0)
        remaining = [v for v in self.versions(kind) if v != version]
        self._backend.set(self._versions_key(kind), json.dumps(remaining).encode())

    def get_pointer(self, kind: str, name: str) -> str | None:
        raw = self._backend.get(f"{self._ns}:a:{kind}:ptr:{name}")
        return raw.decode() if raw else None

    def set_pointer(self, kind: str, name: str, value: str) -> None:
        self._backend.set(f"{self._ns}:a:{kind}:ptr:{name}", value.encode())

    def append_lines(self, kind: str, log: str, lines: list[str]) -> None:
        if lines:
            self._backend.list_append(f"{self._ns}:a:{kind}:log:{log}", [line.encode() for line in lines],
                                      LOG_MAX_RECORDS, None)

    def read_lines(self, kind: str, log: str) -> list[str]:
        return [raw.decode() for raw in self._backend.list_range(f"{self._ns}:a:{kind}:log:{log}")]
