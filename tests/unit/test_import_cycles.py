"""No import cycles in asterisk_cube/ (issue #13): neither between modules nor between its
packages (``web``, ``cli``, ``acd``, ...; top-level modules count as their own package).

Every ``import`` in a file counts, also inside functions and under ``TYPE_CHECKING``: a
lazy import hides a cycle from Python, not from the reader. Importing ``a.b.c`` also runs
the ``__init__`` of ``a.b``, so that is an edge too. Read with ``ast``; nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import asterisk_cube

ROOT = Path(asterisk_cube.__file__).parent
TOP = "asterisk_cube"


def modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        rel = path.relative_to(root.parent).with_suffix("")
        if "migrations" in rel.parts:
            continue
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the product modules it imports (and the packages whose __init__ that runs)."""
    mods = modules(root)

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.add(sub if sub in mods else source)
        edges: set[str] = set()
        for target in targets:
            hit = known(target) if target.split(".")[0] == TOP else None
            if hit is None:
                continue
            parts = hit.split(".")
            for i in range(1, len(parts) + 1):
                ancestor = ".".join(parts[:i])
                # the importer's own packages are already imported: not an edge
                if ancestor in mods and not (name + ".").startswith(ancestor + "."):
                    edges.add(ancestor)
        graph[name] = edges
    return graph


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    out: dict[str, set[str]] = {}
    for source, targets in graph.items():
        out.setdefault(package(source), set()).update(
            package(t) for t in targets if t != TOP and package(t) != package(source)
        )
    out.pop(TOP, None)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_cycle_between_modules() -> None:
    found = cycles(import_graph())
    assert found == [], f"import cycles between modules: {found}"


def test_no_cycle_between_packages() -> None:
    found = cycles(package_graph(import_graph()))
    assert found == [], f"import cycles between packages: {found}"


def test_the_checker_sees_lazy_type_checking_and_package_init_imports(tmp_path: Path) -> None:
    pkg = tmp_path / TOP
    (pkg / "web").mkdir(parents=True)
    (pkg / "cli").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "web" / "__init__.py").write_text("")
    (pkg / "cli" / "__init__.py").write_text("from .. import wiring\n")
    (pkg / "cli" / "report.py").write_text("")
    (pkg / "wiring.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .web import app\n"
    )
    (pkg / "web" / "app.py").write_text("def f():\n    from ..cli.report import x\n")
    graph = import_graph(pkg)
    assert f"{TOP}.cli" in graph[f"{TOP}.web.app"]
    assert cycles(package_graph(graph)) == [sorted([f"{TOP}.cli", f"{TOP}.web", f"{TOP}.wiring"])]
