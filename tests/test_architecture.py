"""The import graph: no circles, and arrows only downward (docs/architecture.md).

Every import counts, including those inside functions and under ``TYPE_CHECKING``: an
import moved into a function still ties the two modules together, it only hides the
circle from the interpreter.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schemas", "workflows", "activities", "workers", "bench")

# Bottom to top. A module may import from a lower layer, or from its own package
# (the first two dotted parts for workers, the first for the rest); never upward, never
# sideways into a sibling package of the same layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("schemas",),
    ("workflows",),
    ("activities",),
    ("workers.runtime",),
    ("workers.worker", "workers.bridges", "workers.projector", "workers.open311",
     "workers.reports", "workers.workbench"),
    ("workers.devstack",),
    ("workers.cli",),
    ("bench",),
)


def _modules(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in PACKAGES:
        for path in sorted((root / top).rglob("*.py")) if (root / top).is_dir() else []:
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported project module, line) for every import in the file, wherever it stands."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _resolve(alias.name, None, modules, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield from _resolve(base, alias.name, modules, node.lineno)


def _resolve(base: str, attr: str | None, modules: dict[str, Path],
             line: int) -> Iterator[tuple[str, int]]:
    if attr is not None and f"{base}.{attr}" in modules:
        yield f"{base}.{attr}", line
        return
    parts = base.split(".")
    if parts[0] == "tests":
        yield base, line
        return
    while parts:  # `import a.b.c` names a.b.c, or the nearest package that exists
        candidate = ".".join(parts)
        if candidate in modules:
            yield candidate, line
            return
        parts.pop()


def _room(module: str) -> tuple[int, str] | None:
    for level, rooms in enumerate(LAYERS):
        for room in rooms:
            if module == room or module.startswith(room + "."):
                return level, room
    return None


def _layer_of(module: str) -> tuple[int, str]:
    room = _room(module)
    if room is None:
        top = module.split(".")[0]
        room = _room(top)
    if room is None:
        raise AssertionError(f"{module} is in no layer of tests/test_architecture.py: "
                             "add its package to LAYERS")
    return room


def check_imports(root: Path) -> list[str]:
    """Every circle and every upward or sideways import under ``root``, as sentences."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    problems: list[str] = []
    for name, path in modules.items():
        for target, line in _imports(name, path, modules):
            if target == "tests" or target.startswith("tests."):
                problems.append(f"{path.relative_to(root)}:{line}: {name} imports test code "
                                f"({target})")
                continue
            if target == name:
                continue
            graph[name].add(target)
            (level, room), (t_level, t_room) = _layer_of(name), _layer_of(target)
            if room != t_room and t_level >= level:
                way = "sideways" if t_level == level else "upward"
                problems.append(f"{path.relative_to(root)}:{line}: {name} imports {target} "
                                f"({way}: {room} must not depend on {t_room})")
    problems.extend(f"import circle among: {', '.join(c)}" for c in _circles(graph))
    return problems


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

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


def test_the_project_has_no_import_circles_and_no_upward_imports() -> None:
    problems = check_imports(ROOT)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("plant", "expected"), [
    ({"activities/a.py": "from activities import b\n",
      "activities/b.py": "def f():\n    from activities.a import x\n"},
     "import circle among: activities.a, activities.b"),
    ({"workflows/w.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                        "    from activities.a import A\n", "activities/a.py": ""},
     "workflows.w imports activities.a (upward: workflows must not depend on activities)"),
    ({"workers/runtime/r.py": "from workers.cli import main\n", "workers/cli/main.py": ""},
     "workers.runtime.r imports workers.cli.main (upward"),
    ({"bench/b.py": "from tests.reliability.harness import filing\n"},
     "bench.b imports test code (tests.reliability.harness)"),
    ({"workers/bridges/b.py": "from ..worker.main import run\n",
      "workers/worker/main.py": ""},
     "workers.bridges.b imports workers.worker.main (sideways"),
])
def test_a_planted_circle_or_upward_import_is_reported(
    tmp_path: Path, plant: dict[str, str], expected: str,
) -> None:
    for rel, text in plant.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(tmp_path).parents:
            if str(parent) != ".":
                (tmp_path / parent / "__init__.py").touch()
        path.write_text(text)
    problems = check_imports(tmp_path)
    assert any(expected in p for p in problems), problems


def test_downward_imports_and_imports_within_a_package_pass(tmp_path: Path) -> None:
    for rel, text in {
        "workers/cli/main.py": "from workers.devstack import stack\nfrom workers.cli import out\n",
        "workers/cli/out.py": "",
        "workers/devstack/stack.py": "import workers.runtime.settings\n",
        "workers/runtime/settings.py": "from activities.a import x\n",
        "activities/a.py": "from workflows.model import M\n",
        "workflows/model.py": "from schemas import codec\n",
        "schemas/codec.py": "",
    }.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert check_imports(tmp_path) == []
