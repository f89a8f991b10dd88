"""No import circle in ``src/interplab``, function-level imports included.

The layer contract (.importlinter) only sees module-level imports, so a circle
hidden behind an import inside a function passes it. This test parses every
module with :mod:`ast`, collects every import wherever it is written, builds the
module graph and fails with each circle it finds.

Edges:
- ``import a.b.c`` points to ``a.b.c``; ``from a.b import c`` points to ``a.b``
  (its ``__init__`` runs and ``c`` is read from it) and also to ``a.b.c`` when
  ``c`` is itself a module;
- relative imports are resolved against the importing module's package;
- a package ``__init__`` importing its own submodules is an ordinary edge, so it
  is a circle only when some submodule imports the package back (``from pkg
  import x`` or ``from . import x`` inside ``pkg``, when ``pkg/__init__``
  imports that submodule).

Imports under ``if TYPE_CHECKING:`` never run and are left out.

Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``; those implicit
parent edges are left out, otherwise every submodule that its package
re-exports would count as a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "interplab"


def _modules(src: Path = SRC, root: str = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``src/root``."""
    out: dict[str, Path] = {}
    for path in sorted((src / root).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _resolve(node: ast.ImportFrom, module: str, modules: dict[str, Path]) -> str | None:
    """Absolute name of the module an ``ImportFrom`` reads from."""
    if node.level == 0:
        return node.module
    package = module if _is_package(module, modules) else module.rpartition(".")[0]
    parts = package.split(".")
    if node.level > 1:
        parts = parts[: len(parts) - (node.level - 1)]
    base = ".".join(parts)
    return f"{base}.{node.module}" if node.module else base


def _owning_module(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of ours."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` (under any alias ending in TYPE_CHECKING, or ``typing.…``)."""
    name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", "")
    return name.endswith("TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (imports for the type
    checker only: they never run, so they cannot close a circle)."""
    out: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        out.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return out


def import_graph(src: Path = SRC, root: str = ROOT) -> dict[str, set[str]]:
    """Module -> modules of ``root`` it imports (anywhere in its body)."""
    modules = _modules(src, root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _runtime_nodes(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node, module, modules)
                if base is None:
                    continue
                # ``from pkg import name`` runs ``pkg/__init__`` and reads a
                # name from it, so it depends on ``pkg``; when ``name`` is a
                # submodule it also depends on that submodule.
                targets.append(base)
                targets += [
                    f"{base}.{alias.name}"
                    for alias in node.names
                    if f"{base}.{alias.name}" in modules
                ]
            for target in targets:
                owner = _owning_module(target, modules)
                if owner is not None and owner != module:
                    graph[module].add(owner)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(found)


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    arrows = [f"    {a} -> {b}" for a in component for b in sorted(graph[a]) if b in members]
    return " <-> ".join(component) + "\n" + "\n".join(arrows)


def test_graph_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import f\n")
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n    return b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from .. import a\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nfrom toy import f\nif TYPE_CHECKING:\n"
        "    from toy.sub import b\n"
    )
    graph = import_graph(tmp_path, "toy")
    assert graph["toy"] == {"toy.a"}
    assert graph["toy.a"] == {"toy.sub", "toy.sub.b"}
    assert graph["toy.sub.b"] == {"toy", "toy.a"}
    assert graph["toy.c"] == {"toy"}
    assert cycles(graph) == [["toy", "toy.a", "toy.sub.b"]]


def test_package_importing_its_submodules_is_not_a_circle_until_one_imports_back(
    tmp_path: Path,
) -> None:
    pkg = tmp_path / "toy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from toy.a import f\n")
    (pkg / "a.py").write_text("def f():\n    return 1\n")
    assert cycles(import_graph(tmp_path, "toy")) == []
    (pkg / "a.py").write_text("def f():\n    from toy import g\n    return g\n")
    assert cycles(import_graph(tmp_path, "toy")) == [["toy", "toy.a"]]


def test_no_import_cycles_in_src() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import circles in src/interplab:\n" + "\n".join(
        _describe(c, graph) for c in found
    )
