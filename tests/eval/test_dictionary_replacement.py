"""A compiled MLP replaced by a sparse dictionary: task accuracy vs mean ablation, and whether
the dictionary's directions are the block's compiled ones."""

from __future__ import annotations

import math

import pytest

from interplab.compile.programs import get_program
from interplab.errors import ConfigError
from interplab.eval.dictionary_replacement import (
    DictionaryReplacementResult,
    dictionary_replacement,
    mlp_blocks,
    written_directions,
)


@pytest.fixture(scope="module")
def mod_sum():
    spec = get_program("mod_sum")
    return spec.compile(), spec.program(), spec.inputs()


def test_mlp_blocks_and_written_directions(mod_sum):
    model, _, _ = mod_sum
    assert mlp_blocks(model) == {0: ("mod_sum",)}
    dirs, names = written_directions(model, ["mod_sum"])
    assert dirs.shape == (5, model.ground_truth.d_model)
    assert sorted(v for _, v in names) == [0, 1, 2, 3, 4]
    assert (dirs.sum(1) == 1).all()  # one residual basis vector per value


def test_transcoder_replaces_mod_sum_mlp_where_mean_ablation_fails(mod_sum):
    model, program, inputs = mod_sum
    r = dictionary_replacement(model, program, inputs, 0, kind="transcoder", seed=0)
    assert isinstance(r, DictionaryReplacementResult)
    assert r.n_train + r.n_eval == len(inputs) and r.n_positions == 1470
    assert r.correct_original == r.n_positions  # the compiled model is exact
    assert r.correct_replaced >= 0.9 * r.correct_original, (r.correct_replaced, r.n_positions)
    assert r.correct_mean_ablated <= 0.3 * r.correct_original, (
        r.correct_mean_ablated,
        r.n_positions,
    )
    assert r.fidelity >= 0.9 and r.mean_fidelity <= 0.3
    assert r.kl_recovered >= 0.9 and r.l2_recovered >= 0.9
    # the feature view: decoder directions line up with the five one-hot outputs it writes
    # (cosines 0.89-0.94 on this torch build, so recall at the 0.9 cut is reported, not claimed)
    assert r.mmcs >= 0.8, r.max_cosines
    assert r.recall == pytest.approx(sum(c >= 0.9 for *_, c in r.max_cosines) / len(r.max_cosines))
    assert r.l0 == pytest.approx(1.0)
    assert r.variables == ("mod_sum",) and r.block == "L0.mlp_out"


def test_sae_on_mlp_out_finds_the_compiled_directions(mod_sum):
    model, program, inputs = mod_sum
    r = dictionary_replacement(model, program, inputs, 0, kind="sae", seed=0)
    assert r.correct_replaced >= 0.9 * r.correct_original
    assert r.mmcs >= 0.9 and r.recall == 1.0


def test_numerical_output_reports_l2_not_kl():
    spec = get_program("frac_prevs")
    model = spec.compile()
    r = dictionary_replacement(model, spec.program(), spec.inputs(), 0, seed=0)
    assert r.variables == ("is_x",)
    assert math.isnan(r.kl_replaced) and math.isnan(r.kl_recovered)
    assert r.l2_recovered >= 0.99
    assert r.correct_replaced >= 0.9 * r.correct_original
    assert r.correct_mean_ablated <= 0.3 * r.correct_original


def test_errors_teach(mod_sum):
    model, program, inputs = mod_sum
    with pytest.raises(ConfigError, match="MLPs that do"):
        dictionary_replacement(model, program, inputs, 3)
    with pytest.raises(ConfigError, match="kind"):
        dictionary_replacement(model, program, inputs, 0, kind="pca")
    with pytest.raises(ConfigError, match="needs inputs"):
        dictionary_replacement(model, program, [], 0)


def test_bench_rows():
    from interplab.bench.tracks import causal

    assert "dictionary_replacement" in causal.METHODS
    assert "mmcs_written_directions" in causal.METRICS and "mmcs" not in causal.METRICS
    rows = causal.run_causal_job("compiled-mod_sum", "dictionary_replacement")
    got = {(r["method"], r["metric"], r["ablation"]): r["value"] for r in rows}
    method = "dictionary_replacement:mod_sum"
    assert got[(method, "replacement_fidelity", None)] >= 0.9
    assert got[(method, "replacement_fidelity", "mean")] <= 0.3
    assert got[(method, "mmcs_written_directions", None)] >= 0.8
    assert got[(method, "n_positions", None)] == 1470
    full = [b for b in causal.SUITES["full"] if "dictionary_replacement" in b["methods"]]
    assert (
        full
        and "compiled-mod_sum" in full[0]["organisms"]
        and "compiled-hist" in full[0]["organisms"]
    )
    assert not any("dictionary_replacement" in b["methods"] for b in causal.SUITES["quick"])
    with pytest.raises(ConfigError, match="needs a compiled organism"):
        causal.run_causal_job("siit-hist", "dictionary_replacement")
