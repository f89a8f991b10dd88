"""Tabular data, feature metadata and the planted rules."""

import pytest
import torch

from interplab.errors import ConfigError
from interplab.models import tabular as T
from interplab.models.tabular_data import Feature, german_credit


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


def test_scorecard_points_on_hand_made_rows():
    names = german_credit().names
    x = torch.zeros(2, 20, dtype=torch.float64)
    j = {n: names.index(n) for n in names}
    # row 0: overdrawn (2), 24 months (2), savings < 100 (1), 1000 DM (0) -> 5 points: refuse
    (
        x[0, j["checking_account"]],
        x[0, j["duration"]],
        x[0, j["savings"]],
        x[0, j["credit_amount"]],
    ) = 0, 24, 0, 1000
    # row 1: no checking account (0), 12 months (0), savings unknown (0), 9000 DM (1) -> approve
    (
        x[1, j["checking_account"]],
        x[1, j["duration"]],
        x[1, j["savings"]],
        x[1, j["credit_amount"]],
    ) = 3, 12, 4, 9000
    assert T.scorecard_points(x, names).sum(1).tolist() == [5.0, 1.0]
    assert T.scorecard_approves(x, names).tolist() == [0, 1]


def test_linear_fit_is_deterministic_and_float64():
    data = german_credit()
    a = T.fit(data.x[:200], data.y[:200], data.features, T.TrainConfig(hidden=()))
    b = T.fit(data.x[:200], data.y[:200], data.features, T.TrainConfig(hidden=()))
    assert a.linear is not None and a.linear.weight.dtype == torch.float64
    assert torch.equal(a.linear.weight, b.linear.weight)
