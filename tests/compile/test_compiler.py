"""Integration: every library program compiles, agrees with the evaluator, and its residual
stream decodes to the evaluator's intermediate values at the sites the ground truth names."""

from __future__ import annotations

import random

import pytest

from interplab.compile import rasp
from interplab.compile.check import by_length, check_agreement, decoded_variables
from interplab.compile.ground_truth import values_equal
from interplab.compile.programs import LIBRARY
from interplab.core.sites import Component

from tests.compile.cases import CASES, IDS, compiled


def _quick_inputs(name: str, n: int) -> list[list]:
    inputs = LIBRARY[name].inputs()
    return random.Random(0).sample(inputs, min(n, len(inputs)))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_agreement_is_exact(case):
    model = compiled(case.program)
    report = check_agreement(model, model.program, _quick_inputs(case.program, case.quick_inputs))
    assert report.agreement == 1.0, report.mismatches
    assert model.numerical_output == case.numerical


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_agreement_on_every_declared_input(case):
    model = compiled(case.program)
    inputs = LIBRARY[case.program].inputs()
    report = check_agreement(model, model.program, inputs)
    assert report.inputs_checked == len(inputs) and report.agreement == 1.0, report.mismatches


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_residual_decodes_to_intermediate_values(case):
    model = compiled(case.program)
    truth = model.ground_truth
    for group in by_length(_quick_inputs(case.program, 60)).values():
        decoded = decoded_variables(model, group)
        for i, x in enumerate(group):
            want = rasp.evaluate_all(model.program, x)
            for label, var in truth.variables.items():
                assert values_equal(want[label], decoded[label][i]), (label, x, var.resid_site)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_ground_truth_names_sites_and_subspaces(case):
    model = compiled(case.program)
    truth = model.ground_truth
    assert truth.output == model.program.label
    sops = {e.label for e in rasp.walk(model.program) if isinstance(e, rasp.SOp)}
    assert set(truth.variables) == sops
    cfg = model.cfg
    for var in truth.variables.values():
        assert var.dims and all(0 <= d < cfg.d_model for d in var.dims)
        for site in var.sites:
            assert model.has_site(site)
            if site.component is Component.ATTN_RESULT:
                assert site.head < cfg.n_heads
        for d in var.dims:
            assert truth.directions[d].label == var.label
    assert cfg.d_model < 300


def test_models_are_small_and_layers_alternate():
    for name in ("reverse", "frac_prevs", "sort", "hist"):
        m = compiled(name)
        assert m.cfg.normalization == "none" and m.cfg.attention == "bidirectional"
        assert m.cfg.attn_scale == 1.0 and m.cfg.n_ctx == m.max_len + 1
