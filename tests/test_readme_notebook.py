"""The README's notebook example runs as written (the block after `<!-- notebook -->`)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- notebook -->\s*```python\n(.*?)```", text, re.S)
    assert found, "README.md has no ```python block after <!-- notebook -->"
    return found.group(1)


def test_the_notebook_example_needs_one_import():
    code = _example()
    imports = [line for line in code.splitlines() if re.match(r"\s*(import|from)\s", line)]
    assert imports == ["import interplab as ip"], imports


def test_the_notebook_example_runs_and_prints_what_it_says():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_example(), str(README), "exec"), {"__name__": "__readme__"})
    printed = out.getvalue()
    # one line per registered circuit method, each with an AUROC in [0, 1]
    lines = [line for line in printed.splitlines() if "AUROC" in line]
    import interplab as ip

    assert len(lines) == len(ip.methods.names("circuits"))
    aurocs = [float(re.search(r"AUROC (\S+)", line).group(1)) for line in lines]
    assert all(0.0 <= a <= 1.0 for a in aurocs)
    assert "['c', 'b', 'a']" in printed  # the compiled program reverses its input


def test_the_namespace_holds_only_the_public_api():
    import interplab as ip

    names = set(dir(ip))
    assert names == set(ip.__all__) | {
        "bench",
        "compile",
        "core",
        "eval",
        "methods",
        "models",
        "report",
        "tasks",
        "zoo",
    }
    assert not names & {"Any", "TYPE_CHECKING", "importlib", "annotations"}
    for name in ip.__all__:
        assert getattr(ip, name) is not None  # every listed name resolves
    assert ip.compile.get_program is ip.get_program  # subpackages need no import of their own
