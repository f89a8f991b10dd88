"""Trained organisms: accuracy, honest ground truth (verified by ablation), discovery beats random.
Training takes up to a minute or two each, so everything here is slow-marked."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import UnknownNameError
from interplab.eval.circuits import edge_auroc
from interplab.methods.circuits import EdgePatcher, find_circuit
from interplab.zoo.organisms import ORGANISMS, load_organism


def test_unknown_organism_lists_valid_names():
    with pytest.raises(UnknownNameError, match="Valid organisms: modadd, prevtoken"):
        load_organism("inducton")


@pytest.fixture(scope="session")
def organisms():
    return {name: load_organism(name) for name in ORGANISMS}


@pytest.mark.slow
@pytest.mark.parametrize("name", ORGANISMS)
def test_organism_is_accurate_and_cached(organisms, name):
    org = organisms[name]
    assert org.info["accuracy"] >= 0.99
    again = load_organism(name)  # from the safetensors cache: same weights, same outputs
    torch.testing.assert_close(again.model.run(org.task.clean), org.model.run(org.task.clean))


@pytest.mark.slow
@pytest.mark.parametrize("ablation", ("zero", "mean", "resample"))
@pytest.mark.parametrize("name", ORGANISMS)
def test_ground_truth_is_verified_by_ablation(organisms, name, ablation):
    org = organisms[name]
    eng = EdgePatcher(org.model, org.task, ablation, metric="accuracy")
    keep = eng.index.mask(org.ground_truth[ablation].edges)
    assert eng.score_keep(keep) >= 0.95            # the circuit alone does the task
    assert eng.score_keep(1 - keep) <= 0.25        # without it, near chance
    assert len(org.ground_truth[ablation]) < eng.n_edges


@pytest.mark.slow
@pytest.mark.parametrize("method", ("patch_edges", "acdc", "eap", "eap_ig", "activation_norm"))
@pytest.mark.parametrize("name", ORGANISMS)
def test_discovery_beats_random(organisms, name, method):
    org = organisms[name]
    truth = org.ground_truth["resample"]
    metric = "logit_diff" if method.startswith("eap") else "kl"
    res = find_circuit(method, org.model, org.task, ablation="resample", metric=metric)
    rnd = find_circuit("random", org.model, org.task, ablation="resample")
    assert edge_auroc(res, truth) > edge_auroc(rnd, truth) + 0.1
