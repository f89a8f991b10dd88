"""The passages-transformer organism: a small causal transformer that memorises the planted
passages (verified by retraining without them), cached with its training data, attributable by
every method that runs on it, and scored by the data_attribution track without a retraining truth."""

from __future__ import annotations

import pytest
import torch

from interplab.bench.tracks import Job
from interplab.bench.tracks import data_attribution as track
from interplab.errors import ConfigError
from interplab.methods.data_attribution import attribute_data
from interplab.models.classifiers import margin, train_classifier
from interplab.models.transformer_classifier import TransformerClassifierSpec
from interplab.zoo import data_attribution as zda

NAME = "passages-transformer"


@pytest.fixture(scope="module")
def org():
    return zda.load_or_train(NAME)


def test_organism_is_a_transformer_cached_with_its_data(org):
    assert (
        isinstance(org.spec.classifier, TransformerClassifierSpec)
        and org.spec.classifier.n_layers == 1
    )
    again = zda.load_organism_dir(org.directory)
    assert isinstance(again.spec.classifier, TransformerClassifierSpec)
    assert torch.equal(again.model.theta, org.model.theta) and len(again.model.checkpoints) == 4
    assert (
        torch.equal(again.data.x_train, org.data.x_train) and again.fingerprint == org.fingerprint
    )


def test_planted_passages_are_memorised_and_only_because_of_their_copies(org):
    """Intervention on the training data: the transformer continues every planted passage on its
    triggered prompts (chance: 1 in 16); retrained without the planted copies, it does not."""
    d = org.data
    keep = torch.ones(len(d.x_train), dtype=torch.bool)
    keep[d.planted] = False
    without = train_classifier(org.spec.classifier, d.x_train[keep], d.y_train[keep])
    target = d.triggered_labels
    with torch.no_grad():
        hit_with = org.model.logits(d.x_triggered).argmax(1) == target
        hit_without = without.logits(d.x_triggered).argmax(1) == target
        gain = margin(org.model.logits(d.x_triggered), target) - margin(
            without.logits(d.x_triggered), target
        )
    per_passage = hit_with.double().view(3, -1).mean(1)  # 3 passages x 5 next tokens each
    assert (per_passage >= 0.8).all(), per_passage
    assert float(hit_without.double().mean()) <= 0.35
    assert float(gain.mean()) > 2.0


@pytest.mark.parametrize(
    "method",
    ["grad_dot", "grad_cos", "tracin", "ekfac", "trak", "representer", "nn_representation"],
)
def test_attribution_methods_run_on_the_transformer(org, method):
    d = org.data
    att = attribute_data(
        org.model,
        (d.x_train, d.y_train),
        (d.x_triggered, d.triggered_labels),
        method=method,
        self_influence=method != "grad_cos",
    )
    assert att.scores.shape == (15, len(d.x_train)) and torch.isfinite(att.scores).all()
    if method != "grad_cos":
        assert (
            att.self_influence.shape == (len(d.x_train),)
            and torch.isfinite(att.self_influence).all()
        )


def test_ekfac_preconditioner_is_symmetric_positive_definite(org):
    from interplab.methods.data_attribution.influence import ekfac_preconditioner

    spec, d = org.spec.classifier, org.data
    pre = ekfac_preconditioner(spec, org.model.theta, d.x_train)
    v = torch.randn(
        3, spec.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    pv = pre(v)
    assert torch.allclose(v @ pv.T, (v @ pv.T).T, rtol=1e-8, atol=1e-8)
    assert ((v * pv).sum(1) > 0).all()


def test_exact_influence_is_refused_with_a_reason(org):
    d = org.data
    with pytest.raises(ConfigError, match="exact Hessian"):
        attribute_data(
            org.model, (d.x_train, d.y_train), (d.x_test[:2], d.y_test[:2]), method="if_exact"
        )


TINY = "passages-transformer-tiny-test"
zda.SPECS.setdefault(
    TINY,
    zda.DAOrganismSpec(
        TransformerClassifierSpec(d_model=8, d_mlp=16, steps=60, lr=0.03, n_checkpoints=2),
        n_train=120,
        n_test=8,
        n_subsets=4,
        n_loo=2,
        data="passages",
        description="tiny test transformer",
    ),
)


@pytest.fixture
def tiny_track(monkeypatch):
    monkeypatch.setattr(track, "ORGANISMS", track.ORGANISMS + (TINY,))
    track.load.cache_clear()
    yield
    track.load.cache_clear()


def test_full_suite_runs_the_transformer_without_exact_influence():
    assert NAME in track.ORGANISMS
    parts = [p for p in track.SUITES["full"] if NAME in p["organisms"]]
    assert len(parts) == 1 and set(parts[0]["methods"]) == set(track.METHODS) - {"if_exact"}
    assert all(NAME not in p["organisms"] for p in track.SUITES["quick"])
    assert zda.SPECS[NAME].n_subsets >= 100


@pytest.mark.parametrize("method", ["grad_dot", "trak"])
def test_track_job_on_a_transformer(tiny_track, monkeypatch, method):
    """Every metric with its interval; a self-influence the track skips (if_cg, if_lissa on a
    transformer: too slow; here grad_dot stands in for them) is a None row with its reason."""
    assert {("transformer", "if_cg"), ("transformer", "if_lissa")} <= set(
        track.SELF_INFLUENCE_OMITTED
    )
    monkeypatch.setitem(
        track.SELF_INFLUENCE_OMITTED, ("transformer", "grad_dot"), "one solve per example"
    )
    out = track.run_job(Job("data_attribution", TINY, method, None))
    rows = {r["metric"]: r for r in out.rows}
    for metric in ("lds", "loo_correlation", "planted_recall"):
        est = out.artifacts["estimates"][metric]
        assert rows[metric]["value"] is not None and est["low"] <= est["value"] <= est["high"]
    assert (
        out.artifacts["estimates"]["planted_recall"]["n"] == 15 and rows["n_subsets"]["value"] == 4
    )
    if method == "grad_dot":
        assert (
            rows["mislabel_recall_at_10"]["value"] is None
            and "solve" in rows["mislabel_recall_at_10"]["reason"]
        )
        assert set(out.artifacts["omitted"]) == {"mislabel_recall_at_10"}
    else:
        assert rows["mislabel_recall_at_10"]["value"] is not None and "omitted" not in out.artifacts
