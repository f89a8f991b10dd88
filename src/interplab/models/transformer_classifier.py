"""A small causal transformer as a flat-parameter next-token classifier (a data-attribution organism).

:class:`TransformerClassifierSpec` stands beside :class:`~interplab.models.classifiers.ClassifierSpec`:
the same fields for training (``weight_decay``, ``steps``, ``lr``, ``n_checkpoints``, ``seed``;
trained by :func:`~interplab.models.classifiers.train_classifier`, full-batch Adam, float64, one
thread) and the same input format — a one-hot context window ``[n, context * vocab]`` as
:func:`interplab.data.passages.encode` writes it — but the network is interplab's native
:class:`~interplab.models.transformer.Transformer` (no layer norm, learned positions, causal
attention), reading the ``context`` tokens and predicting the next one from its last position.

Its parameters live in one flat vector ``theta``: the native module's parameters in
``named_parameters`` order, each flattened row-major; :meth:`TransformerClassifierSpec.logits`
evaluates the module on views of ``theta`` with ``torch.func.functional_call``, so per-example
gradients, Hessian- and Gauss-Newton-vector products work on it as on the MLP.

Without layer norm every parameter belongs to an affine map ``out = W in (+ b)`` applied at every
position: token and position embeddings (of one-hot inputs), each head's query/key/value maps,
the attention output map, the MLP's two maps and the unembedding. :meth:`linear_maps` returns
each as a :class:`LinearMap` (the index of its ``[out, in (+1)]`` block in ``theta``, its input and
its output on a batch) — what Kronecker-factored influence (EK-FAC) needs.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import torch

from interplab.errors import ConfigError
from interplab.models.config import TransformerConfig
from interplab.models.transformer import Transformer

Tensor = torch.Tensor
DTYPE = torch.float64


@dataclass(frozen=True)
class TransformerClassifierSpec:
    """A next-token transformer and how it is trained (every field enters the organism's fingerprint)."""

    kind: str = "transformer"
    n_classes: int = 16  # the vocabulary (input and output)
    context: int = 3
    d_model: int = 32
    n_heads: int = 1
    d_mlp: int = 64
    n_layers: int = 1
    init_std: float = 0.3
    weight_decay: float = 1e-3
    steps: int = 150  # Adam steps (full batch)
    lr: float = 0.02
    n_checkpoints: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind != "transformer":
            raise ConfigError(
                f"a TransformerClassifierSpec has kind 'transformer', got {self.kind!r}"
            )
        if (
            min(
                self.n_classes,
                self.context,
                self.d_model,
                self.n_heads,
                self.d_mlp,
                self.n_layers,
                self.steps,
                self.n_checkpoints,
            )
            < 1
            or self.d_model % self.n_heads
        ):
            raise ConfigError(
                f"transformer sizes, steps and checkpoints must be ≥ 1 and d_model a "
                f"multiple of n_heads: {self}"
            )
        _module(self)  # built now, never first inside a torch.func transform (which forbids it)

    @property
    def n_in(self) -> int:
        return self.context * self.n_classes

    @property
    def config(self) -> TransformerConfig:
        return TransformerConfig(
            n_layers=self.n_layers,
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_head=self.d_model // self.n_heads,
            d_mlp=self.d_mlp,
            d_vocab=self.n_classes,
            n_ctx=self.context,
            normalization="none",
            init_std=self.init_std,
            seed=self.seed,
        )

    @property
    def shapes(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """(name, shape) of each parameter, in the order of theta."""
        return _shapes(self)

    @property
    def n_params(self) -> int:
        return sum(_numel(s) for _, s in self.shapes)

    def to_json(self) -> dict:
        return asdict(self)

    # -- the functional model --------------------------------------------------------------
    def unflatten(self, theta: Tensor) -> dict[str, Tensor]:
        out, start = {}, 0
        for name, shape in self.shapes:
            out[name] = theta[start : start + _numel(shape)].view(shape)
            start += _numel(shape)
        return out

    def tokens(self, x: Tensor) -> Tensor:
        """One-hot windows [n, context * vocab] -> token ids [n, context]."""
        return x.reshape(x.shape[0], self.context, self.n_classes).argmax(-1)

    def logits(self, theta: Tensor, x: Tensor) -> Tensor:
        """Next-token logits [n, vocab] (the last position's)."""
        return torch.func.functional_call(_module(self), self.unflatten(theta), (self.tokens(x),))[
            :, -1
        ]

    def features(self, theta: Tensor, x: Tensor) -> Tensor:
        """The unembedding's input at the last position [n, d_model]."""
        with _capture(_module(self), ["hook_unembed_in"]) as got:
            self.logits(theta, x)
        return got["hook_unembed_in"][:, -1]

    def init_theta(self) -> Tensor:
        """The native module's seeded initialisation, flattened."""
        module = Transformer(self.config).to(DTYPE)
        return torch.cat([p.detach().flatten() for p in module.parameters()])

    def linear_maps(self, theta: Tensor, x: Tensor) -> tuple[Tensor, list[LinearMap]]:
        """Logits [n, vocab] and every affine map of the network on this batch (outputs in the
        autograd graph of ``theta``; inputs detached)."""
        return _linear_maps(self, theta, x)


@dataclass(frozen=True)
class LinearMap:
    """``output[n, p] = W @ input[n, p] (+ b)`` with ``[W | b] = theta[index]`` (index [out, in (+1)])."""

    name: str
    index: Tensor
    inputs: Tensor  # [n, pos, in]
    output: Tensor  # [n, pos, out], or [n, pos, heads, d_head] for query/key/value (out = heads * d_head)
    bias: bool


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


@functools.lru_cache(maxsize=8)
def _module(spec: TransformerClassifierSpec) -> Transformer:
    """A module of the spec's shape; its own weights are never used (functional_call replaces all of
    them with views of theta; it has no buffers)."""
    return Transformer(spec.config).requires_grad_(False)


@functools.lru_cache(maxsize=8)
def _shapes(spec: TransformerClassifierSpec) -> tuple[tuple[str, tuple[int, ...]], ...]:
    return tuple((n, tuple(p.shape)) for n, p in _module(spec).named_parameters())


class _capture:
    """Context manager: forward hooks keeping the outputs of the named hook points."""

    def __init__(self, module: torch.nn.Module, names: list[str]):
        self.module, self.names = module, names
        self.got: dict[str, Tensor] = {}
        self.handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> dict[str, Tensor]:
        for name in self.names:

            def hook(_m, _a, out, name=name):
                self.got[name] = out

            self.handles.append(self.module.get_submodule(name).register_forward_hook(hook))
        return self.got

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()


def _offsets(spec: TransformerClassifierSpec) -> dict[str, int]:
    out, start = {}, 0
    for name, shape in spec.shapes:
        out[name] = start
        start += _numel(shape)
    return out


def _block(weight: Tensor, bias: Tensor | None) -> Tensor:
    """[out, in] weight index (+ [out] bias index) -> [out, in (+1)]."""
    return weight if bias is None else torch.cat([weight, bias[:, None]], 1)


def _in_out(offset: int, n_in: int, n_out: int) -> Tensor:
    """Index [out, in] of a weight stored [in, out] (x @ W) at ``offset``."""
    return offset + torch.arange(n_in * n_out).view(n_in, n_out).T


def _bias(offset: int, n: int) -> Tensor:
    return offset + torch.arange(n)


def _linear_maps(
    spec: TransformerClassifierSpec, theta: Tensor, x: Tensor
) -> tuple[Tensor, list[LinearMap]]:
    cfg, off = spec.config, _offsets(spec)
    h, d, dh, m, v, c = cfg.n_heads, cfg.d_model, cfg.d_head, cfg.d_mlp, cfg.d_vocab, cfg.n_ctx
    names = ["hook_embed", "hook_pos_embed", "hook_unembed_in", "hook_logits"]
    for layer in range(cfg.n_layers):
        names += [
            f"blocks.{layer}.{s}"
            for s in (
                "hook_resid_pre",
                "attn.hook_q",
                "attn.hook_k",
                "attn.hook_v",
                "attn.hook_z",
                "hook_attn_out",
                "hook_mlp_in",
                "mlp.hook_pre",
                "mlp.hook_post",
                "hook_mlp_out",
            )
        ]
    tokens = spec.tokens(x)
    with _capture(_module(spec), names) as got:
        logits = torch.func.functional_call(_module(spec), spec.unflatten(theta), (tokens,))[:, -1]
    n, p = tokens.shape
    flat = lambda t: t.reshape(n, p, -1)  # noqa: E731  [n, p, h, e] -> [n, p, h * e]

    def affine(
        name: str, prefix: str, w: str, n_in: int, n_out: int, inputs: Tensor, output: str
    ) -> LinearMap:
        """The map ``inputs @ W + b`` into the captured hook ``output``, of the parameters
        ``<prefix>W_<w>`` [n_in, n_out] and ``<prefix>b_<w>`` [n_out]."""
        weight = _in_out(off[f"{prefix}W_{w}"], n_in, n_out)
        return LinearMap(
            name, _block(weight, _bias(off[f"{prefix}b_{w}"], n_out)), inputs, got[output], True
        )

    maps = [
        LinearMap(
            "embed",
            _in_out(off["embed.W_E"], v, d),
            torch.nn.functional.one_hot(tokens, v).to(DTYPE),
            got["hook_embed"],
            False,
        ),
        LinearMap(
            "pos_embed",
            _in_out(off["pos_embed.W_pos"], c, d),
            torch.eye(c, dtype=DTYPE)[:p].expand(n, p, c),
            got["hook_pos_embed"],
            False,
        ),
    ]
    for layer in range(cfg.n_layers):
        pre, a = f"blocks.{layer}.", f"blocks.{layer}.attn."
        for w in "QKV":  # W_w [h, d, dh]: out (head, e), in d
            weight = (
                (off[a + "W_" + w] + torch.arange(h * d * dh).view(h, d, dh))
                .permute(0, 2, 1)
                .reshape(h * dh, d)
            )
            maps.append(
                LinearMap(
                    f"{layer}.W_{w}",
                    _block(weight, _bias(off[a + "b_" + w], h * dh)),
                    got[pre + "hook_resid_pre"].detach(),
                    got[a + f"hook_{w.lower()}"],
                    True,
                )
            )
        mlp = pre + "mlp."
        z, mlp_in, post = flat(got[a + "hook_z"]), got[pre + "hook_mlp_in"], got[mlp + "hook_post"]
        maps += [
            affine(f"{layer}.W_O", a, "O", h * dh, d, z.detach(), pre + "hook_attn_out"),
            affine(f"{layer}.W_in", mlp, "in", d, m, mlp_in.detach(), mlp + "hook_pre"),
            affine(f"{layer}.W_out", mlp, "out", m, d, post.detach(), pre + "hook_mlp_out"),
        ]
    unembed_in = got["hook_unembed_in"].detach()
    maps.append(affine("unembed", "unembed.", "U", d, v, unembed_in, "hook_logits"))
    return logits, maps
