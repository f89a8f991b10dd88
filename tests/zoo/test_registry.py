"""The zoo's one registry: every family registers into it, and zoo modules import in a tree."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import interplab.zoo
from interplab.errors import InterplabError, UnknownNameError
from interplab.zoo import registry

ZOO_DIR = Path(interplab.zoo.__file__).parent


def _zoo_imports(path: Path) -> set[str]:
    """Every interplab.zoo.* module ``path`` imports, at top level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("interplab.zoo")
        ):
            if node.module == "interplab.zoo":
                found |= {f"interplab.zoo.{a.name}" for a in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("interplab.zoo.")}
    return {m for m in found if (ZOO_DIR / f"{m.rsplit('.', 1)[-1]}.py").is_file()}


def test_zoo_modules_import_each_other_without_a_cycle():
    graph = {
        f"interplab.zoo.{p.stem}": _zoo_imports(p)
        for p in ZOO_DIR.glob("*.py")
        if p.stem != "__init__"
    }
    assert graph["interplab.zoo.registry"] == set(), "the registry must import no zoo module"
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        if state.get(m) == 1:
            pytest.fail("import cycle: " + " -> ".join(path + [m]))
        if state.get(m) == 2:
            return
        state[m] = 1
        for dep in graph.get(m, ()):
            visit(dep, path + [m])
        state[m] = 2

    for module in graph:
        visit(module, [])
    assert not (ZOO_DIR / "catalog.py").exists(), "one name per role: the registry, not a catalog"


def test_each_zoo_module_imports_alone_in_a_fresh_interpreter():
    """Importing the registry loads no family; every family module imports first (no cycle
    hides behind an import order), each after every interplab module is forgotten."""
    modules = [
        f"interplab.zoo.{p.stem}" for p in sorted(ZOO_DIR.glob("*.py")) if p.stem != "__init__"
    ]
    script = f"""
import importlib, sys
import torch  # kept between rounds: only interplab modules are forgotten
import interplab.zoo.registry as r
loaded = [m for m in r.FAMILIES if m in sys.modules]
assert not loaded, f"importing the registry loaded {{loaded}}"
for name in {modules!r}:
    for m in [m for m in sys.modules if m == "interplab" or m.startswith("interplab.")]:
        del sys.modules[m]
    importlib.import_module(name)
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_every_family_is_listed_by_interplab_zoo_json():
    from interplab.cli.main import app

    result = CliRunner().invoke(app, ["zoo", "--json", "-"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    listed = {r["name"]: r["family"] for r in rows}
    assert len(listed) == len(rows)
    for module in registry.FAMILIES:
        family = importlib.import_module(module)
        names = {e.name for e in family.entries()}
        assert {n: listed.get(n) for n in names} == {n: module.rsplit(".", 1)[-1] for n in names}
        if module not in registry.BY_NAME or module == "interplab.zoo.siit_generated":
            assert names, f"{module} lists no organism"  # (siit_generated: its shipped twins)
    for name in (
        "compiled-reverse",
        "trained-prevtoken",
        "random-2l",
        "siit-reverse",
        "credit-rule",
        "trojan-token",
        "digits-logreg",
    ):
        assert name in listed


def test_generated_organisms_resolve_by_name_without_being_built(monkeypatch):
    from interplab.zoo import generated

    built = []
    monkeypatch.setattr(generated, "load_generated", lambda name: built.append(name))
    e = registry.entry("generated-3-17")
    assert e.kind == "compiled" and "generated" in e.tags and e.family == "interplab.zoo.generated"
    assert built == [] and "generated-3-17" not in registry.names()
    with pytest.raises(UnknownNameError):
        registry.entry("generated-3-x")


def test_a_name_defined_by_two_families_is_an_error(monkeypatch):
    one = registry.ZooEntry("twice", "trained", "a", lambda: None)
    fake = {
        "a.one": SimpleNamespace(entries=lambda: [one]),
        "a.two": SimpleNamespace(entries=lambda: [one]),
    }
    monkeypatch.setattr(registry, "FAMILIES", tuple(fake))
    monkeypatch.setattr(registry, "_family", fake.__getitem__)
    monkeypatch.setattr(registry, "_LOADED", False)
    monkeypatch.setattr(registry, "_REGISTRY", {})
    with pytest.raises(InterplabError, match="'twice' is defined by both a.one and a.two"):
        registry.names()
