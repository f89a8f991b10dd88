"""Trained organisms: accuracy, honest ground truth (verified by ablation), discovery beats random.
Training takes up to a minute or two each, so everything here is slow-marked."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import UnknownNameError
from interplab.eval.circuits import edge_auroc
from interplab.methods.circuits import EdgePatcher, find_circuit
from interplab.zoo.organisms import ORGANISMS, load_organism

# the induction organism is scored inside randomly placed repeats; it is accurate, not perfect
MIN_ACCURACY = {"induction": 0.95}


def test_unknown_organism_lists_valid_names():
    with pytest.raises(UnknownNameError, match="Valid organisms: induction, modadd, prevtoken"):
        load_organism("inducton")


@pytest.fixture(scope="session")
def organisms():
    return {name: load_organism(name) for name in ORGANISMS}


@pytest.mark.slow
@pytest.mark.parametrize("name", ORGANISMS)
def test_organism_is_accurate_and_cached(organisms, name):
    org = organisms[name]
    assert org.info["accuracy"] >= MIN_ACCURACY.get(name, 0.99)
    again = load_organism(name)  # from the safetensors cache: same weights, same outputs
    torch.testing.assert_close(again.model.run(org.task.clean), org.model.run(org.task.clean))


@pytest.mark.slow
@pytest.mark.parametrize("ablation", ("zero", "mean", "resample"))
@pytest.mark.parametrize("name", ORGANISMS)
def test_ground_truth_is_verified_by_ablation(organisms, name, ablation):
    org = organisms[name]
    eng = EdgePatcher(org.model, org.task, ablation, metric="accuracy")
    keep = eng.index.mask(org.ground_truth[ablation].edges)
    if name == "induction":  # 90% of the clean accuracy (the brief's bar for a trained circuit)
        assert eng.score_keep(keep) >= 0.9 * org.info["accuracy"]
    else:
        assert eng.score_keep(keep) >= 0.95        # the circuit alone does the task
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


@pytest.mark.slow
def test_induction_roles_and_distractors(organisms):
    """Roles come from attention scores; the circuit is prev-token -> induction (K-composition),
    and at least one head of each run stays outside it."""
    org = organisms["induction"]
    info = org.info
    assert info["previous_token_heads"] and info["induction_heads"] and info["distractor_heads"]
    assert all(h.startswith("L0.") for h in info["previous_token_heads"])
    assert all(h.startswith("L1.") for h in info["induction_heads"])
    assert max(info["prev_token_score"]) > 0.5 and min(info["prev_token_score"]) < 0.35
    assert min(info["induction_score"][int(h[-1])] for h in info["induction_heads"]) > 0.8
    for ablation, truth in org.ground_truth.items():
        k_edges = [e for e in truth if e.channel == "k" and e.sender.kind == "head"]
        assert k_edges and all(e.sender.layer == 0 and e.receiver.layer == 1 for e in k_edges)
        assert any(e.sender.kind == "pos_embed" for e in truth) == (ablation == "zero")
        heads = {n for n in truth.nodes if n.kind == "head"}
        assert len(heads) < org.model.cfg.n_layers * org.model.cfg.n_heads


@pytest.mark.slow
def test_induction_repeat_is_not_positional(organisms):
    """The repeat's start and its distance from the first occurrence vary across the task rows,
    so no fixed position or offset predicts the scored tokens."""
    task = organisms["induction"].task
    first = [int(((task.clean[i] == task.clean[i, -1]).nonzero()[0])) for i in range(task.batch_size)]
    distances = {task.clean.shape[1] - 1 - f for f in first}
    assert len(distances) > 5


def test_corrupt_organism_cache_is_rebuilt_with_a_warning(tmp_path, tiny_model, tokens, caplog):
    import logging

    from interplab.zoo.organisms import cached_model

    calls = []

    def train():
        calls.append(1)
        return tiny_model, {"note": "fresh"}

    directory = tmp_path / "cache"
    cached_model(directory, "tiny", train)
    assert len(calls) == 1
    model, info = cached_model(directory, "tiny", train)  # from the cache
    assert len(calls) == 1 and info["note"] == "fresh"
    weights = directory / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="interplab.zoo"):
        model, _ = cached_model(directory, "tiny", train)
    assert len(calls) == 2, "a corrupt cache must be retrained"
    assert "rebuilding organism tiny" in caplog.text and "corrupt" in caplog.text
    assert torch.equal(model.run(tokens), tiny_model.run(tokens))
    cached_model(directory, "tiny", train)  # the rewritten cache loads cleanly
    assert len(calls) == 2
