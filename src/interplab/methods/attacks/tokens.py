"""Greedy token substitution for token models (GCG, Zou et al. 2023, one swap per step).

Each step, for every row: take the gradient of the loss w.r.t. a one-hot encoding of the tokens
(the embedding site is replaced by ``one_hot @ W_E``, so no model code changes); at each editable
position the ``top_k`` tokens with the most negative gradient are the candidates; sample
``n_candidates`` single swaps (position, candidate), evaluate them all *exactly* with a batched
forward pass, and keep the best if it lowers the loss. Rows stop once the attack succeeds.

The loss is the cross-entropy of ``target`` at ``output_position`` (targeted), or minus that of
the true ``label`` (untargeted). Works on any :class:`HookedModel` that exposes the ``embed``
site and an embedding matrix at ``module.embed.W_E`` (native transformers, compiled organisms,
the hooked Llama that runs SmolLM2).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from interplab.core.sites import Component, Site
from interplab.errors import ConfigError
from interplab.methods.base import Cost, Result
from interplab.methods.registry import register

Tensor = torch.Tensor


@dataclass(frozen=True, eq=False)
class TokenAttackResult(Result):
    """Result of :func:`gcg`: ``tokens_adv`` [batch, pos], predictions at ``output_position``
    before/after, ``success`` [batch], the final loss per row; ``cost``: the passes used."""

    tokens: Tensor
    tokens_adv: Tensor
    clean_pred: Tensor
    adv_pred: Tensor
    labels: Tensor | None
    target: Tensor | None
    success: Tensor
    loss: Tensor
    steps: int

    @property
    def success_rate(self) -> float:
        return float(self.success.float().mean()) if len(self.success) else float("nan")

    @property
    def n_swaps(self) -> Tensor:
        return (self.tokens_adv != self.tokens).sum(-1)


def embedding_matrix(model: Any) -> Tensor:
    """The token embedding matrix [vocab, d_model] of a hooked token model."""
    embed = getattr(getattr(model, "module", None), "embed", None)
    w = getattr(embed, "W_E", None)
    if not isinstance(w, Tensor) or not model.has_site(Site(Component.EMBED)):
        raise ConfigError(
            f"{getattr(model, 'name', type(model).__name__)} is not a token model "
            "with an `embed` site and module.embed.W_E; gcg attacks token models only "
            "(use pgd for continuous inputs)"
        )
    return w


def _loss(logits: Tensor, pos: int, goal: Tensor, targeted: bool) -> Tensor:
    """Per-row loss (lower is better for the attacker)."""
    ce = F.cross_entropy(logits[:, pos], goal, reduction="none")
    return ce if targeted else -ce


def _one_hot_grad(
    model: Any, w_e: Tensor, tokens: Tensor, pos: int, goal: Tensor, targeted: bool
) -> Tensor:
    one_hot = F.one_hot(tokens, w_e.shape[0]).to(w_e.dtype).requires_grad_(True)
    with torch.enable_grad():
        emb = one_hot @ w_e.detach()
        with model.hooks({Site(Component.EMBED): lambda value: emb}):
            logits = model.forward(tokens)
        (grad,) = torch.autograd.grad(_loss(logits, pos, goal, targeted).sum(), one_hot)
    return grad


@register(
    "attacks",
    "gcg",
    kind="method",
    cost_unit="passes",
    metric="attack_success",
    needs_gradients=True,
)
def gcg(
    model: Any,
    tokens: Tensor,
    labels: Tensor | int | None = None,
    *,
    target: Tensor | int | None = None,
    positions: Sequence[int] | None = None,
    output_position: int = -1,
    steps: int = 20,
    top_k: int = 8,
    n_candidates: int = 32,
    forbidden_tokens: Sequence[int] = (),
    eval_batch: int = 1024,
    seed: int = 0,
    progress: bool = False,
) -> TokenAttackResult:
    """Greedy gradient-ranked token swaps (see the module doc). Give ``target`` (targeted) or
    ``labels`` (untargeted). ``positions``: the editable positions (default: all but the output
    position); ``forbidden_tokens`` are never inserted (e.g. BOS, padding)."""
    from tqdm.auto import tqdm

    w_e = embedding_matrix(model)
    vocab = w_e.shape[0]
    if not isinstance(tokens, Tensor) or tokens.is_floating_point() or tokens.dim() != 2:
        raise ConfigError(
            "gcg takes integer token ids of shape [batch, pos]; for continuous inputs use pgd"
        )
    if (target is None) == (labels is None):
        raise ConfigError("give exactly one of target= (targeted) or labels= (untargeted)")
    n, length = tokens.shape
    targeted = target is not None
    with torch.no_grad():
        logits = model.forward(tokens)
    n_out = logits.shape[-1]
    goal = torch.as_tensor(target if targeted else labels, dtype=torch.long).expand(n).clone()
    bad = sorted({int(v) for v in goal.unique() if not 0 <= int(v) < n_out})
    if bad:
        raise ConfigError(
            f"{'target' if targeted else 'label'} class {bad[0]} does not exist: the "
            f"model has outputs 0..{n_out - 1}"
        )
    out_pos = output_position % length
    if positions is None:
        editable = [p for p in range(length) if p != out_pos]
    else:
        editable = [int(p) for p in positions]
        if any(not -length <= p < length for p in editable):
            raise ConfigError(
                f"editable positions must lie in [0, {length}), got {list(positions)}"
            )
        editable = sorted({p % length for p in editable})
    if not editable:
        raise ConfigError("no editable positions: pass positions= with at least one position")
    if top_k < 1 or n_candidates < 1 or steps < 0:
        raise ConfigError("top_k and n_candidates must be ≥ 1 and steps ≥ 0")
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    clean_pred = logits[:, out_pos].argmax(-1)
    cur = tokens.clone()
    cur_loss = _loss(logits, out_pos, goal, targeted).detach()
    pred = clean_pred.clone()
    fwd, bwd = 1, 0
    blocked = torch.zeros(vocab, dtype=torch.bool)
    blocked[list(forbidden_tokens)] = True
    edit = torch.tensor(editable)
    for _ in tqdm(range(steps), desc="gcg", disable=not progress, leave=False):
        active = ((pred != goal) if targeted else (pred == goal)).nonzero().flatten()
        if len(active) == 0:
            break
        grad = _one_hot_grad(model, w_e, cur[active], out_pos, goal[active], targeted)
        fwd, bwd = fwd + 1, bwd + 1
        grad = grad[:, edit].masked_fill(blocked, float("inf"))
        cand = grad.topk(min(top_k, vocab), dim=-1, largest=False).indices  # [a, e, k]
        a = len(active)
        pick_pos = torch.randint(len(editable), (a, n_candidates), generator=gen)
        pick_tok = torch.randint(cand.shape[-1], (a, n_candidates), generator=gen)
        new_tok = cand[torch.arange(a)[:, None], pick_pos, pick_tok]
        trial = cur[active].unsqueeze(1).repeat(1, n_candidates, 1)
        trial.scatter_(2, edit[pick_pos].unsqueeze(-1), new_tok.unsqueeze(-1))
        flat = trial.reshape(a * n_candidates, length)
        with torch.no_grad():
            out = torch.cat(
                [model.forward(flat[i : i + eval_batch]) for i in range(0, len(flat), eval_batch)]
            )
        fwd += 1
        losses = _loss(out, out_pos, goal[active].repeat_interleave(n_candidates), targeted)
        losses = losses.view(a, n_candidates)
        best = losses.argmin(-1)
        best_loss = losses[torch.arange(a), best]
        better = best_loss < cur_loss[active]
        rows = active[better]
        cur[rows] = trial[torch.arange(a), best][better]
        cur_loss[rows] = best_loss[better]
        best_out = out.view(a, n_candidates, *out.shape[1:])[torch.arange(a), best, out_pos]
        pred[rows] = best_out.argmax(-1)[better]
    success = (pred == goal) if targeted else (pred != goal)
    return TokenAttackResult(
        tokens,
        cur,
        clean_pred,
        pred,
        None if targeted else goal,
        goal if targeted else None,
        success,
        cur_loss,
        steps,
        cost=Cost(forward=fwd, backward=bwd),
        seconds=time.perf_counter() - start,
        extra={"top_k": top_k, "n_candidates": n_candidates, "positions": editable},
    )
