"""The core's folders are its architecture: each part imports only the parts below it, and no
module imports another in a circle (README, Development)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import REPO

CORE = REPO / "sdt_core"

#: Every part of sdt_core and its floor: a part imports only parts on lower floors or its own.
FLOORS = {
    "errors": 0,
    "plugs": 1,
    "analysis": 2,
    "dataplugs": 2,
    "output": 2,
    "acceleration": 3,
    "job": 4,
    "cloud": 4,
    "cli": 5,
    "testing": 5,
    "__init__": 5,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """`sdt_core.job.runner` -> `job`; `sdt_core` itself -> `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imported(path: Path) -> set[str]:
    """The sdt_core modules `path` imports anywhere in it: at the top, in functions, for type checking."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1 folders
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            found.add(base)
            # `from sdt_core.job import signals`: the submodule, when it is one
            found |= {f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}")}
    return {m for m in found if m.split(".")[0] == "sdt_core"}


def _is_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


MODULES = {module_name(p): p for p in sorted(CORE.rglob("*.py"))}
GRAPH = {name: {m for m in imported(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def test_every_part_has_a_floor():
    assert {part_of(name) for name in MODULES} == set(FLOORS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_parts_below_its_own(module):
    floor = FLOORS[part_of(module)]
    above = sorted(
        m for m in GRAPH[module] if part_of(m) != part_of(module) and m != "sdt_core" and FLOORS[part_of(m)] >= floor
    )
    assert not above, f"{module} (floor {floor}) imports {above}, which are not below it"


def test_no_module_imports_another_in_a_circle():
    """Package `__init__`s aside (a submodule's import runs its package first, which is no circle of code)."""
    graph = {name: {m for m in deps if not _is_package(m)} for name, deps in GRAPH.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circle = [*stack[stack.index(nxt) :], nxt]
                pytest.fail("import circle: " + " -> ".join(circle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def _is_package(name: str) -> bool:
    return (REPO.joinpath(*name.split(".")) / "__init__.py").exists()


def test_the_readme_lists_every_part_of_the_layout():
    layout = (REPO / "README.md").read_text().split("## Development", 1)[1]
    for part in FLOORS:
        shown = f"{part}.py" if (CORE / f"{part}.py").exists() else f"{part}/"
        assert f"  {shown}" in layout, f"README's Development section does not list sdt_core's {shown}"
