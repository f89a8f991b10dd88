"""Tabular models: the planted rules (the data: tests/data/test_tabular.py)."""

import torch

from interplab.data.tabular import german_credit
from interplab.models import tabular as T


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
