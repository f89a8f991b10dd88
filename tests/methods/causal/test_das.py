"""DAS recovers the subspace of a compiled variable."""

from __future__ import annotations

import random

import pytest
import torch

from interplab.methods.causal import output, run_program
from interplab.methods.causal.das_training import (
    active_subspace,
    das,
    overlap_within,
    principal_angles,
    subspace_overlap,
)
from tests.eval.causal_cases import compiled


def test_overlap_of_identical_and_orthogonal_subspaces():
    eye = torch.eye(6)
    assert subspace_overlap(eye[:, :2], eye[:, :2]) == pytest.approx(1.0)
    assert subspace_overlap(eye[:, :2], eye[:, 2:4]) == pytest.approx(0.0, abs=1e-6)
    assert principal_angles(eye[:, :2], eye[:, [0, 3]]).tolist() == pytest.approx(
        [0.0, 1.5708], abs=1e-4
    )


@pytest.mark.slow
def test_das_recovers_the_compiled_hist_subspace():
    model, inputs = compiled("hist")
    prog, var = model.program, "hist"
    rng = random.Random(0)
    bases = [rng.choice(inputs) for _ in range(400)]
    sources = [rng.choice(inputs) for _ in range(400)]
    outs = [output(prog, b, {var: run_program(prog, s)[var]}) for b, s in zip(bases, sources)]
    index = {repr(v): i for i, v in enumerate(model.output_values)}
    labels = torch.tensor([[index[repr(v)] for v in o] for o in outs])
    truth = model.ground_truth.variables[var]
    used = sorted({v for xs in inputs for v in run_program(prog, xs)[var]})
    dims = [
        d
        for d, direction in zip(truth.dims, (model.ground_truth.directions[i] for i in truth.dims))
        if direction.value in used
    ]
    true = torch.zeros(model.cfg.d_model, len(dims))
    true[dims, range(len(dims))] = 1.0
    result = das(
        model,
        truth.resid_site,
        model.encode(bases),
        model.encode(sources),
        labels,
        k=len(dims) - 1,
        steps=150,
        lr=2e-2,
    )  # one-hot: the sum direction is constant
    assert result.iia >= 0.95 and result.n_test == 100
    _, cache = model.run_with_cache(model.encode(inputs), [truth.resid_site])
    active = active_subspace(cache[truth.resid_site][:, 1:].reshape(-1, model.cfg.d_model))
    overlap = overlap_within(result.basis, true, active)
    chance = (len(dims) - 1) / active.shape[1]
    # Measured 0.75 vs chance 0.57 (seed 0): DAS finds a subspace that realises hist (IIA 1.0)
    # and leans into the true one, but not exactly (saturated compiled MLPs read it non-linearly).
    assert overlap > chance + 0.1, (overlap, chance, subspace_overlap(result.basis, true))
