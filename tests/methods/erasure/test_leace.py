"""LEACE leaves no linear information about the concept on the data it was fit on."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import ConfigError, ShapeError
from interplab.methods.erasure import fit_leace


def _data(n=400, d=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randint(0, 2, (n,), generator=gen)
    mix = torch.randn(d, d, generator=gen)
    x = torch.randn(n, d, generator=gen) @ mix + 2.0 * z[:, None] * torch.randn(d, generator=gen)
    return x, z


def _probe_accuracy(x, z, steps=300):
    xs = (x - x.mean(0)) / x.std(0).clamp_min(1e-6)
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xs @ w + b, z.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(((xs @ w + b > 0).long() == z).float().mean())


def test_concept_is_linearly_decodable_before_and_not_after():
    x, z = _data()
    assert _probe_accuracy(x, z) > 0.9
    eraser = fit_leace(x, z)
    xe = eraser.apply(x)
    assert eraser.rank == 1
    # the class-conditional means coincide (zero cross-covariance)
    assert torch.allclose(xe[z == 1].mean(0), xe[z == 0].mean(0), atol=1e-3)
    majority = max(float(z.float().mean()), 1 - float(z.float().mean()))
    assert _probe_accuracy(xe, z) <= majority + 0.03


def test_least_squares_probe_is_constant_after_erasure():
    x, z = _data(seed=1)
    xe = fit_leace(x, z).apply(x).double()
    design = torch.cat([xe, torch.ones(len(xe), 1, dtype=torch.float64)], 1)
    coef = torch.linalg.lstsq(design, z.double()[:, None], rcond=1e-5, driver="gelsd").solution
    fitted = (design @ coef).flatten()
    assert float(fitted.std()) < 1e-3  # the best linear fit is the constant mean


def test_erasure_moves_little_where_the_concept_is_absent():
    x, _ = _data(seed=2)
    z = torch.randint(0, 2, (len(x),), generator=torch.Generator().manual_seed(9))  # unrelated
    shift = (fit_leace(x, z).apply(x) - x).norm(dim=1).mean() / x.norm(dim=1).mean()
    assert shift < 0.2


def test_multi_column_concept_and_rank_deficient_features():
    x, z = _data(d=6, seed=3)
    x = torch.cat([x, x[:, :2]], 1)  # duplicated columns: singular covariance
    onehot = torch.nn.functional.one_hot(torch.randint(0, 3, (len(x),)), 3).float()
    onehot[:, 0] = z.float()
    xe = fit_leace(x, onehot).apply(x)
    cross = (xe - xe.mean(0)).T @ (onehot - onehot.mean(0)) / len(x)
    assert cross.abs().max() < 1e-3


def test_bad_input():
    with pytest.raises(ShapeError):
        fit_leace(torch.zeros(5), torch.zeros(5))
    with pytest.raises(ShapeError):
        fit_leace(torch.zeros(5, 3), torch.zeros(4))
    with pytest.raises(ConfigError):
        fit_leace(torch.zeros(1, 3), torch.zeros(1))
    eraser = fit_leace(*_data())
    with pytest.raises(ShapeError):
        eraser.apply(torch.zeros(2, 5))


def test_random_eraser_has_the_rank_and_mean_but_not_the_concepts_subspace():
    import torch

    from interplab.methods.erasure import fit_leace, random_eraser

    gen = torch.Generator().manual_seed(0)
    z = torch.randint(0, 2, (400,), generator=gen)
    x = torch.randn(400, 16, generator=gen, dtype=torch.float64)
    x[:, 0] += 3.0 * z  # the concept lives on the first coordinate
    fitted = fit_leace(x, z)
    control = random_eraser(fitted, seed=1)
    assert control.rank == fitted.rank == 1 and torch.equal(control.mean, fitted.mean)
    p = control.proj
    assert torch.allclose(p @ p, p, atol=1e-10) and torch.allclose(p, p.T, atol=1e-12)
    gap = lambda e: float((e.apply(x)[z == 1, 0].mean() - e.apply(x)[z == 0, 0].mean()).abs())  # noqa: E731
    assert (
        gap(fitted) < 1e-6 < 1.0 < gap(control)
    )  # the random subspace leaves the concept in place
    assert not torch.equal(random_eraser(fitted, seed=2).proj, p)
