"""Integration: every library program compiles, agrees with the evaluator, and its residual
stream decodes to the evaluator's intermediate values at the sites the ground truth names."""

from __future__ import annotations

import random

import pytest
import torch

from interplab.compile import rasp
from interplab.compile.agreement import by_length, check_agreement, decoded_variables
from interplab.compile.ground_truth import values_equal
from interplab.compile.programs import LIBRARY
from interplab.core.sites import Component, Site
from tests.compile.cases import CASES, IDS, PARAMS, compiled


def _quick_inputs(name: str, n: int) -> list[list]:
    inputs = LIBRARY[name].inputs()
    return random.Random(0).sample(inputs, min(n, len(inputs)))


@pytest.mark.parametrize("case", PARAMS)
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


@pytest.mark.parametrize("case", PARAMS)
def test_residual_decodes_to_intermediate_values(case):
    model = compiled(case.program)
    truth = model.ground_truth
    for group in by_length(_quick_inputs(case.program, 60)).values():
        decoded = decoded_variables(model, group)
        for i, x in enumerate(group):
            want = rasp.evaluate_all(model.program, x)
            for label, var in truth.variables.items():
                assert values_equal(want[label], decoded[label][i]), (label, x, var.resid_site)


@pytest.mark.parametrize("name", ["reverse", "sort", "shuffle_dyck", "induction"])
def test_variables_stay_readable_in_every_later_layer(name):
    model = compiled(name)
    truth = model.ground_truth
    group = by_length(_quick_inputs(name, 40))[max(by_length(_quick_inputs(name, 40)))]
    later = [Site(Component.RESID_POST, layer) for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(model.encode(group), sites=later)
    wants = [rasp.evaluate_all(model.program, x) for x in group]
    for label, var in truth.variables.items():
        first = var.layer if var.layer is not None else 0
        for layer in range(first, model.cfg.n_layers):
            got = truth.decode_residual(cache[later[layer]], label)
            for want, row in zip(wants, got):
                assert values_equal(want[label], row), (label, layer)


@pytest.mark.parametrize("case", PARAMS)
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
        if any(s.component is Component.MLP_OUT for s in var.sites):
            start, stop = var.mlp_neurons
            assert 0 <= start < stop <= cfg.d_mlp
    assert cfg.d_model < 300


def test_models_are_small_and_layers_alternate():
    for name in ("reverse", "frac_prevs", "sort", "hist"):
        m = compiled(name)
        assert m.cfg.normalization == "none" and m.cfg.attention == "bidirectional"
        assert m.cfg.attn_scale == 1.0 and m.cfg.n_ctx == m.max_len + 1
