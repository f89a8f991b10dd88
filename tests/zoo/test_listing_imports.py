"""Listing the zoo imports no torch, its declarations match the families, and `verified`.

The honest check that listing is cheap is what a fresh interpreter has imported after it:
torch takes seconds to import, so a listing that imports it cannot be fast. Wall time is
measured by benchmarks/zoo_listing.py, never asserted here.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from interplab.errors import InterplabError
from interplab.zoo import loader, registry


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


_LIST = """
import importlib.abc, json, sys, traceback

class _Who(importlib.abc.MetaPathFinder):  # records which interplab module first imports torch
    def find_spec(self, name, path, target=None):
        if name == "torch" and not hasattr(self, "seen"):
            self.seen = [f"{{f.filename.split('src/')[-1]}}:{{f.lineno}}"
                         for f in traceback.extract_stack() if "interplab" in f.filename]
            print("torch imported via", " <- ".join(self.seen[::-1]), file=sys.stderr)
        return None

sys.meta_path.insert(0, _Who())
from typer.testing import CliRunner
{app}
r = CliRunner().invoke(app, {args!r})
assert r.exit_code == 0, r.output
{check}
print(json.dumps(sorted(m for m in ("torch", "numpy") if m in sys.modules)))
"""


@pytest.mark.parametrize("args", [["zoo"], ["zoo", "--json", "-"], ["zoo", "--help"]])
def test_interplab_zoo_lists_without_importing_torch(args):
    """The whole CLI, as `interplab zoo` runs it: `interplab.cli.main` and the listing."""
    check = (
        "rows = json.loads(r.stdout); assert len(rows) > 40\n"
        "assert all({'family', 'tags', 'verified'} <= set(row) for row in rows)"
        if "--json" in args
        else "assert 'compiled-reverse' in r.output or 'Usage' in r.output"
    )
    out = _fresh(_LIST.format(app="from interplab.cli.main import app", args=args, check=check))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "torch" not in json.loads(out.stdout.strip().splitlines()[-1]), (
        "listing the zoo imported torch: "
        + out.stderr[-500:]
        + " (trace it with python -X importtime -c 'import interplab.cli.main')"
    )


def test_the_zoo_command_alone_lists_without_importing_torch():
    """The zoo command and the registry, mounted alone (isolates them from other commands)."""
    app = (
        "import typer\nfrom interplab.cli import zoo_cmd\n"
        "app = typer.Typer(add_completion=False)\n"
        "@app.callback()\ndef main() -> None: pass\n"
        "zoo_cmd.register(app)\n"
        "from interplab.zoo.registry import entry, names\n"
        "assert len(names()) > 40 and entry('credit-rule').family == 'interplab.zoo.tabular'\n"
    )
    out = _fresh(_LIST.format(app=app, args=["zoo", "--json", "-"], check=""))
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []  # neither torch nor numpy


def test_each_declaration_matches_its_family():
    """DECLARED is the one copy that can drift: it must list what each family's entries() do.
    Checked in a fresh interpreter: test helpers add tiny organisms to family specs (e.g.
    tests/data_attribution_helpers.py), which are no part of the shipped zoo."""
    code = """
import importlib, json
from interplab.zoo.registry import DECLARED, _shipped
diff = {}
for module, declared in DECLARED.items():
    d = {x.name: [x.kind, x.description, sorted(x.tags)] for x in declared + _shipped(module)}
    f = {e.name: [e.kind, e.description, sorted(e.tags)] for e in importlib.import_module(module).entries()}
    if d != f:
        diff[module] = {"declared only": {k: d[k] for k in d if d.get(k) != f.get(k)},
                        "family only": {k: f[k] for k in f if d.get(k) != f.get(k)}}
print(json.dumps(diff))
"""
    out = _fresh(code)
    assert out.returncode == 0, out.stderr[-2000:]
    diff = json.loads(out.stdout.strip().splitlines()[-1])
    assert diff == {}, f"update interplab.zoo.registry.DECLARED to match the families: {diff}"


def test_every_torch_family_is_declared():
    """A built-in family absent from DECLARED is imported to be listed: only torch-free ones."""
    undeclared = [m for m in registry.FAMILIES if m not in registry.DECLARED]
    code = (
        "import importlib, json, sys\n"
        f"for m in {undeclared!r}: importlib.import_module(m).entries()\n"
        "print(json.dumps('torch' in sys.modules))"
    )
    out = _fresh(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip()) is False, f"{undeclared} import torch: declare them"


def test_a_declared_entry_builds_with_its_familys_builder(monkeypatch):
    from interplab.zoo import tabular

    monkeypatch.setattr(tabular, "get", lambda name, seed=0: ("built by tabular", name))
    assert registry.get("credit-rule") == ("built by tabular", "credit-rule")
    e = registry.entry("credit-rule")
    assert e.family == "interplab.zoo.tabular" and "quick" in e.tags


def test_a_declared_name_its_family_no_longer_defines_fails_naming_the_fix(monkeypatch):
    """A family not imported yet is listed from its declaration; building a declared name the
    family does not define is a one-line error naming the fix."""
    module = "tests.zoo.not_imported_family"
    monkeypatch.setattr(registry, "FAMILIES", (module,))
    monkeypatch.setitem(registry.DECLARED, module, (registry._d("gone", "trained", "x", "t"),))
    monkeypatch.setattr(registry, "_family", lambda m: SimpleNamespace(entries=lambda: []))
    monkeypatch.setattr(registry, "_LOADED", False)
    monkeypatch.setattr(registry, "_REGISTRY", {})
    assert module not in sys.modules and registry.names() == ["gone"]
    assert registry.entry("gone").family == module
    with pytest.raises(InterplabError, match="update DECLARED"):
        registry.get("gone")


@pytest.fixture
def toy_family(tmp_path, monkeypatch):
    """The toy family (tests/zoo/toy_family.py) in a cache of its own."""
    monkeypatch.setenv("INTERPLAB_CACHE", str(tmp_path))
    module = importlib.import_module("tests.zoo.toy_family")
    registry.add_family(module.__name__, truth="planted", organism=module.organism)
    yield module
    registry.remove_family(module.__name__)
    sys.modules.pop(module.__name__, None)


def _verified() -> dict[str, object]:
    from interplab.cli.main import app

    result = CliRunner().invoke(app, ["zoo", "--json", "-"])
    assert result.exit_code == 0, result.output
    return {r["name"]: r["verified"] for r in json.loads(result.stdout)}


def test_verified_is_what_loading_through_the_contract_recorded(toy_family):
    import interplab as ip

    before = _verified()
    assert before["toy-reason"] == before["toy-broken"] == loader.NOT_BUILT
    ip.organism("toy-reason")
    with pytest.raises(InterplabError, match="not in the weights"):
        ip.organism("toy-broken")
    after = _verified()
    assert after["toy-reason"] is True and after["toy-broken"] is False
    assert after["compiled-reverse"] == loader.NOT_BUILT  # never loaded in this cache
    assert loader.verification("toy-reason", seed=1) == loader.NOT_BUILT  # seed 0 only


def test_an_unreadable_or_foreign_record_counts_as_not_built(toy_family):
    import interplab as ip

    ip.organism("toy-reason")
    path = loader._record_path("toy-reason", 0)
    assert path is not None and loader.verification("toy-reason") is True
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "interplab": "0.0.0-other"}))
    assert loader.verification("toy-reason") == loader.NOT_BUILT
    path.write_text("{not json")
    assert loader.verification("toy-reason") == loader.NOT_BUILT
    assert loader.verification("../escape") == loader.NOT_BUILT  # never a path outside
