"""The package reads one way: no import cycle among vla's modules, counting the imports inside
functions and under ``TYPE_CHECKING`` (a lazy import that breaks a cycle at run time still ties
the two modules together for a reader)."""

import ast
from pathlib import Path

import vla

ROOT = Path(vla.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The vla modules ``path`` imports anywhere in its body; ``from vla.data import X`` is an
    edge to X when X is a module, else to the package (its ``__init__`` imports X's module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{a.name}" for a in node.names]
            # `from pkg import submodule` needs the submodule; `from pkg import name`, the package
            names = [m if m in modules else node.module for m in subs]
        for name in names:
            if name in modules and name != "vla":  # vla/__init__ only registers resolvers
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(files)
    return {m: imports_of(p, modules) - {m} for m, p in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n) :] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "vla.model" in graph["vla.checkpoint"]  # the checkpoint depends on the model ...
    assert "vla.checkpoint" not in graph["vla.model"]  # ... never the reverse


def test_vla_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
