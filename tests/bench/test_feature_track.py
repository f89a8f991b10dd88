from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch

from interplab.bench.tracks import features, get_track
from interplab.bench.tracks.features import (
    METHODS,
    ORGANISMS,
    run_feature_job,
    select_hyperparameters,
)
from interplab.data.synthetic import SyntheticConfig, SyntheticFeatures
from interplab.errors import UnknownNameError
from interplab.methods.dictionaries import SparseDictionary


def _values(rows):
    return {r["metric"]: r["value"] for r in rows}


def test_synthetic_job_rows():
    rows = run_feature_job("synthetic-features-16x32", "sae-topk", 0, steps=100)
    assert [r["metric"] for r in rows] == [
        "mmcs",
        "feature_f1",
        "l0",
        "variance_explained",
        "k_chosen",
    ]
    # the track gives metric, value and the training time; the runner adds the job's fields
    assert all(r.seconds > 0 and r.organism is None and r.method is None for r in rows)
    values = _values(rows)
    assert values["k_chosen"] in (1, 2, 4, 8)  # the ladder below d_in = 16
    assert 0 < values["l0"] <= values["k_chosen"]
    # 100 steps are far from converged; they must still beat the untrained random baseline
    random = _values(run_feature_job("synthetic-features-16x32", "random", 0, steps=100))
    assert values["mmcs"] > random["mmcs"] and values["feature_f1"] >= random["feature_f1"]


def test_superposition_transcoder_job_reports_loss_recovered():
    values = _values(run_feature_job("superposition-8x3", "transcoder", 1, steps=100))
    assert set(values) == {
        "mmcs",
        "feature_f1",
        "l0",
        "variance_explained",
        "loss_recovered",
        "k_chosen",
    }
    assert values["loss_recovered"] > 0.0 and values["k_chosen"] in (1, 2)  # k < d_in = 3


def test_hyperparameters_are_chosen_from_activations_only():
    params = set(inspect.signature(select_hyperparameters).parameters)
    assert params == {"method", "kind", "x", "held_out_x", "y", "held_out_y", "seed", "steps"}


def test_a_different_truth_with_the_same_activations_gives_the_same_choice(monkeypatch):
    """An organism that claims another L0 (config) and other true features, but yields the same
    activations, must get the same k: the choice never looks at the truth."""
    honest = _values(run_feature_job("synthetic-features-16x32", "sae-topk", 0, steps=100))
    real = features._organism

    def lying(organism, transcoder, seed):
        kind, source, true = real(organism, transcoder, seed)
        # Claims L0 = 1 (sampling reads the probabilities set at construction, not this) and
        # other true features: the truth changes, the activations do not.
        source.config = dataclasses.replace(source.config, mean_active=1.0)
        other = torch.randn(
            true.shape, generator=torch.Generator().manual_seed(99)
        )  # not seed 0: that is the truth
        return kind, source, other

    monkeypatch.setattr(features, "_organism", lying)
    lied = _values(run_feature_job("synthetic-features-16x32", "sae-topk", 0, steps=100))
    assert lied["k_chosen"] == honest["k_chosen"]
    assert lied["variance_explained"] == honest["variance_explained"]
    assert lied["mmcs"] != honest["mmcs"]  # the scores did see the (other) truth


def test_a_dictionary_does_not_start_at_the_truth():
    # SyntheticFeatures and SparseDictionary both draw randn(rows, d) from manual_seed(seed).
    org = SyntheticFeatures(SyntheticConfig(n_features=64, d=32, seed=0))
    x = org.sample(2048, 1).x
    config, _ = select_hyperparameters("random", "synthetic", x, x, seed=0)
    init = SparseDictionary(config).directions
    assert (org.directions @ init.T).max(dim=1).values.mean() < 0.8
    random = _values(run_feature_job("synthetic-features-32x64", "random", 0))
    assert random["mmcs"] < 0.8 and random["feature_f1"] < 0.2


def test_registered_names_parse_and_unknown_names_teach():
    assert "synthetic-features-64x128" in ORGANISMS and "superposition-20x5" in ORGANISMS
    assert METHODS == ("sae-relu", "sae-topk", "sae-jumprelu", "transcoder", "random")
    assert get_track("features").baselines() == {"random"}  # the registry's kind
    with pytest.raises(UnknownNameError, match="Did you mean 'sae-topk'"):
        run_feature_job("superposition-20x5", "sae-topK", 0)
    with pytest.raises(UnknownNameError, match="Valid organisms"):
        run_feature_job("superposition", "sae-topk", 0)


_RELU_FALLS_SHORT = pytest.mark.xfail(
    strict=True,
    reason="ReLU+L1 with the L1 coefficient the proxy sweep picks (0.03 x scale, L0 ~62) and an "
    "init that is not the truth reaches MMCS 0.79 here; it passed only while dictionaries "
    "were initialised at the true directions",
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "method",
    [
        pytest.param(m, marks=_RELU_FALLS_SHORT) if m == "sae-relu" else m
        for m in METHODS
        if m != "random"
    ],
)
def test_full_64x128_jobs_recover_the_features(method):
    values = {
        r["metric"]: r["value"] for r in run_feature_job("synthetic-features-64x128", method, 0)
    }
    assert values["mmcs"] >= 0.99


def test_track_interface_for_the_bench_runner(monkeypatch):
    from interplab.bench.tracks import Job
    from interplab.bench.tracks import features as mod

    monkeypatch.setitem(mod.STEPS, "synthetic", 100)
    assert mod.ABLATIONS == (None,) and set(mod.SUITES) >= {"quick", "full"}
    for part in mod.SUITES["quick"]:
        assert set(part["organisms"]) <= set(mod.ORGANISMS) and set(part["methods"]) <= set(METHODS)
    out = get_track("features").run(Job("features", "synthetic-features-8x16", "sae-topk", None, 0))
    assert {r["metric"] for r in out.rows} >= {"mmcs", "feature_f1", "k_chosen"}
    values = out.artifacts["max_cosines"]["values"]
    assert len(values) == 16 and all(-1.0 <= v <= 1.0 for v in values)
    sweep = out.artifacts["sparsity_sweep"]
    assert sweep["field"] == "k" and sweep["values"][0] == 1 and sweep["chosen"] in sweep["values"]
    assert (
        len(sweep["variance_explained"]) == len(sweep["values"])
        and sweep["d_latent"] == mod.EXPANSION * 8
    )
