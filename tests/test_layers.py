"""The package's layering, read from the source with ``ast``: a module imports only its own layer or
lower ones (core < sources < scoring < hub < faces), and the import graph has no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "low_metric"
LAYERS = {"core": 0, "sources": 1, "scoring": 2, "hub": 3}
FACE = 4  # cli, metric (the evaluate module), the package root


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], FACE) if len(parts) > 1 else FACE


def imported(source: str, module: str, is_package: bool) -> set[str]:
    """Every low_metric module that ``source`` imports, at any depth (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found |= {f"{name}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return {name for name in found if name == "low_metric" or name.startswith("low_metric.")}


def known(modules: set[str], name: str) -> str | None:
    """The module ``name`` refers to (``pkg.attr`` -> ``pkg``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in paths.items():
        names = imported(path.read_text(), name, path.name == "__init__.py")
        edges[name] = {m for n in names if (m := known(set(paths), n)) and m != name}
    return edges


def violations(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in edges.items():
        for target in targets:
            if layer(target) > layer(module):
                bad.append(f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})")
    return sorted(bad)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def test_no_lower_layer_imports_a_higher_one():
    assert violations(graph()) == []


def test_the_check_catches_an_upward_import():
    edges = graph()
    edges["low_metric.core.law"] = edges["low_metric.core.law"] | {"low_metric.scoring.results"}
    edges["low_metric.sources.spair"] = edges["low_metric.sources.spair"] | {"low_metric.hub.card"}
    assert violations(edges) == ["low_metric.core.law (layer 0) imports low_metric.scoring.results (layer 2)",
                                 "low_metric.sources.spair (layer 1) imports low_metric.hub.card (layer 3)"]


@pytest.mark.parametrize(("source", "module", "expected"), [
    ("from ..scoring.results import protocol_hash", "low_metric.core.law", {"low_metric.scoring.results"}),
    ("def f():\n    from low_metric.hub import guard\n", "low_metric.core.law", {"low_metric.hub", "low_metric.hub.guard"}),
    ("import low_metric.cli", "low_metric.sources.spair", {"low_metric.cli"}),
])
def test_imports_are_found_relative_nested_and_absolute(source, module, expected):
    modules = set(graph())
    found = {known(modules, name) for name in imported(source, module, False)}
    assert found == expected


def test_core_imports_nothing_of_the_package_outside_core():
    edges = graph()
    outside = {(m, t) for m, ts in edges.items() if m.startswith("low_metric.core") for t in ts
               if not t.startswith("low_metric.core")}
    assert outside == set()


def test_the_import_graph_has_no_cycle():
    edges = graph()
    assert cycles(edges) == []
    edges["low_metric.core.checks"] = edges["low_metric.core.checks"] | {"low_metric.core.law"}  # law imports checks
    assert cycles(edges)


def test_every_layer_folder_says_what_it_may_import():
    for folder in LAYERS:
        doc = ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text())) or ""
        assert "import" in doc and f"Layer {LAYERS[folder] + 1}" in doc, folder
