"""The rule: no ground truth is computed with the code of a method it scores (``interplab.methods``),
nor on the samples it scores. One test per organism family of the circuits track."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

#: run in a fresh interpreter in which importing ``interplab.methods`` fails
BLOCKED = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "interplab.methods" or name.startswith("interplab.methods."):
            raise ImportError("ground truth must not import " + name)
        return None
sys.meta_path.insert(0, Block())
"""


def _run_blocked(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", BLOCKED + textwrap.dedent(code)],
                         capture_output=True, text=True, env=dict(os.environ), timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_compiled_truth_needs_no_method_code_and_no_scoring_pair():
    from interplab.bench.tracks.circuits import N_PAIRS, held_out_pairs
    from interplab.compile.programs import get_program

    got = _run_blocked("""
        import json
        from interplab.compile import derive_circuit
        from interplab.compile.programs import get_program
        spec = get_program("reverse")
        model = spec.compile()
        c = derive_circuit(model, spec.task_pairs(16, seed=99, length=5))
        print(json.dumps({"edges": len(c.edges), "designed": len(model.ground_truth.designed.edges),
                          "methods": [m for m in __import__("sys").modules if m.startswith("interplab.methods")]}))
    """)
    assert got["methods"] == [] and 0 < got["edges"] <= got["designed"]
    spec = get_program("reverse")
    scoring = spec.task_pairs(N_PAIRS, seed=0, length=spec.max_len)
    held = held_out_pairs(spec, scoring, 64, seed=0)
    used = {tuple(x) for p in scoring for x in p}
    assert len(held) == 64 and not used & {tuple(x) for p in held for x in p}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["siit-shift_by", "siit-generated-0-5"])  # library, generated twin
def test_siit_truth_needs_no_method_code_and_no_scoring_input(name):
    from interplab.bench.tracks.circuits import _siit
    from interplab.zoo.siit_truth import siit_truth

    org = _siit(name, 0)  # trains the organism into this session's cache if needed
    scoring = {tuple(x) for x in org.task_inputs}
    got = _run_blocked(f"""
        import json, sys
        from interplab.zoo.siit_truth import siit_truth
        t = siit_truth({name!r}, 0, exclude={sorted(scoring)!r})
        print(json.dumps({{"edges": {{a: sorted(map(str, c.edges)) for a, c in t.per_ablation.items()}},
                          "inputs": sorted(map(list, t.truth_inputs)),
                          "methods": [m for m in sys.modules if m.startswith("interplab.methods")]}}))
    """)
    assert got["methods"] == []
    assert not scoring & {tuple(x) for x in got["inputs"]}
    assert got["edges"] == {a: sorted(map(str, c.edges)) for a, c in org.truth.items()}
    assert min(siit_truth(name, 0, exclude=scoring).check["iia"].values()) >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("name", ["prevtoken", "modadd", "induction"])
def test_trained_truth_calls_no_method_code_and_reads_no_scored_sample(name):
    """Trace every Python call while the planted truth is read off the trained model."""
    import torch

    from interplab.zoo import organisms

    org = organisms.load_organism(name)
    spec = organisms._SPECS[name]
    seen: set[str] = set()

    def tracer(frame, event, arg):
        if event == "call":
            seen.add(frame.f_code.co_filename)

    sys.setprofile(tracer)
    try:
        spec.truth(org.model, org.task)
    finally:
        sys.setprofile(None)
    methods_dir = os.path.join("interplab", "methods") + os.sep
    assert not [f for f in seen if methods_dir in f]
    if name == "modadd":
        task_idx, truth_idx = organisms._modadd_split()
        assert not set(task_idx.tolist()) & set(truth_idx.tolist())
    elif name == "prevtoken":
        fresh = organisms._prev_batch(64, torch.Generator().manual_seed(organisms.TRUTH_SEED))
        rows = {tuple(r) for r in org.task.clean.tolist()}
        assert not rows & {tuple(r) for r in fresh.tolist()}
