"""The package's two layers: the core never imports the tools, and no module imports itself back.

Every import counts, including those inside functions (the core imports PySpark lazily, and a
lazy import closes a circle as surely as one at the top).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import ctr_lab

ROOT = Path(ctr_lab.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> Dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(path: Path, known: Set[str]) -> Set[str]:
    """The ``ctr_lab`` modules ``path`` imports anywhere in its body."""
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from ctr_lab import schema` imports the module ctr_lab.schema.
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        found |= {n for n in names if n in known}
    return found


def _graph() -> Dict[str, Set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, known) - {name} for name, path in modules.items()}


def _is_tool(name: str) -> bool:
    return name == "ctr_lab.tools" or name.startswith("ctr_lab.tools.")


def test_the_tools_are_a_layer_of_their_own():
    graph = _graph()
    assert "ctr_lab.tools.cli" in graph and "ctr_lab.train.pipelines" in graph
    core = sorted(m for m in graph if not _is_tool(m))
    assert len(core) >= 15, core
    offenders = {
        m: sorted(filter(_is_tool, graph[m])) for m in core if any(map(_is_tool, graph[m]))
    }
    assert not offenders, f"core modules import tools: {offenders}"


def _circles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    groups: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_no_import_circle_anywhere():
    assert _circles(_graph()) == []


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]
