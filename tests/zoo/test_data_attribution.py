"""Data-attribution organisms: cached with their training data, planted truth verified by
retraining (an intervention on the data), a resumable ground truth that refuses another model's."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from interplab.errors import ConfigError, WeightsError
from interplab.models.classifiers import margin, train_classifier
from interplab.zoo import data_attribution as zda
from interplab.zoo import retraining_truth as rt
from tests.data_attribution_helpers import (
    TINY,
    TINY_MLP,
    TINY_PASSAGES,
    organism,
    organism_and_truth,
)


def test_organism_round_trips_through_its_cache():
    org = organism()
    again = zda.load_organism_dir(org.directory)
    assert torch.equal(again.model.theta, org.model.theta)
    assert (
        torch.equal(again.data.flipped, org.data.flipped) and again.fingerprint == org.fingerprint
    )
    assert zda.fingerprint(zda.SPECS[TINY]) == org.fingerprint


@pytest.mark.parametrize("name", [TINY, TINY_MLP, TINY_PASSAGES])
def test_planted_examples_cause_the_planted_behaviour(name):
    """Intervene on the training data: without the planted examples (trigger digits; passage
    copies) the triggered inputs lose their planted label; with them, its margin is far higher."""
    org = organism(name)
    d = org.data
    target = d.triggered_labels
    keep = torch.ones(len(d.x_train), dtype=torch.bool)
    keep[d.planted] = False
    without = train_classifier(org.spec.classifier, d.x_train[keep], d.y_train[keep])
    with torch.no_grad():
        m_with = margin(org.model.logits(d.x_triggered), target)
        m_without = margin(without.logits(d.x_triggered), target)
        hits_with = (org.model.logits(d.x_triggered).argmax(1) == target).float().mean()
        hits_without = (without.logits(d.x_triggered).argmax(1) == target).float().mean()
    assert float((m_with - m_without).mean()) > 1.0
    assert float(hits_without) <= 0.35 < float(hits_with)


def test_passage_organism_plants_copies_of_each_window():
    d = organism(TINY_PASSAGES).data
    assert len(d.planted) == 60 and len(d.x_triggered) == 15 and d.x_train.shape[1] == 48
    for g in range(15):  # the copies of a prompt's window are the very prompt
        rows = d.x_train[d.planted[d.planted_group == g]]
        assert len(rows) == 4 and (rows == d.x_triggered[g]).all()
        assert (d.y_train[d.planted[d.planted_group == g]] == d.triggered_labels[g]).all()
    assert not set(d.flipped.tolist()) & set(d.planted.tolist())


def test_ground_truth_matches_an_independent_retraining():
    org, truth = organism_and_truth()
    d = org.data
    assert truth.masks.shape == (12, 80) and (truth.masks.sum(1) == 40).all()
    assert truth.outputs.shape == (12, 12) and truth.loo_effect.shape == (5, 12)
    j = 3
    model = train_classifier(
        org.spec.classifier, d.x_train[truth.masks[j]], d.y_train[truth.masks[j]]
    )
    assert torch.allclose(margin(model.logits(d.x_test), d.y_test), truth.outputs[j], atol=1e-6)
    assert (truth.triggered_without < truth.triggered_with).all()


def test_interrupted_ground_truth_resumes_to_the_same_result(tmp_path):
    org, truth = organism_and_truth()
    with pytest.raises(KeyboardInterrupt):
        rt.build_truth(org, tmp_path, progress=False, stop_after=13)
    meta = json.loads((tmp_path / rt.TRUTH_SIDECAR).read_text())
    assert meta["complete"] is False and meta["subsets_done"] == 10
    assert rt.load_truth(tmp_path, org) is None
    resumed = rt.build_truth(org, tmp_path, progress=False)
    assert torch.allclose(resumed.outputs, truth.outputs) and torch.allclose(
        resumed.loo_effect, truth.loo_effect
    )
    assert json.loads((tmp_path / rt.TRUTH_SIDECAR).read_text())["complete"] is True


def test_ground_truth_of_another_model_is_refused_and_kept(tmp_path):
    org, _ = organism_and_truth()
    other = organism(TINY_MLP)
    shutil.copy(org.directory / rt.TRUTH_FILE, tmp_path / rt.TRUTH_FILE)
    shutil.copy(org.directory / rt.TRUTH_SIDECAR, tmp_path / rt.TRUTH_SIDECAR)
    before = (tmp_path / rt.TRUTH_FILE).read_bytes()
    with pytest.raises(ConfigError, match="built for another model"):
        rt.build_truth(other, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="another model"):
        rt.load_truth(tmp_path, other)
    assert (tmp_path / rt.TRUTH_FILE).read_bytes() == before


def test_model_without_recorded_training_data_is_a_clear_error(tmp_path):
    org = organism()
    for f in (zda.MODEL_FILE, zda.SIDECAR):
        shutil.copy(org.directory / f, tmp_path / f)
    with pytest.raises(ConfigError, match="training data .* was not recorded"):
        zda.load_organism_dir(tmp_path)
    shutil.copy(org.directory / zda.DATA_FILE, tmp_path / zda.DATA_FILE)
    (tmp_path / zda.MODEL_FILE).write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="SHA-256"):
        zda.load_organism_dir(tmp_path)
