"""The sparse dictionary module: encoder, sparse activation, decoder.

Shapes: x [batch, d_in] -> latents [batch, d_latent] -> reconstruction [batch, d_out].
Weights follow ``W_enc`` [d_in, d_latent], ``W_dec`` [d_latent, d_out]; each row of ``W_dec`` is
one dictionary direction (unit norm when the config asks for it).
"""

from __future__ import annotations

import torch
from torch import nn

from interplab.errors import ShapeError
from interplab.methods.dictionaries.config import DictionaryConfig


def _rectangle(u: torch.Tensor) -> torch.Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


#: XOR-ed into a dictionary's seed for its initial weights
INIT_SALT = 0x5D1C7


class _JumpReLU(torch.autograd.Function):
    """``z · H(z - θ)``; the threshold gets a straight-through pseudo-gradient
    ``-(θ/ε) K((z-θ)/ε)`` with a rectangle kernel K of bandwidth ε."""

    @staticmethod
    def forward(ctx, z, threshold, bandwidth: float):
        ctx.save_for_backward(z, threshold)
        ctx.bandwidth = bandwidth
        return z * (z > threshold).to(z.dtype)

    @staticmethod
    def backward(ctx, grad):
        z, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_z = grad * (z > threshold).to(z.dtype)
        grad_t = (-(threshold / eps) * _rectangle((z - threshold) / eps) * grad).sum(0)
        return grad_z, grad_t, None


class _Step(torch.autograd.Function):
    """``H(z - θ)``, with pseudo-gradient ``-(1/ε) K((z-θ)/ε)`` for θ and none for z."""

    @staticmethod
    def forward(ctx, z, threshold, bandwidth: float):
        ctx.save_for_backward(z, threshold)
        ctx.bandwidth = bandwidth
        return (z > threshold).to(z.dtype)

    @staticmethod
    def backward(ctx, grad):
        z, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_t = (-(1.0 / eps) * _rectangle((z - threshold) / eps) * grad).sum(0)
        return torch.zeros_like(z), grad_t, None


class SparseDictionary(nn.Module):
    """A sparse autoencoder or transcoder; see :class:`DictionaryConfig`.

    An autoencoder subtracts ``b_dec`` before encoding (its decoder bias is a learned centre);
    a transcoder encodes its input as is.
    """

    def __init__(self, config: DictionaryConfig) -> None:
        super().__init__()
        self.config = config
        # salted: a dictionary and a synthetic organism given the same seed must not draw the
        # same directions (the dictionary would start at the true features)
        gen = torch.Generator().manual_seed(config.seed ^ INIT_SALT)
        d_in, d_lat, d_out = config.d_in, config.d_latent, config.out_width
        dec = torch.randn(d_lat, d_out, generator=gen)
        dec = dec / dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(dec)
        enc = (
            dec.T.clone() if d_out == d_in else torch.randn(d_in, d_lat, generator=gen) / d_in**0.5
        )
        self.W_enc = nn.Parameter(enc)
        self.b_enc = nn.Parameter(torch.zeros(d_lat))
        self.b_dec = nn.Parameter(torch.zeros(d_out))
        if config.activation == "jumprelu":
            self.log_threshold = nn.Parameter(
                torch.full((d_lat,), float(config.jumprelu_threshold)).log()
            )

    # ---- shapes -------------------------------------------------------------------------
    @property
    def d_in(self) -> int:
        return self.config.d_in

    @property
    def d_out(self) -> int:
        return self.config.out_width

    @property
    def directions(self) -> torch.Tensor:
        """Dictionary directions [latent, d_out], unit norm."""
        w = self.W_dec.detach()
        return w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def _check(self, x: torch.Tensor, width: int, what: str) -> None:
        if x.ndim < 1 or x.shape[-1] != width:
            raise ShapeError(
                f"{what} must end in width {width} (the dictionary's {'d_in' if what == 'input' else 'd_out'}), "
                f"got shape {tuple(x.shape)}; train a dictionary with DictionaryConfig(d_in={x.shape[-1] if x.ndim else '?'}) "
                f"for this site, or pick a site of width {width}"
            )

    # ---- forward ------------------------------------------------------------------------
    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder output before the sparse activation [..., latent]."""
        self._check(x, self.d_in, "input")
        centred = x - self.b_dec if not self.config.is_transcoder else x
        return centred @ self.W_enc + self.b_enc

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if cfg.activation == "relu":
            return torch.relu(pre)
        if cfg.activation == "topk":
            values, idx = torch.relu(pre).topk(cfg.k, dim=-1)
            return torch.zeros_like(pre).scatter(-1, idx, values)
        return _JumpReLU.apply(pre, self.log_threshold.exp(), cfg.jumprelu_bandwidth)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latents [..., latent] (non-negative, sparse) for inputs [..., d_in]."""
        return self.activate(self.pre_activations(x))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Reconstruction [..., d_out] from latents [..., latent]."""
        return latents @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction (autoencoder) or prediction (transcoder) [..., d_out]."""
        return self.decode(self.encode(x))

    def sparsity_penalty(self, pre: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """Scalar penalty added to the loss: L1 ("relu"), L0 via STE ("jumprelu"), 0 ("topk")."""
        cfg = self.config
        if cfg.activation == "relu":
            return cfg.l1_coefficient * latents.abs().sum(-1).mean()
        if cfg.activation == "jumprelu":
            l0 = _Step.apply(pre, self.log_threshold.exp(), cfg.jumprelu_bandwidth).sum(-1).mean()
            return cfg.l0_coefficient * l0
        return pre.new_zeros(())

    # ---- decoder constraint -------------------------------------------------------------
    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Remove the part of W_dec's gradient that would change its rows' norms."""
        if self.W_dec.grad is None:
            return
        unit = self.directions
        self.W_dec.grad -= (self.W_dec.grad * unit).sum(1, keepdim=True) * unit

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12))
