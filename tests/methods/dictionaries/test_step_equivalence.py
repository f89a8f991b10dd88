"""The hand-written ReLU/TopK training step computes what the autograd step computed.

``_reference_step`` is the training step as it was before the manual gradients (autograd through
``SparseDictionary``'s forward, sparsity penalty, decoder-gradient projection, Adam,
renormalisation), kept here verbatim as the definition the fast step must match.
"""

from __future__ import annotations

import copy

import pytest
import torch

from interplab.methods.dictionaries import DictionaryConfig, SparseDictionary
from interplab.methods.dictionaries.train import _manual_grads, _train_step


def _reference_step(d: SparseDictionary, opt: torch.optim.Optimizer, x, y):
    pre = d.pre_activations(x)
    latents = d.activate(pre)
    recon = d.decode(latents)
    mse = ((recon - y) ** 2).sum(-1).mean()
    loss = mse + d.sparsity_penalty(pre, latents)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if d.config.normalize_decoder:
        d.project_decoder_grad()
    opt.step()
    if d.config.normalize_decoder:
        d.normalize_decoder()
    return latents.detach(), float(loss.detach()), float(mse.detach())


CASES = {
    "relu": dict(activation="relu", l1_coefficient=3e-2),
    "relu-odd-batch": dict(activation="relu", l1_coefficient=3e-2, batch_size=37),
    "relu-free-decoder": dict(activation="relu", l1_coefficient=3e-2, normalize_decoder=False),
    "relu-transcoder": dict(activation="relu", l1_coefficient=3e-2, d_out=5),
    "topk": dict(activation="topk", k=4),
    "topk-transcoder": dict(activation="topk", k=4, d_out=5),
}


def _setup(dtype: torch.dtype, **kw):
    cfg = DictionaryConfig(**{"d_in": 12, "d_latent": 40, "batch_size": 64, "seed": 3, **kw})
    d = SparseDictionary(cfg).to(dtype)
    with torch.no_grad():  # a non-zero decoder bias, so the centring's share of its gradient counts
        d.b_dec.add_(0.1 * torch.randn(cfg.out_width, generator=torch.Generator().manual_seed(1)))
        d.b_enc.add_(0.1 * torch.randn(cfg.d_latent, generator=torch.Generator().manual_seed(2)))
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(cfg.batch_size, cfg.d_in, generator=gen).to(dtype)
    y = torch.randn(cfg.batch_size, cfg.out_width, generator=gen).to(dtype) if cfg.d_out else x
    return d, x, y


def _autograd_grads(d: SparseDictionary, x, y) -> dict[str, torch.Tensor]:
    pre = d.pre_activations(x)
    latents = d.activate(pre)
    loss = ((d.decode(latents) - y) ** 2).sum(-1).mean() + d.sparsity_penalty(pre, latents)
    d.zero_grad(set_to_none=True)
    loss.backward()
    return {name: p.grad.clone() for name, p in d.named_parameters()}


@pytest.mark.parametrize("case", list(CASES))
def test_manual_gradients_equal_autograd(case):
    for dtype, rtol in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
        d, x, y = _setup(dtype, **CASES[case])
        want = _autograd_grads(d, x, y)
        d.zero_grad(set_to_none=True)
        _manual_grads(d, x, y)
        for name, p in d.named_parameters():
            scale = float(want[name].abs().max())
            assert scale > 0, name  # every gradient is exercised
            err = float((p.grad - want[name]).abs().max())
            assert err <= rtol * scale, (case, dtype, name, err, scale)


@pytest.mark.parametrize("case", list(CASES))
def test_one_training_step_equals_the_autograd_step(case):
    d_new, x, y = _setup(torch.float64, **CASES[case])
    d_old = copy.deepcopy(d_new)
    opt_new = torch.optim.Adam(d_new.parameters(), lr=1e-2)
    opt_old = torch.optim.Adam(d_old.parameters(), lr=1e-2)
    for _ in range(3):  # three steps: Adam's moments and the renormalised decoder carry over
        lat_old, loss_old, mse_old = _reference_step(d_old, opt_old, x, y)
        lat_new, loss_new, mse_new, fired = _train_step(d_new, opt_new, x, y)
        assert torch.allclose(lat_new, lat_old, rtol=0, atol=1e-12)  # addmm rounds its bias add
        assert torch.equal(lat_new > 0, lat_old > 0)
        assert torch.equal(fired, (lat_old > 0).any(0))
        assert loss_new == pytest.approx(loss_old, rel=1e-12)
        assert mse_new == pytest.approx(mse_old, rel=1e-12)
        for (name, p_new), p_old in zip(d_new.named_parameters(), d_old.parameters()):
            assert torch.allclose(p_new, p_old, rtol=0, atol=1e-12), name
    assert not torch.equal(d_new.W_enc, _setup(torch.float64, **CASES[case])[0].W_enc)  # it moved


@pytest.mark.parametrize("case", list(CASES))
def test_the_float32_step_matches_to_float_rounding(case):
    d_new, x, y = _setup(torch.float32, **CASES[case])
    d_old = copy.deepcopy(d_new)
    opt_new = torch.optim.Adam(d_new.parameters(), lr=1e-3)
    opt_old = torch.optim.Adam(d_old.parameters(), lr=1e-3)
    _reference_step(d_old, opt_old, x, y)
    _train_step(d_new, opt_new, x, y)
    for (name, p_new), p_old in zip(d_new.named_parameters(), d_old.parameters()):
        assert float((p_new - p_old).detach().abs().max()) <= 1e-6, name
