"""The house rules of ARCHITECTURE.md, checked on the source: what the library may import, and no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHELLS = {"api", "jobs", "cli"}
# Frameworks and engines the library must not import (optional engines load only in their own modules).
FORBIDDEN = {"fastapi", "starlette", "uvicorn", "apscheduler", "typer", "pyspark", "mlflow"}


def _modules(package: str) -> dict[str, Path]:
    out = {}
    for path in (REPO / package).rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path) -> list[str]:
    """Every absolute import of a file, at module level or inside functions (lazy imports count too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.extend([node.module] + [f"{node.module}.{a.name}" for a in node.names])
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
    return names


def test_the_library_imports_no_shell_and_no_framework() -> None:
    bad = [(name, imported) for name, path in _modules("recsys").items() for imported in _imports(path)
           if imported.split(".")[0] in SHELLS | FORBIDDEN]
    assert bad == []


def test_only_the_store_package_touches_backends_and_keys() -> None:
    bad = []
    for top in ("recsys", "api", "jobs", "cli"):
        for name, path in _modules(top).items():
            if name.startswith("recsys.store"):
                continue
            text = path.read_text()
            bad += [name for needle in ("._backend", "._keys", ".backend.", "store.keys") if needle in text]
    assert bad == []


def test_the_library_import_graph_has_no_cycle() -> None:
    modules = _modules("recsys")
    graph = {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            assert visit(start, []) is None


def test_only_the_mlflow_adapter_imports_mlflow() -> None:
    """MLflow is an optional extra: one module loads it (jobs/mlflow_tracker.py, reached only through
    jobs/tracking.py when a tracking URI is set), so the default install never needs it."""
    importers = sorted(name for top in ("recsys", "api", "jobs", "cli") for name, path in _modules(top).items()
                       if any(i.split(".")[0] == "mlflow" for i in _imports(path)))
    assert importers == ["jobs.mlflow_tracker"]
    assert not any(i.startswith("jobs.mlflow_tracker") for name, path in _modules("jobs").items()
                   if name != "jobs.tracking" for i in _imports(path))
