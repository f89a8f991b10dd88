"""Trained organisms: accuracy, honest ground truth (verified by ablation, whole circuit and edge by
edge), discovery beats random. Training takes up to a minute or two each, so everything that
trains is slow-marked."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import UnknownNameError, VerificationError
from interplab.eval.circuits import edge_auroc
from interplab.methods.circuits import EdgePatcher, find_circuit
from interplab.zoo import verify
from interplab.zoo.organisms import ORGANISMS, check_task, heldout_task, load_organism

# the induction organism is scored inside randomly placed repeats; it is accurate, not perfect
MIN_ACCURACY = {"induction": 0.95}


#: organisms whose planted truth fails the single-edge check today (issue 21): the loader refuses
#: them. induction: the roles put two layer-0 heads (previous-token scores 0.26, 0.36) outside
#: the circuit, yet their token reads matter alone (tokens->L0.H1[v], tokens->L0.H3[v] under every
#: ablation), and L0.H0 feeds four induction heads whose single K edges each stay below 5 % of
#: the whole (zero, mean): a fan-out no single-edge rule can credit
FAILS_EDGE_CHECK = {"induction"}


def test_unknown_organism_lists_valid_names_in_every_entry_point():
    for fn in (check_task, heldout_task, load_organism):
        with pytest.raises(UnknownNameError, match="Valid organisms: induction, modadd, prevtoken"):
            fn("inducton")


@pytest.mark.parametrize("name", ORGANISMS)
def test_truth_is_checked_on_rows_the_task_does_not_score(name):
    from interplab.zoo.organisms import _SPECS

    task, held = _SPECS[name].task(), check_task(name)
    rows = lambda t: {tuple(r) for x in (t.clean, t.corrupted) for r in x.tolist()}  # noqa: E731
    assert not rows(task) & rows(held)
    assert held.clean.shape[1] == task.clean.shape[1]
    assert held.scored_positions == task.scored_positions


@pytest.fixture(scope="session")
def organisms():
    # verify=False: these tests are about the models; the edge check has its own test below
    return {name: load_organism(name, verify=False) for name in ORGANISMS}


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            n,
            marks=pytest.mark.xfail(
                n in FAILS_EDGE_CHECK,
                raises=VerificationError,
                strict=True,
                reason="planted truth fails the single-edge check (see FAILS_EDGE_CHECK)",
            ),
        )
        for n in ORGANISMS
    ],
)
def test_truth_agrees_with_single_edge_ablation_in_the_weights(name):
    """Under zero, mean and resample ablation on held-out rows: every truth edge matters alone
    (effect > 5 % of the whole model's) and every edge that matters is in the truth."""
    org = load_organism(name)  # raises VerificationError when the check fails
    summary = org.info["truth_check"]
    assert summary["ok"] and summary["rel_tol"] == verify.REL_TOL
    for ablation in ("zero", "mean", "resample"):
        row = summary[ablation]
        assert row["ok"] and row["n_truth"] == len(org.ground_truth[ablation])
        assert row["min_truth_over_tol"] > 1 and row["max_other_over_tol"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ORGANISMS)
def test_organism_is_accurate_and_cached(organisms, name):
    org = organisms[name]
    assert org.info["accuracy"] >= MIN_ACCURACY.get(name, 0.99)
    again = load_organism(name, verify=False)  # from the cache: same weights, same outputs
    torch.testing.assert_close(again.model.run(org.task.clean), org.model.run(org.task.clean))


#: (organism, ablation) cells where the per-edge truth, each edge checked alone, is not jointly
#: sufficient: zeroing *all* the reads that are inert one at a time moves the output (prevtoken:
#: every token read on Q/K, circuit alone 0.89 accuracy; modadd: both copies of every constant,
#: 0.73). A per-edge truth cannot hold both properties there (issue-21 report)
NOT_JOINTLY_SUFFICIENT = {("prevtoken", "zero"), ("modadd", "zero")}


@pytest.mark.slow
@pytest.mark.parametrize("ablation", ("zero", "mean", "resample"))
@pytest.mark.parametrize("name", ORGANISMS)
def test_ground_truth_is_verified_by_ablation(organisms, name, ablation, request):
    if (name, ablation) in NOT_JOINTLY_SUFFICIENT:
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                raises=AssertionError,
                reason="single-edge truth not jointly sufficient",
            )
        )
    org = organisms[name]
    eng = EdgePatcher(org.model, org.task, ablation, metric="accuracy")
    keep = eng.index.mask(org.ground_truth[ablation].edges)
    if name == "induction":  # 90% of the clean accuracy (the brief's bar for a trained circuit)
        assert eng.score_keep(keep) >= 0.9 * org.info["accuracy"]
    else:
        assert eng.score_keep(keep) >= 0.95  # the circuit alone does the task
    assert eng.score_keep(1 - keep) <= 0.25  # without it, near chance
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
    first = [int((task.clean[i] == task.clean[i, -1]).nonzero()[0]) for i in range(task.batch_size)]
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


@pytest.mark.slow
def test_edge_check_refuses_the_old_design_reasoning():
    """Mutations of the planted truths: the pre-issue-21 prevtoken reasoning (the token embedding
    read on Q/K matters under zero ablation) and a modadd truth without one head's value read."""
    from interplab.core.circuit import Circuit, Edge, Node
    from interplab.zoo.organisms import check_organism_truth

    prev = load_organism("prevtoken")
    heads = [n for n in prev.ground_truth["zero"].nodes if n.kind == "head"]
    old = [Edge(Node.tok_embed(), h, ch) for h in heads for ch in ("q", "k")]
    truth = dict(prev.ground_truth)
    truth["zero"] = Circuit.from_edges(set(truth["zero"].edges) | set(old))
    check = check_organism_truth("prevtoken", prev.model, truth, None)
    assert {e for e, _ in check.ablations["zero"].inert} == {str(e) for e in old}
    with pytest.raises(VerificationError, match="zero: 8 of 24 truth edges are inert"):
        check.raise_if_failed()

    mod = load_organism("modadd")
    cut = Edge(Node.tok_embed(), Node.attn_head(0, 0), "v")
    truth = {a: Circuit.from_edges(set(c.edges) - {cut}) for a, c in mod.ground_truth.items()}
    check = check_organism_truth("modadd", mod.model, truth, None)
    for c in check.ablations.values():
        assert [e for e, _ in c.missing] == [str(cut)] and not c.inert
