"""Generic reliance tests on a hand-built model whose reliance is known exactly: a linear
TabularNet whose logit reads a numeric feature and a binary proxy, never the decoy."""

from __future__ import annotations

import pytest
import torch

from interplab.data.tabular import Feature
from interplab.errors import ConfigError, ShapeError
from interplab.methods import fairness as F
from interplab.models.tabular import TabularNet

ZONE = ("zone A", "zone B")
FEATS = (
    Feature("income", "numeric", low=-5, high=5),
    Feature("proxy", "categorical", ZONE),
    Feature("decoy", "categorical", ZONE),
)


def _population(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    group = (torch.rand(n, generator=gen) < 0.4).long()

    def zone() -> torch.Tensor:
        keep = torch.rand(n, generator=gen) < 0.85
        return torch.where(keep, group, (torch.rand(n, generator=gen) < 0.5).long()).double()

    x = torch.stack([torch.randn(n, generator=gen, dtype=torch.float64), zone(), zone()], 1)
    return x, group


def _model(proxy_weight: float) -> TabularNet:
    """logit = 2 · income − proxy_weight · [proxy = zone B] + 1 (decoy weight 0)."""
    net = TabularNet(FEATS, ())  # mean 0, std 1: encoding = [income, one-hot proxy, one-hot decoy]
    layer = net.linear
    assert layer is not None
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0] = 2.0
        layer.weight[0, 2] = -proxy_weight
        layer.bias.fill_(1.0)
    return net.eval()


def _decide(net: TabularNet):
    return lambda rows: (net(rows) > 0).long()


def test_swap_and_attribution_name_the_proxy_and_never_the_decoy():
    x, g = _population()
    reliant, clean = _model(4.0), _model(0.0)
    for test in (
        lambda m: F.swap_effects(_decide(m), x, g),
        lambda m: F.attribution_gaps(m, x, g, steps=8),
    ):
        r, c = test(reliant), test(clean)
        assert int(r.feature_scores.argmax()) == 1  # the proxy
        assert float(r.feature_scores[2]) == pytest.approx(0.0, abs=1e-12)  # the decoy
        assert float(c.feature_scores[1]) == pytest.approx(0.0, abs=1e-12)
        assert r.reliance > 2 * c.reliance
        assert r.queries > 0


def test_swap_effect_is_the_approval_gap_through_the_proxy():
    x, g = _population(2000, seed=1)
    net = _model(100.0)  # zone B is always refused
    r = F.swap_effects(_decide(net), x, g)
    p1 = float(x[g == 1, 1].mean())
    p0 = float(x[g == 0, 1].mean())
    # the approval rate falls by P(zone B | protected) − P(zone B | other), times the rows approved
    approved = float((2 * x[:, 0] + 1 > 0).double().mean())
    assert r.extra["effects"][1] == pytest.approx(-(p1 - p0) * approved, abs=1e-9)


def test_correlation_screen_cannot_tell_proxy_from_decoy():
    x, g = _population(2000)
    r = F.correlation_screen(x, g, FEATS)
    assert r.queries == 0
    assert float(r.feature_scores[0]) < 0.1
    assert min(r.feature_scores[1:]) > 0.6
    assert abs(float(r.feature_scores[1] - r.feature_scores[2])) < 0.05


def test_parity_and_equalised_odds_gaps():
    d = torch.tensor([1, 1, 0, 0, 1, 0, 0, 0])
    g = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    y = torch.tensor([1, 1, 0, 0, 1, 1, 0, 0])
    gaps = F.group_gaps(d, g, y)
    assert gaps["parity_gap"] == pytest.approx(0.25)
    assert gaps["equalised_odds_gap"] == pytest.approx(0.5)  # TPR 1 vs 0.5


def test_erasure_changes_decisions_only_when_the_group_is_used():
    x, g = _population(800)
    y = (x[:, 0] > 0).long()
    r, c = F.erasure_test(_model(4.0), x, g, y), F.erasure_test(_model(0.0), x, g, y)
    assert 0.0 <= c.reliance < r.reliance <= 1.0
    assert float(r.feature_scores[1]) > float(r.feature_scores[0])
    assert {"accuracy_before", "accuracy_after", "rank"} <= set(r.extra)


def test_bad_input_is_one_clear_error():
    x, g = _population(50)
    with pytest.raises(ConfigError, match="both groups"):
        F.swap_effects(_decide(_model(1.0)), x, torch.ones(50))
    with pytest.raises(ShapeError):
        F.parity_audit(_decide(_model(1.0)), x, g[:10])
    with pytest.raises(ConfigError, match="encode"):
        F.attribution_gaps(torch.nn.Linear(3, 1), x, g)
    assert F.auroc([0.1, 0.9, 0.5], [0, 1, 0]) == 1.0
