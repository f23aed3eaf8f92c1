"""The import direction the architecture promises, checked from the source (no imports run).

- ``crdt`` and ``billing`` are the core: they import none of our other packages;
- ``persistence`` implements their ports (and ``ai.ports``), so it may import those and nothing
  else of ours;
- ``ai`` builds on the core alone, ``render`` on the core and ``ai``; neither knows the adapters;
- nothing imports ``server``: it is the composition root;
- no module of ours imports itself back through others (no cycles, ``TYPE_CHECKING``-only
  imports included: they are how a cycle hides).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "crdt", "persistence", "ai", "billing", "render")

# package -> the packages (or modules) of ours it may import, besides itself
ALLOWED: dict[str, set[str]] = {
    "crdt": set(),
    "billing": set(),
    "persistence": {"crdt", "billing", "ai.ports"},
    "ai": {"crdt", "billing"},
    "render": {"crdt", "billing", "ai"},
    "server": {"crdt", "billing", "persistence", "ai", "render"},
}


def _allowed(package: str, target: str) -> bool:
    return any(
        target == prefix or target.startswith(prefix + ".")
        for prefix in ALLOWED[package] | {package}
    )


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every module of ours that ``name`` imports, at any depth of its code."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # ``from pkg import mod`` imports the submodule when there is one.
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


GRAPH = {name: set(_imports(name, path)) for name, path in MODULES.items()}


def test_every_package_is_seen() -> None:
    assert {name.split(".")[0] for name in MODULES} == set(PACKAGES)
    assert len(MODULES) > 50


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_inward(package: str) -> None:
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if module.split(".")[0] == package
        for target in targets
        if not _allowed(package, target)
    )
    assert wrong == []


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    assert _cycles() == []


def test_the_checker_sees_a_cycle_and_a_wrong_direction() -> None:
    # The checks above must be able to fail: a cycle and an outward import are found.
    GRAPH["crdt.room"].add("crdt.live.registry")
    GRAPH["billing.ledger"].add("persistence.db")
    try:
        assert any("crdt.room" in cycle for cycle in _cycles())
        with pytest.raises(AssertionError):
            test_imports_point_inward("billing")
    finally:
        GRAPH["crdt.room"].discard("crdt.live.registry")
        GRAPH["billing.ledger"].discard("persistence.db")
