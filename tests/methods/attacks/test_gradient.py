"""FGSM / PGD: budgets respected, seeded, stronger with more budget, clear errors on bad input,
and the same strength as torchattacks on the same model and budget."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import ConfigError
from interplab.methods.attacks import fgsm, pgd
from interplab.models.trojans import digits
from interplab.zoo import trojans


class _Images(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.flatten(1))


@pytest.fixture(scope="module")
def organism():
    return trojans.load("twin-patch-digits")


@pytest.fixture(scope="module")
def data():
    x, y = digits("score")
    return x[:150], y[:150]


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_stays_in_budget_and_bounds(organism, data, norm):
    x, y = data
    eps = 0.1 if norm == "linf" else 1.0
    r = pgd(organism.model, x, y, eps=eps, steps=5, norm=norm, restarts=2)
    delta = (r.x_adv - x).flatten(1)
    size = delta.abs().max(1).values if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps + 1e-5
    assert float(r.x_adv.min()) >= 0 and float(r.x_adv.max()) <= 1
    with torch.no_grad():
        assert torch.equal(organism.model.run(r.x_adv).argmax(-1), r.adv_pred)


def test_pgd_is_seeded_and_beats_fgsm_and_a_smaller_budget(organism, data):
    x, y = data
    a = pgd(organism.model, x, y, eps=0.1, steps=10, seed=3)
    b = pgd(organism.model, x, y, eps=0.1, steps=10, seed=3)
    assert torch.equal(a.x_adv, b.x_adv)
    small = pgd(organism.model, x, y, eps=0.02, steps=10, seed=3)
    one_step = fgsm(organism.model, x, y, eps=0.1)
    assert small.success_rate < a.success_rate
    assert one_step.success_rate <= a.success_rate
    assert a.success_rate > 0.2


def test_targeted_pgd_reaches_its_target(organism, data):
    x, y = data
    r = pgd(organism.model, x, y, eps=0.3, steps=20, target=3)
    assert float((r.adv_pred[y != 3] == 3).float().mean()) > 0.8
    assert torch.equal(r.success, r.adv_pred == 3)


def test_bad_inputs_give_clear_errors(organism, data):
    x, y = data
    with pytest.raises(ConfigError, match="outside the input's range"):
        pgd(organism.model, x, y, eps=1.5)
    with pytest.raises(ConfigError, match="outside the input's range"):
        pgd(organism.model, x, y, eps=0.0)
    with pytest.raises(ConfigError, match="target class 10 does not exist"):
        pgd(organism.model, x, y, eps=0.1, target=10)
    with pytest.raises(ConfigError, match="integer inputs"):
        pgd(organism.model, (x * 16).long(), y, eps=0.1)
    with pytest.raises(ConfigError, match="outside the bounds"):
        pgd(organism.model, x * 3, y, eps=0.1)
    with pytest.raises(ConfigError, match="no gradient"):
        fgsm(lambda t: organism.model.run(t.round().detach()), x, y, eps=0.1)


def test_same_strength_as_torchattacks(organism):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = digits("score")
    net = _Images(organism.model.module)  # torchattacks' L2 attack expects [batch, C, H, W]
    for eps, norm, ref in [
        (0.05, "linf", torchattacks.PGD(net, eps=0.05, alpha=0.0125, steps=10)),
        (0.8, "l2", torchattacks.PGDL2(net, eps=0.8, alpha=0.2, steps=10)),
    ]:
        ours = pgd(organism.model, x, y, eps=eps, alpha=eps / 4, steps=10, norm=norm, seed=0)
        torch.manual_seed(0)
        adv = ref(x.view(-1, 1, 8, 8), y)
        with torch.no_grad():
            theirs = (net(adv).argmax(-1) != y)[ours.clean_correct].float().mean()
        # the same algorithm with different random starts: equal within sampling noise
        assert abs(ours.success_rate - float(theirs)) < 0.06, (
            norm,
            ours.success_rate,
            float(theirs),
        )
