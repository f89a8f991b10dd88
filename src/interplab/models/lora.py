"""Low-rank adapters (LoRA) on the weight matrices of interplab's hooked Llama
(:mod:`interplab.models.pretrained.llama`).

The Llama keeps its maps as bare matrices used as ``x @ W`` (``W_Q, W_K, W_V, W_O`` of each
attention block, ``W_gate, W_up, W_down`` of each MLP), not ``nn.Linear`` layers. An adapter
re-parametrises a chosen matrix ``W [d_in, d_out]`` as

    W + (alpha / rank) * A @ B        A [d_in, rank] ~ N(0, 1/d_in) (seeded), B [rank, d_out] = 0

through :mod:`torch.nn.utils.parametrize`, so the model's own forward (and every hook site) is
unchanged and ``B = 0`` leaves its outputs exactly as they were. :func:`attach_lora` freezes
every parameter of the model and makes only the adapters' ``lora_A``/``lora_B`` trainable:
the flat "trainable parameters" vector that training-data attribution builds is then the
adapters alone. ``torch.func.functional_call`` with the adapters' names evaluates the model at
other adapter values (per-example gradients by ``vmap``).

State-dict keys of an adapter follow ``parametrize``:
``blocks.{l}.attn.parametrizations.W_Q.0.lora_A``; the frozen base matrix is
``blocks.{l}.attn.parametrizations.W_Q.original``. :func:`adapters_off` bypasses every adapter
for a block of code (the base model, e.g. for a membership baseline).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from interplab.errors import ConfigError

Tensor = torch.Tensor
ATTN_TARGETS = ("W_Q", "W_K", "W_V", "W_O")
MLP_TARGETS = ("W_gate", "W_up", "W_down")


@dataclass(frozen=True)
class LoRAConfig:
    """Where the adapters go and their size.

    Attributes:
        layers: block indices that get adapters (negative counts from the end).
        targets: which matrices of each block (names from ATTN_TARGETS and MLP_TARGETS).
        rank: the adapters' rank r.
        alpha: scale numerator; the update is ``alpha / rank * A @ B``.
        seed: seeds the initialisation of every ``A``.
    """

    layers: tuple[int, ...]
    targets: tuple[str, ...] = ATTN_TARGETS + MLP_TARGETS
    rank: int = 8
    alpha: float = 16.0
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [t for t in self.targets if t not in ATTN_TARGETS + MLP_TARGETS]
        if bad or not self.targets:
            raise ConfigError(
                f"LoRA targets must be among {ATTN_TARGETS + MLP_TARGETS}, got {self.targets}"
            )
        if self.rank < 1 or not self.layers:
            raise ConfigError(
                f"LoRA needs rank >= 1 and some layers, got {self.rank}, {self.layers}"
            )

    def to_dict(self) -> dict:
        return asdict(self)


class LoRA(nn.Module):
    """The parametrization ``W -> W + scale * A @ B`` of one matrix (see the module docstring)."""

    def __init__(self, d_in: int, d_out: int, rank: int, alpha: float, gen: torch.Generator):
        super().__init__()
        self.lora_A = nn.Parameter(torch.randn(d_in, rank, generator=gen) / math.sqrt(d_in))
        self.lora_B = nn.Parameter(torch.zeros(rank, d_out))
        self.scale = alpha / rank
        self.enabled = True

    def forward(self, W: Tensor) -> Tensor:
        if not self.enabled:
            return W
        return W + self.scale * (self.lora_A @ self.lora_B)


def _owner(block: nn.Module, target: str) -> nn.Module:
    return block.attn if target in ATTN_TARGETS else block.mlp  # type: ignore[return-value]


def attach_lora(model: nn.Module, cfg: LoRAConfig) -> list[str]:
    """Freeze ``model`` (a :class:`~interplab.models.pretrained.llama.Llama`) and add adapters
    per ``cfg``; returns the names of the trainable parameters (as in ``named_parameters``).
    ConfigError when the model has no such blocks or already carries adapters."""
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise ConfigError(f"LoRA needs a hooked Llama (with .blocks), got {type(model).__name__}")
    if has_lora(model):
        raise ConfigError("this model already carries LoRA adapters")
    n = len(blocks)
    layers = sorted({(layer + n) if layer < 0 else layer for layer in cfg.layers})
    if any(not 0 <= layer < n for layer in layers):
        raise ConfigError(f"LoRA layers {cfg.layers} outside the model's {n} blocks")
    for p in model.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(cfg.seed)
    for layer in layers:
        for target in cfg.targets:
            owner = _owner(blocks[layer], target)
            w = getattr(owner, target)
            d_in, d_out = w.shape
            adapter = LoRA(d_in, d_out, cfg.rank, cfg.alpha, gen).to(w.dtype)
            parametrize.register_parametrization(owner, target, adapter)
    return adapter_names(model)


def has_lora(model: nn.Module) -> bool:
    return any(isinstance(m, LoRA) for m in model.modules())


def adapter_names(model: nn.Module) -> list[str]:
    """Names of the adapter parameters, in ``named_parameters`` order."""
    return [n for n, _ in model.named_parameters() if n.endswith((".lora_A", ".lora_B"))]


def adapter_state(model: nn.Module) -> dict[str, Tensor]:
    """A detached copy of every adapter parameter, keyed as in ``model.state_dict()``."""
    return {
        n: p.detach().clone()
        for n, p in model.named_parameters()
        if n.endswith((".lora_A", ".lora_B"))
    }


def load_adapter_state(model: nn.Module, state: dict[str, Tensor]) -> None:
    """Copy ``state`` (from :func:`adapter_state`) into the model's adapters; ConfigError when
    the names or shapes differ."""
    params = dict(model.named_parameters())
    names = set(adapter_names(model))
    if set(state) != names:
        missing, extra = sorted(names - set(state)), sorted(set(state) - names)
        raise ConfigError(
            f"adapter state does not fit this model: missing {missing[:3]}, unexpected {extra[:3]}"
        )
    with torch.no_grad():
        for n, v in state.items():
            if params[n].shape != v.shape:
                raise ConfigError(
                    f"adapter {n} has shape {tuple(v.shape)}, the model's {tuple(params[n].shape)}"
                )
            params[n].copy_(v)


@contextlib.contextmanager
def adapters_off(model: nn.Module) -> Iterator[None]:
    """Bypass every adapter of ``model`` inside the block (the base model's outputs exactly)."""
    adapters = [m for m in model.modules() if isinstance(m, LoRA)]
    before = [a.enabled for a in adapters]
    for a in adapters:
        a.enabled = False
    try:
        yield
    finally:
        for a, b in zip(adapters, before):
            a.enabled = b


def n_adapter_params(model: nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if n.endswith((".lora_A", ".lora_B")))
