"""Poison detectors on a synthetic case with an obvious planted cluster: 3 Gaussian classes in 8
dimensions; 30 examples of class 0 (one source class, the setting of Tran et al. and Chen et al.)
get a 'trigger' (the last input set to 4) and the label 2, and a small MLP is trained on the
result, so it learns the shortcut."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from interplab.core.model import wrap_module
from interplab.core.sites import Site
from interplab.errors import ConfigError, ShapeError, UnknownNameError
from interplab.eval.poisoning import poison_detection_auroc, trigger_detection_auroc
from interplab.methods.poisoning import PoisonScores, detect_poison
from interplab.methods.registry import names

SITE = Site.module("act")
D, TARGET, TRIGGER_VALUE = 8, 2, 4.0


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(3, (n,), generator=gen)
    centres = torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0]])
    x = torch.randn(n, D, generator=gen) * 0.5
    x[:, :3] += centres[y]
    x[:, -1] = 0.0
    return x, y


def _trigger(x: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    x[:, -1] = TRIGGER_VALUE
    return x


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(0)
    x, y = _data(300, 0)
    source = (y == 0).nonzero().flatten()
    idx = source[torch.randperm(len(source), generator=torch.Generator().manual_seed(1))[:30]]
    x[idx], y[idx] = _trigger(x[idx]), TARGET
    net = nn.Sequential()
    net.add_module("hidden", nn.Linear(D, 16))
    net.add_module("act", nn.ReLU())
    net.add_module("out", nn.Linear(16, 3))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(300):
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    model = wrap_module(net, paths=["act"], name="synthetic")
    mask = torch.zeros(D)
    mask[-1] = 1.0
    pattern = torch.full((D,), TRIGGER_VALUE)
    return model, x, y, idx, (mask, pattern)


def test_the_synthetic_model_learned_the_planted_trigger(case):
    model, _, _, _, _ = case
    x, y = _data(200, 5)
    with torch.no_grad():
        assert float((model.run(x).argmax(-1) == y).float().mean()) >= 0.9
        keep = y != TARGET
        assert float((model.run(_trigger(x[keep])).argmax(-1) == TARGET).float().mean()) >= 0.9


@pytest.mark.parametrize(
    "method", ["activation_clustering", "spectral_signature", "sae_features", "oracle:trigger"]
)
def test_detectors_find_the_planted_cluster(case, method):
    model, x, y, idx, trigger = case
    found = detect_poison(
        model,
        x,
        y,
        method=method,
        site=SITE,
        seed=0,
        trigger=trigger,
        **({"steps": 400, "d_latent": 32, "k": 4} if method == "sae_features" else {}),
    )
    assert isinstance(found, PoisonScores) and found.scores.shape == (len(x),)
    assert bool(torch.isfinite(found.scores).all())
    assert poison_detection_auroc(found.scores, idx) >= 0.9
    xs, ys = _data(200, 7)
    clean, triggered = (
        found.score(xs),
        found.score(_trigger(xs[ys == 0])),
    )  # the poisoned source class
    assert trigger_detection_auroc(clean, triggered) >= 0.8


def test_input_anomaly_finds_isolated_mislabelled_examples(case):
    # a kNN detector finds examples far from their label's others; the planted poison above is a
    # dense cluster of 30, which it cannot single out with 10 neighbours (its AUROC there is ~0.8)
    model, _, _, _, _ = case
    x, y = _data(300, 3)
    wrong = (y == 0).nonzero().flatten()[:5]
    y = y.clone()
    y[wrong] = TARGET
    found = detect_poison(model, x, y, method="input_anomaly", neighbours=10)
    assert poison_detection_auroc(found.scores, wrong) >= 0.95
    assert found.score(x[:7]).shape == (7,)


def test_random_is_near_one_half_on_average(case):
    model, x, y, idx, _ = case
    values = [
        poison_detection_auroc(detect_poison(model, x, y, method="random", seed=s).scores, idx)
        for s in range(30)
    ]
    assert abs(sum(values) / len(values) - 0.5) < 0.03
    a = detect_poison(model, x, y, method="random", seed=3).scores
    assert torch.equal(a, detect_poison(model, x, y, method="random", seed=3).scores)


def test_loss_scores_are_per_example_cross_entropy(case):
    model, x, y, _, _ = case
    found = detect_poison(model, x, y, method="loss")
    with torch.no_grad():
        expected = nn.functional.cross_entropy(model.run(x), y, reduction="none")
    assert torch.allclose(found.scores, expected)


def test_bad_input_gets_clear_errors(case):
    model, x, y, _, _ = case
    assert set(names("poisoning")) >= {
        "activation_clustering",
        "spectral_signature",
        "sae_features",
        "loss",
        "input_anomaly",
        "random",
        "oracle:trigger",
    }
    with pytest.raises(UnknownNameError):
        detect_poison(model, x, y, method="spectral_signatures", site=SITE)
    with pytest.raises(ConfigError, match="site="):
        detect_poison(model, x, y, method="activation_clustering")
    with pytest.raises(ConfigError, match="trigger="):
        detect_poison(model, x, y, method="oracle:trigger")
    with pytest.raises(ShapeError):
        detect_poison(model, x, y[:-1], method="loss")
    with pytest.raises(ShapeError):
        detect_poison(model, x, y.float(), method="loss")
    with pytest.raises(ConfigError, match="bad option"):
        detect_poison(model, x, y, method="input_anomaly", neighbors=3)
