"""AUROC and precision-at-rate on hand-made cases (ties included) and against a brute-force count."""

from __future__ import annotations

import itertools

import pytest
import torch

from interplab.errors import ConfigError, ShapeError
from interplab.eval.poisoning import (
    auroc,
    poison_detection_auroc,
    precision_at_poison_rate,
    precision_at_rate,
    trigger_detection_auroc,
)


def test_auroc_hand_cases():
    assert auroc([3, 2, 1, 0], [True, True, False, False]) == 1.0
    assert auroc([0, 1, 2, 3], [True, True, False, False]) == 0.0
    assert auroc([1, 1, 1, 1], [True, False, True, False]) == 0.5
    # positives 2 and 1 vs negatives 1 and 0: pairs (2>1, 2>0, 1=1 -> 1/2, 1>0) = 3.5 / 4
    assert auroc([2, 1, 1, 0], [True, True, False, False]) == pytest.approx(0.875)


def test_auroc_matches_the_pair_count():
    gen = torch.Generator().manual_seed(0)
    s = torch.randint(5, (40,), generator=gen).float()
    pos = torch.rand(40, generator=gen) < 0.3
    pairs = [(a, b) for a, b in itertools.product(s[pos].tolist(), s[~pos].tolist())]
    expected = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)
    assert auroc(s, pos) == pytest.approx(expected)


def test_precision_at_rate_hand_cases():
    assert precision_at_rate([5, 4, 3, 2, 1], [1, 0, 1, 0, 0], 0.4) == 0.5
    assert precision_at_rate([5, 4, 3, 2, 1], [1, 0, 1, 0, 0], 0.2) == 1.0
    # a 4-way tie at the cut: the expectation over tie-breaking, not the index order
    assert precision_at_rate([1, 1, 1, 1], [1, 0, 0, 0], 0.5) == pytest.approx(0.25)
    assert precision_at_rate([9, 1, 1, 1], [0, 0, 0, 1], 0.5) == pytest.approx(1 / 6)


def test_poison_index_wrappers():
    scores = torch.tensor([0.9, 0.1, 0.8, 0.2, 0.3, 0.05])
    assert poison_detection_auroc(scores, [0, 2]) == 1.0
    assert precision_at_poison_rate(scores, [0, 4]) == 0.5
    assert trigger_detection_auroc([0.1, 0.2], [0.3, 0.15]) == 0.75


def test_errors():
    with pytest.raises(ConfigError, match="positives and negatives"):
        auroc([1, 2], [True, True])
    with pytest.raises(ShapeError):
        poison_detection_auroc([1, 2, 3], [5])
    with pytest.raises(ShapeError):
        auroc([1, 2, 3], [True, False])
    with pytest.raises(ConfigError, match="finite"):
        auroc([1, float("nan")], [True, False])
    with pytest.raises(ConfigError):
        precision_at_rate([1, 2], [1, 0], 0.0)
