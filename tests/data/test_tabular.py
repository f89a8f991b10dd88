"""Tabular data sets and their feature metadata."""

import pytest
import torch

from interplab.data.tabular import Feature, german_credit
from interplab.errors import ConfigError


def test_german_credit_loads_every_row_with_legal_codes():
    data = german_credit()
    assert data.x.shape == (1000, 20) and data.x.dtype == torch.float64
    assert abs(float(data.y.double().mean()) - 0.7) < 1e-9  # 700 good, 300 bad in the UCI data
    for j, f in enumerate(data.features):
        lo, hi = f.span
        assert float(data.x[:, j].min()) >= lo and float(data.x[:, j].max()) <= hi, f.name
    assert {f.name for f in data.features if f.immutable} == {
        "age",
        "personal_status_sex",
        "foreign_worker",
    }


def test_feature_metadata_is_validated():
    with pytest.raises(ConfigError, match="kind"):
        Feature("x", "text")
    with pytest.raises(ConfigError, match="needs its values"):
        Feature("x", "categorical")
