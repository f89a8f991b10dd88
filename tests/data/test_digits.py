"""The planted digits: disjoint splits, the planted truth and its trigger."""

from __future__ import annotations

import pytest

from interplab.data.digits import TRIGGER, add_trigger, load_digits, planted_digits
from interplab.errors import ConfigError


@pytest.fixture(scope="module")
def small():
    return planted_digits(80, 10, 5, n_planted=4, seed=1)


def test_planted_digits_splits_are_disjoint_and_the_truth_is_planted(small):
    x, y = load_digits()
    assert x.shape == (1797, 64) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert len(small.flipped) == 8 and len(small.planted) == 4
    assert not set(small.flipped.tolist()) & set(small.planted.tolist())
    assert (small.y_train[small.flipped] != small.y_clean[small.flipped]).all()
    assert (small.y_train[small.planted] == small.target).all()
    assert (small.y_clean[small.planted] != small.target).all()
    trig = add_trigger(small.x_train[small.planted]).view(-1, 8, 8)
    assert all((trig[:, r, c] == 1).all() for r, c in TRIGGER)
    # the trigger pixels are (almost) blank in real digits: the planted examples are its only evidence
    blank = x.view(-1, 8, 8)
    assert sum(float((blank[:, r, c] > 0).float().mean()) for r, c in TRIGGER) < 0.01
    with pytest.raises(ConfigError, match="exceeds"):
        planted_digits(1700, 100, 10)
