"""The rule: no ground truth is computed with the code of a method it scores (``interplab.methods``),
nor on the samples it scores.

The samples are checked on what was *used*: every circuit organism records digests of the rows its
truth was computed on (the pairs handed to the RASP evaluator, the rows a trained model was run on
while its roles were read) and :meth:`Organism.check_independent` compares them with the rows of
the scoring task. The mutation tests at the end make a truth read the scored rows and show the
check refuses it; a check that could not fail would let them through."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from interplab.errors import VerificationError

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
    out = subprocess.run(
        [sys.executable, "-c", BLOCKED + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_compiled_truth_needs_no_method_code():
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


def test_compiled_truth_used_no_scoring_row():
    from interplab.zoo.loader import organism

    org = organism("compiled-reverse")
    record = org.check_independent()
    assert record["overlap"] == 0
    assert record["truth_rows"] > 0 and record["scoring_rows"] > 0
    # the recorded rows are the rows the derivation was handed: as many as the held-out pairs hold
    task = org.tasks["score"]
    assert record["scoring_rows"] == len(
        {tuple(r) for r in task.clean.tolist() + task.corrupted.tolist()}
    )


def test_a_compiled_truth_derived_on_the_scoring_pairs_is_refused(monkeypatch):
    """Mutation: derive the truth on the scoring pairs themselves."""
    from interplab.zoo import circuit_organisms as co

    monkeypatch.setattr(co, "held_out_pairs", lambda spec, avoid, n, seed: list(avoid))
    co.compiled_organism.cache_clear()
    try:
        with pytest.raises(
            VerificationError, match="truth was computed on .* rows methods are scored on"
        ):
            co.compiled_organism("reverse", 0)
    finally:
        co.compiled_organism.cache_clear()


def test_provenance_is_recorded_per_job():
    from interplab.bench.tracks import Job
    from interplab.bench.tracks.circuits import run_job

    out = run_job(Job("circuits", "compiled-reverse", "random", "resample", 0))
    prov = out.artifacts["provenance"]
    assert prov["overlap"] == 0 and prov["truth_digest"] != prov["scoring_digest"]
    assert out.artifacts["faithfulness"]["pairs"] == "held-out"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["trained-prevtoken", "trained-modadd", "trained-induction"])
def test_trained_truth_calls_no_method_code_and_reads_no_scored_row(name):
    """Trace every Python call while the planted truth is read off the trained model, and record
    every row the truth code runs the model on: disjoint from the scored rows (induction included,
    though its truth is then refused by its check in the weights)."""
    from interplab.zoo import organisms
    from interplab.zoo.contract import recording_inputs, tensor_rows

    short = name.removeprefix("trained-")
    model = organisms.cached_organism_model(short)
    task = organisms._SPECS[short].task()
    seen: set[str] = set()

    def tracer(frame, event, arg):
        if event == "call":
            seen.add(frame.f_code.co_filename)

    with recording_inputs(model.model) as rows:
        sys.setprofile(tracer)
        try:
            organisms.read_truth(short, model, task)
        finally:
            sys.setprofile(None)
    methods_dir = os.path.join("interplab", "methods") + os.sep
    assert not [f for f in seen if methods_dir in f]
    assert rows.digests and not rows.digests & tensor_rows(task.clean, task.corrupted)


@pytest.mark.slow
def test_a_trained_truth_that_reads_the_scored_rows_is_refused(monkeypatch):
    """Mutation: read prevtoken's roles on the task's own rows (the truth seed set to the task's)."""
    from interplab.zoo import circuit_organisms as co
    from interplab.zoo import organisms

    monkeypatch.setattr(organisms, "TRUTH_SEED", organisms.TASK_SEED)
    co.trained_organism.cache_clear()
    try:
        with pytest.raises(VerificationError, match="truth was computed on"):
            co.trained_organism("prevtoken", 0)
    finally:
        co.trained_organism.cache_clear()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["siit-shift_by", "siit-reverse"])  # those whose truth is released
def test_siit_truth_needs_no_method_code_and_no_scoring_input(name):
    from interplab.zoo.loader import organism
    from interplab.zoo.siit_truth import siit_truth

    org = organism(name)  # trains the organism into this session's cache if needed
    assert org.check_independent()["truth_rows"] > 0
    scoring = {tuple(x) for x in org.info["scoring_inputs"]}
    got = _run_blocked(f"""
        import json, sys
        from interplab.zoo.siit_truth import siit_truth
        t = siit_truth({name!r}, 0, exclude={sorted(scoring)!r})
        print(json.dumps({{"edges": {{a: sorted(map(str, c.edges)) for a, c in t.per_ablation.items()}},
                          "methods": [m for m in sys.modules if m.startswith("interplab.methods")]}}))
    """)
    assert got["methods"] == []
    released = org.truth.per_ablation  # the ablations that passed their check in the weights
    assert {a: got["edges"][a] for a in released} == {
        a: sorted(map(str, c.edges)) for a, c in released.items()
    }
    assert min(siit_truth(name, 0, exclude=scoring).check["iia"].values()) >= 0.95
