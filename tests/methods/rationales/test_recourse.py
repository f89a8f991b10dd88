"""Counterfactual recourse: valid, actionable, minimal, diverse; immutable features refused."""

import pytest
import torch

from interplab.errors import ConfigError
from interplab.methods.rationales import (
    DecisionModel,
    find_recourse,
    nearest_neighbour,
    random_recourse,
)
from interplab.zoo.tabular import get

FAST = ["credit-rule", "credit-linear", "digits-rule"]


def _setup(name):
    org = get(name)
    return org, DecisionModel.from_torch(org.model, org.features, outcomes=org.data.outcomes)


def _check_organism(name, n_rows):
    org, model = _setup(name)
    frozen = [j for j, f in enumerate(org.features) if f.immutable]
    total = 0
    for x in org.test_rows[:n_rows]:
        rec = find_recourse(model, x, baseline=org.background)
        before = bool(model.decide(x[None])[0])
        for opt in rec.options:
            total += 1
            assert bool(model.decide(opt.row[None])[0]) != before and opt.valid
            assert torch.equal(opt.row[frozen], x[frozen])
            model.check_row(opt.row)  # legal values and category codes
        sets = [set(o.features) for o in rec.options]
        assert all(not a <= b for i, a in enumerate(sets) for j, b in enumerate(sets) if i != j)
    assert total >= n_rows  # at least one option per row on average


@pytest.mark.parametrize("name", FAST)
def test_recourse_is_valid_and_actionable(name):
    _check_organism(name, 12)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["credit-mlp", "cancer-mlp"])
def test_recourse_is_valid_and_actionable_slow(name):
    _check_organism(name, 24)


def test_numeric_changes_are_minimal():
    """Moving a refined integer change one unit back towards the original undoes the flip."""
    org, model = _setup("credit-rule")
    checked = 0
    for x in org.test_rows[:10]:
        for opt in find_recourse(model, x, baseline=org.background).options:
            for c in opt.changes:
                f = org.features[model.index(c.feature)]
                if f.discrete or len(opt.changes) != 1:
                    continue
                back = opt.row.clone()
                back[model.index(c.feature)] = c.after - (1 if c.after > c.before else -1)
                assert bool(model.decide(back[None])[0]) == bool(model.decide(x[None])[0])
                checked += 1
    assert checked >= 1


def test_asking_to_change_an_immutable_feature_is_an_error():
    org, model = _setup("credit-rule")
    with pytest.raises(ConfigError, match="age.*immutable"):
        find_recourse(model, org.test_rows[0], baseline=org.background, vary=("duration", "age"))


def test_baselines_keep_immutable_features_and_report_their_validity():
    org, model = _setup("credit-rule")
    x = org.test_rows[0]
    nn = nearest_neighbour(model, x, baseline=org.background)
    frozen = [j for j, f in enumerate(org.features) if f.immutable]
    assert all(torch.equal(o.row[frozen], x[frozen]) for o in nn.options)
    rnd = random_recourse(model, x, baseline=org.background, seed=0)
    assert len(rnd.options) == 3 and all(torch.equal(o.row[frozen], x[frozen]) for o in rnd.options)
