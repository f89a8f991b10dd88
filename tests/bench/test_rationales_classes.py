"""The rationales track on the three-class organism (credit-tiers): each row's predicted class is
explained rather than its runner-up; recourse must make the three-class model predict the
runner-up; the headline is scored against the planted scorecard features."""

import pytest
import torch

from interplab.bench.tracks import Job
from interplab.bench.tracks import rationales as R


def _values(out):
    return {r["metric"]: r["value"] for r in out.rows}


def test_rows_are_explained_as_their_class_rather_than_the_runner_up():
    org, model, rows, _ = R._setup("credit-tiers", 0, R.n_rows("credit-tiers"))
    assert model.classes == ("refuse", "review", "approve")
    explained = R._explained("credit-tiers", 0, rows.shape[0])
    assert len(explained) == rows.shape[0]
    scores = model.class_scores(rows)
    top2 = scores.argsort(1, descending=True)[:, :2]
    for i, m in enumerate(explained):
        assert (m.contrast.target, m.contrast.against) == tuple(top2[i].tolist())
        assert torch.allclose(
            m.logit(rows[i : i + 1]), scores[i, top2[i, 0]] - scores[i, top2[i, 1]]
        )


def test_recourse_leads_to_the_runner_up_on_the_three_class_model():
    out = R.run_job(Job("rationales", "credit-tiers", "recourse", None))
    v = _values(out)
    assert v["counterfactual_validity"] == 1.0 and v["actionability"] == 1.0
    _, model, rows, org_bg = R._setup("credit-tiers", 0, R.n_rows("credit-tiers"))
    recs = R._recourse("credit-tiers", 0, rows.shape[0])
    n = 0
    for x, rec in zip(rows, recs):
        assert rec.target == model.classes[model.runner_up(x)]
        for o in rec.options:
            assert int(model.predict(o.row[None])[0]) == model.class_index(rec.target)
            n += 1
    assert n >= rows.shape[0]  # options were found, not an empty set that passes trivially
    from interplab.eval import rationales as E
    from interplab.methods.rationales import random_recourse

    control = [random_recourse(model, x, baseline=org_bg, seed=i) for i, x in enumerate(rows)]
    scores = E.counterfactual_scores(model, list(rows), control)
    assert scores["counterfactual_validity"].value < 0.5  # random changes rarely reach it


@pytest.mark.slow
def test_attributions_recover_the_planted_features_for_the_explained_contrast():
    """The whole job (the quick headline test, tests/bench/test_rationales_track.py, scores
    these attributions on every quick organism, credit-tiers included)."""
    ig = R.run_job(Job("rationales", "credit-tiers", "integrated_gradients", None))
    rnd = R.run_job(Job("rationales", "credit-tiers", "random", None))
    v, r = _values(ig), _values(rnd)
    assert v["top_k_recall"] >= r["top_k_recall"] + 0.2 and r["top_k_recall"] <= 0.6
    assert v["claim_accuracy"] >= 0.9
    contrasts = ig.artifacts["contrasts"]
    assert len(contrasts) == R.n_rows("credit-tiers") and all("rather than" in c for c in contrasts)
    assert ig.artifacts["estimates"]["top_k_recall"]["k"] == 5  # ⌈20 / 4⌉, not |truth|


def test_the_surrogate_mimics_the_predicted_class():
    v = _values(R.run_job(Job("rationales", "credit-tiers", "surrogate", None)))
    assert v["surrogate_fidelity"] > v["majority_fidelity"] + 0.2
