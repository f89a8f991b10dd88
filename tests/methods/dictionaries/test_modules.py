from __future__ import annotations

import pytest
import torch

from interplab.errors import ConfigError, ShapeError
from interplab.methods.dictionaries import DictionaryConfig, SparseDictionary


def test_topk_keeps_at_most_k_latents():
    d = SparseDictionary(DictionaryConfig(d_in=8, d_latent=32, activation="topk", k=3))
    latents = d.encode(torch.randn(50, 8, generator=torch.Generator().manual_seed(0)))
    assert latents.shape == (50, 32)
    assert int((latents > 0).sum(1).max()) <= 3 and (latents >= 0).all()


def test_jumprelu_zeroes_below_threshold_and_trains_the_threshold():
    d = SparseDictionary(
        DictionaryConfig(
            d_in=4,
            d_latent=6,
            activation="jumprelu",
            jumprelu_threshold=0.5,
            jumprelu_bandwidth=0.2,
        )
    )
    pre = torch.tensor([[0.3, 0.45, 0.55, 1.0, -1.0, 0.7]], requires_grad=True)
    out = d.activate(pre)
    assert torch.equal(out.detach(), torch.tensor([[0.0, 0.0, 0.55, 1.0, 0.0, 0.7]]))
    out.sum().backward()
    # straight-through: only latents within bandwidth/2 of the threshold move it
    grad = d.log_threshold.grad
    assert grad[1] != 0 and grad[2] != 0
    assert grad[0] == 0 and grad[3] == 0 and grad[4] == 0 and grad[5] == 0
    assert torch.equal(pre.grad, torch.tensor([[0.0, 0.0, 1.0, 1.0, 0.0, 1.0]]))
    d.zero_grad()
    d.sparsity_penalty(pre.detach(), out.detach()).backward()  # L0 penalty pushes θ up
    assert d.log_threshold.grad[1] < 0


def test_wrong_width_input_is_a_shape_error():
    d = SparseDictionary(DictionaryConfig(d_in=8, d_latent=16))
    with pytest.raises(ShapeError, match="width 8"):
        d(torch.randn(3, 7))


def test_decoder_rows_start_unit_norm_and_projection_keeps_them():
    d = SparseDictionary(DictionaryConfig(d_in=8, d_latent=16))
    assert torch.allclose(d.W_dec.norm(dim=1), torch.ones(16))
    d(torch.randn(10, 8, generator=torch.Generator().manual_seed(0))).pow(2).sum().backward()
    d.project_decoder_grad()
    radial = (d.W_dec.grad * d.W_dec.detach()).sum(1).abs()
    assert float(radial.max()) < 1e-5 * float(d.W_dec.grad.norm(dim=1).max())


def test_k_is_only_checked_for_topk():
    assert DictionaryConfig(d_in=4, d_latent=6, activation="relu").k == 8


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(activation="gelu"), "activation"),
        (dict(activation="topk", k=100), "exceeds d_latent"),
        (dict(d_in=0), "d_in"),
        (dict(lr=0.0), "lr"),
    ],
)
def test_bad_config(kwargs, needle):
    base = dict(d_in=4, d_latent=8)
    with pytest.raises(ConfigError, match=needle):
        DictionaryConfig(**{**base, **kwargs})


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_a_dictionary_does_not_start_at_the_features_of_an_organism_with_its_seed(seed):
    """Both draw unit rows from a seeded generator; unsalted, the first decoder rows *were* the
    true features (MMCS ~1 before any training)."""
    from interplab.data.synthetic import SyntheticConfig, SyntheticFeatures

    truth = SyntheticFeatures(SyntheticConfig(n_features=32, d=16, seed=seed)).directions
    d = SparseDictionary(DictionaryConfig(d_in=16, d_latent=64, activation="relu", seed=seed))
    cos = torch.nn.functional.normalize(d.W_dec.detach(), dim=1) @ truth.T  # [latent, feature]
    assert float(cos.abs().max(0).values.mean()) < 0.9


def test_saved_dictionaries_follow_the_umask(tmp_path):
    import os

    from interplab.methods.dictionaries.checkpoint import save_dictionary

    old = os.umask(0o022)
    try:
        path = save_dictionary(
            SparseDictionary(DictionaryConfig(d_in=4, d_latent=8, activation="relu")),
            tmp_path / "d.safetensors",
        )
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
