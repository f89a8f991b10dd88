"""Perturbed organisms: the compiled generated organism with seeded noise on every weight matrix
(so the zeros off the designed circuit become nonzero), fine-tuned back to its program on one
half of the inputs, held to exact-match accuracy on the other half, with its per-ablation truth
released only where single-edge ablation in the perturbed weights agrees with it."""

from __future__ import annotations

import pytest
import torch

from interplab.compile import rasp
from interplab.errors import ConfigError, UnknownNameError
from interplab.zoo import circuit_organisms as co
from interplab.zoo import perturbed as pz


def _matrices() -> dict[str, torch.Tensor]:
    w = torch.zeros(200, 50)
    w[:20, :5] = torch.arange(1, 101, dtype=torch.float32).view(20, 5)  # a sparse "circuit"
    return {
        "W_w": w,
        "b": torch.tensor([0.0, 3.0, 0.0]),
        "b_Q": torch.zeros(2, 3),  # a bias with two axes (attention biases are [heads, d_head])
        "W_empty": torch.zeros(4, 4),
    }


def test_rms_nonzero_reads_only_the_nonzero_entries():
    assert pz.rms_nonzero(torch.tensor([[0.0, 3.0], [0.0, -4.0]])) == pytest.approx(12.5**0.5)
    assert pz.rms_nonzero(torch.zeros(3, 3)) == 0.0


def test_noise_fills_the_zeros_at_the_matrix_scale_and_leaves_biases():
    sd = _matrices()
    out = pz.perturb(sd, 0.1, seed=5)
    w, scale = sd["W_w"], 0.1 * pz.rms_nonzero(sd["W_w"])
    added = out["W_w"] - w
    assert (out["W_w"][w == 0] != 0).all()  # every off-pattern zero became nonzero
    assert float(added.std()) == pytest.approx(scale, rel=0.05)  # 10,000 draws
    assert torch.equal(out["b"], sd["b"]) and torch.equal(out["b_Q"], sd["b_Q"])  # biases
    # an all-zero matrix takes the median scale of the others (here the one other matrix)
    assert float(out["W_empty"].std()) > 0 and bool((out["W_empty"] != 0).all())
    assert torch.equal(out["W_w"], pz.perturb(sd, 0.1, seed=5)["W_w"])  # seeded
    assert not torch.equal(out["W_w"], pz.perturb(sd, 0.1, seed=6)["W_w"])
    assert torch.equal(pz.perturb(sd, 0.0, seed=5)["W_w"], w)
    assert torch.equal(sd["W_w"], _matrices()["W_w"])  # the input is not modified
    with pytest.raises(ConfigError):
        pz.perturb(sd, -0.1, seed=0)


def test_an_all_zero_matrix_takes_the_median_scale():
    sd = {
        "blocks.0.mlp.W_in": torch.tensor([[0.0, 30.0], [0.0, 0.0]]),
        "blocks.0.mlp.W_out": torch.tensor([[1.0, 0.0]]),
        "blocks.1.mlp.W_in": torch.zeros(2, 2),
        "blocks.1.attn.W_Q": torch.tensor([[100.0, 0.0]]),
        "blocks.1.attn.b_Q": torch.zeros(1, 2),
    }
    assert pz.matrix_scales(sd) == {
        "blocks.0.mlp.W_in": 30.0,
        "blocks.0.mlp.W_out": 1.0,
        "blocks.1.mlp.W_in": 30.0,  # the median of 1, 30 and 100
        "blocks.1.attn.W_Q": 100.0,
    }


def test_offcircuit_share_and_relative_change():
    sd = _matrices()
    assert pz.offcircuit_share(sd, sd) == 0.0
    assert pz.relative_change(sd, sd) == 0.0
    out = pz.perturb(sd, 0.1, seed=0)
    share = pz.offcircuit_share(sd, out)
    # expected share: noise energy on the 9,900 zeros over the total
    noise_sq = (0.1 * pz.rms_nonzero(sd["W_w"])) ** 2 * 9900
    expected = noise_sq / (noise_sq + float(sd["W_w"].pow(2).sum()))
    assert share == pytest.approx(expected, rel=0.1)
    # expected change: noise on all 10,000 entries over the norm of the 100 nonzero ones
    expected_change = (noise_sq / 9900 * 10000 / float(sd["W_w"].pow(2).sum())) ** 0.5
    assert pz.relative_change(sd, out) == pytest.approx(expected_change, rel=0.05)


def test_names_parse_and_resolve():
    assert pz.parse_name("perturbed-3-17") == (3, 17)
    assert pz.sibling("perturbed-0-4") == "generated-0-4"
    entry = pz.resolve("perturbed-0-4")
    assert entry is not None and entry.kind == "trained"
    assert entry.tags == {"trained", "circuits", "perturbed", "generated"}
    assert pz.resolve("generated-0-4") is None and pz.resolve("perturbed-0") is None
    assert pz.entries() == []


@pytest.mark.parametrize("bad", ["perturbed-x", "perturbed-0", "perturbed--1-2", "siit-0-1"])
def test_a_bad_name_is_a_one_line_error(bad):
    with pytest.raises(UnknownNameError) as info:
        pz.parse_name(bad)
    message = str(info.value)
    assert "\n" not in message and "perturbed-<seed>-<index>" in message
    with pytest.raises(UnknownNameError):
        co.perturbed_organism(bad)


def test_the_rule_is_on_the_program_output():
    tokens = rasp.tokens
    categorical = rasp.Map(lambda x: x + 1, tokens)
    numerical = rasp.numerical(rasp.Map(lambda x: x + 1, tokens))
    assert pz.ineligible_program(categorical) is None
    assert "numerical output" in (pz.ineligible_program(numerical) or "")


# a small program that verifies at the settings (categorical output, 64 inputs of full length)
SMALL = "perturbed-0-4"


@pytest.mark.slow  # draws the first generated programs in a fresh cache and builds one (~40 s)
def test_a_perturbed_organism_is_off_pattern_nonzero_accurate_and_its_truth_rechecks():
    from interplab.compile.ground_truth import values_equal
    from interplab.compile.truth_check import disagreements
    from interplab.zoo.contract import tensor_rows
    from interplab.zoo.generated import load_generated, scoring_and_truth_pairs, split_inputs

    assert pz.ineligible("perturbed-0-0") is not None  # generated-0-0 has a numerical output
    with pytest.raises(ConfigError, match="numerical output"):
        pz.perturb_and_finetune("perturbed-0-0")
    org = co.perturbed_organism(SMALL)
    sib = load_generated(pz.sibling(SMALL))
    compiled = sib.model.model.state_dict()
    weights = org.model.model.state_dict()

    # (a) off the compiled nonzero pattern, the weights are not zero
    off = torch.cat(
        [weights[k][v == 0].flatten() for k, v in compiled.items() if pz.is_matrix(k, v)]
    )
    assert off.numel() > 0 and bool((off != 0).all())
    share = pz.offcircuit_share(compiled, weights)
    assert share > 0 and org.info["offcircuit_weight_share"] == pytest.approx(share)

    # (b) exact-match accuracy on the half of the inputs it was not trained on
    _, held_in = split_inputs(sib.spec, org.seed)
    got = org.model([list(x) for x in held_in])
    right = sum(
        values_equal(rasp.evaluate(sib.spec.program(), list(x)), g) for x, g in zip(held_in, got)
    )
    assert right / len(held_in) >= pz.MIN_ACCURACY
    assert org.info["task_accuracy_heldout"] == pytest.approx(right / len(held_in))

    # (c) the released truths pass the check again, on exactly the rows the truth used
    truth = org.truth
    _, held = scoring_and_truth_pairs(sib.spec, org.seed)
    assert (
        tensor_rows(org.model.encode([c for c, _ in held]), org.model.encode([x for _, x in held]))
        == truth.inputs
    )
    assert truth.per_ablation, "at least one ablation's truth is released"
    assert sorted(truth.per_ablation) == truth.checks["verified"]
    assert not set(truth.per_ablation) & set(truth.checks["refused"])
    for ablation, circuit in truth.per_ablation.items():
        assert disagreements(org.model, {ablation: circuit}, held)[ablation] == []
        assert pz.offcircuit_problems(org.model, held, [ablation])[ablation] == []
        assert circuit.edges <= truth.designed.edges

    # the cache returns the same weights; another recipe has another fingerprint
    again, report = pz.load_perturbed(SMALL, org.seed)
    assert all(torch.equal(again.model.state_dict()[k], v) for k, v in weights.items())
    assert report == {k: org.info[k] for k in report}
    assert pz.fingerprint(SMALL, 0, pz.NOISE, pz.STEPS) != pz.fingerprint(
        SMALL, 0, pz.NOISE / 2, pz.STEPS
    )


@pytest.mark.slow
def test_the_zoo_suite_lists_the_first_twenty_programs_the_rule_admits():
    from interplab.bench.tracks.zoo import PERTURBED

    assert list(PERTURBED) == pz.perturbed_names(0, 20)
