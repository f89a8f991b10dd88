"""LDS, leave-one-out correlation, mislabel and planted recall on constructed cases."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import ConfigError
from interplab.eval.data_attribution import (
    lds,
    loo_correlation,
    mislabel_recall_at,
    planted_recall,
    spearman_rows,
)


@pytest.fixture
def datamodel():
    """A world where outputs really are linear in the training subset: o_j(t) = sum_{i in S_j} w[t, i]."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(6, 40, generator=gen, dtype=torch.float64)
    masks = torch.rand(50, 40, generator=gen) < 0.5
    return w, masks, masks.double() @ w.T


def test_lds_is_one_for_the_true_datamodel_and_near_zero_for_noise(datamodel):
    w, masks, outputs = datamodel
    perfect = lds(w, masks, outputs)
    assert perfect.value == pytest.approx(1.0) and perfect.n == 6
    assert lds(-w, masks, outputs).value == pytest.approx(-1.0)
    noise = lds(
        torch.randn(6, 40, generator=torch.Generator().manual_seed(1), dtype=torch.float64),
        masks,
        outputs,
    )
    assert abs(noise.value) < 0.3 and noise.low < noise.value < noise.high
    # scaling the scores of a test point never changes its rank correlation
    assert lds(
        w * torch.arange(1, 7, dtype=torch.float64)[:, None], masks, outputs
    ).value == pytest.approx(1.0)


def test_constant_scores_count_as_zero_and_are_reported(datamodel):
    w, masks, outputs = datamodel
    est = lds(torch.zeros_like(w), masks, outputs)
    assert est.value == 0.0 and est.n_constant == 6
    with pytest.raises(ConfigError, match="LDS shapes"):
        lds(w, masks, outputs.T)


def test_spearman_handles_ties_like_the_textbook():
    a = torch.tensor([[1.0, 2.0, 2.0, 3.0]])
    b = torch.tensor([[1.0, 2.5, 2.5, 4.0]])
    rho, defined = spearman_rows(a, b)
    assert float(rho[0]) == pytest.approx(1.0) and bool(defined[0])


def test_loo_correlation_uses_the_left_out_columns():
    scores = torch.zeros(2, 10, dtype=torch.float64)
    scores[:, [1, 4, 7]] = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], dtype=torch.float64)
    effect = torch.tensor(
        [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]], dtype=torch.float64
    )  # [n_loo, n_test]
    est = loo_correlation(scores, torch.tensor([1, 4, 7]), effect)
    assert est.value == pytest.approx(0.0)  # +1 and -1
    assert est.low == pytest.approx(-1.0) and est.high == pytest.approx(1.0)


def test_mislabel_recall_counts_flipped_examples_in_the_inspected_top():
    selfs = torch.arange(100, dtype=torch.float64)  # example 99 most self-influential
    est = mislabel_recall_at(selfs, torch.tensor([99, 95, 91, 50, 3]), 0.1)
    assert est.value == pytest.approx(3 / 5) and est.n == 5 and est.low < 0.6 < est.high


def test_planted_recall_and_wilson():
    scores = torch.zeros(2, 20, dtype=torch.float64)
    scores[0, [2, 5, 9]] = 1.0  # all three planted on top
    scores[1, [2, 11, 12]] = 1.0  # one of three
    assert planted_recall(scores, torch.tensor([2, 5, 9])).value == pytest.approx(2 / 3)
    from interplab.eval.stats import bootstrap_mean, wilson  # the shared statistics

    w = wilson(8, 10)
    low, high = w.low, w.high
    assert 0.44 < low < 0.5 and 0.94 < high < 0.97
    assert bootstrap_mean(torch.ones(5, dtype=torch.float64)).low == 1.0


def test_planted_recall_by_group_uses_each_rows_own_planted_examples():
    scores = torch.zeros(2, 10, dtype=torch.float64)
    scores[0, [0, 1]] = 1.0  # row 0 (group 0): its planted examples are 0 and 1
    scores[1, [0, 1]] = 1.0  # row 1 (group 1): its planted examples are 2 and 3 — missed
    planted, groups = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 0, 1, 1])
    assert planted_recall(scores, planted, groups, torch.tensor([0, 1])).value == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="no planted example"):
        planted_recall(scores, planted, groups, torch.tensor([0, 5]))
