"""Per-head activation patching and attribution patching on any token task.

A task (:class:`~interplab.tasks.Task`: IOI, induction, or your own) gives clean
and corrupted prompts, the scored positions and the right (and wrong) answers; its metric is the
mean logit difference. Activation patching (denoising): run the corrupted prompts, put one
head's clean ``attn_z`` back, and measure how much of the clean logit difference returns:
``score = (LD_patched - LD_corrupt) / (LD_clean - LD_corrupt)`` (1 = the head alone restores
the behaviour). Models that accept :class:`~interplab.models.pretrained.llama.PartialRun`
restart at the patched layer from the cached corrupted residual and unembed only the scored
position when the task scores one position per row; others run in full.

Attribution patching: the first-order estimate of the same quantity from one corrupted
forward/backward: ``(z_clean - z_corrupt) . d LD / d z`` summed over positions and d_head.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from interplab.core.interventions import Patch, Replace
from interplab.core.model import HookedModel
from interplab.core.sites import Component, Site
from interplab.errors import ConfigError
from interplab.methods.base import Cost, Result
from interplab.methods.registry import register
from interplab.tasks import Task, check_task

Tensor = torch.Tensor
C = Component


@dataclass(frozen=True)
class PatchingResult(Result):
    """scores [layer, head] (normalised as in the module docstring); logit diffs are means;
    ``cost``: model passes over the task's batch."""

    scores: Tensor
    clean_ld: float
    corrupt_ld: float
    method: str

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "scores": self.scores.tolist(),
            "clean_logit_diff": self.clean_ld,
            "corrupt_logit_diff": self.corrupt_ld,
            "seconds": self.seconds,
        }


def _ld(task: Task, logits: Tensor) -> Tensor:
    """Per-row logit difference (mean over the scored positions); logits [b, p, v], or [b, 1, v]
    from a partial run that unembedded only the (single) scored position."""
    if logits.shape[1] == 1 and task.seq_len > 1:
        return task.logit_diffs_at(logits).mean(1)
    return task.logit_diffs(logits).mean(1)


def _partial(model: HookedModel, task: Task):
    if task.positions.shape[1] != 1:
        return None
    try:
        from interplab.models.pretrained.llama import HookedLlama, PartialRun
    except ImportError:  # pragma: no cover
        return None
    return PartialRun if isinstance(model, HookedLlama) else None


def _sizes(model: HookedModel) -> tuple[int, int]:
    """(n_layers, n_heads) read from ``model.cfg``."""
    cfg = getattr(model, "cfg", None)
    if cfg is None or not hasattr(cfg, "n_layers") or not hasattr(cfg, "n_heads"):
        raise ConfigError(
            f"head patching reads n_layers and n_heads from model.cfg; {type(model).__name__} "
            "has no such config"
        )
    return int(cfg.n_layers), int(cfg.n_heads)


@register(
    "attribution", "activation_patching", kind="method", cost_unit="passes", metric="logit_diff"
)
def activation_patching(
    model: HookedModel, task: Task, *, progress: bool = False
) -> PatchingResult:
    """Patch each head's clean attn_z into the corrupted run, one head at a time
    (``progress`` shows a bar over the n_layers * n_heads patched runs)."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    ds = check_task(task)
    n_layers, n_heads = _sizes(model)
    z_sites = [Site(C.ATTN_Z, layer) for layer in range(n_layers)]
    resid_sites = [Site(C.RESID_PRE, layer) for layer in range(n_layers)]
    clean_out, clean = model.run_with_cache(ds.clean, z_sites)
    partial = _partial(model, ds)
    corrupt_out, corrupt = model.run_with_cache(ds.corrupted, resid_sites if partial else [])
    clean_ld = _ld(ds, clean_out).mean().item()
    corrupt_ld = _ld(ds, corrupt_out).mean().item()
    denom = clean_ld - corrupt_ld if abs(clean_ld - corrupt_ld) > 1e-8 else 1e-8
    scores = torch.zeros(n_layers, n_heads)
    with tqdm(total=n_layers * n_heads, desc="patching heads", disable=not progress) as bar:
        for layer in range(n_layers):
            inputs = (
                partial(corrupt[resid_sites[layer]], layer, ds.positions[:, 0])
                if partial
                else ds.corrupted
            )
            for head in range(n_heads):
                site = Site(C.ATTN_Z, layer, head)
                out = model.run_with(inputs, [Patch(site, clean[site])])
                scores[layer, head] = (_ld(ds, out).mean().item() - corrupt_ld) / denom
                bar.update()
    return PatchingResult(
        scores,
        clean_ld,
        corrupt_ld,
        "activation_patching",
        cost=Cost(forward=2 + n_layers * n_heads),
        seconds=time.perf_counter() - start,
    )


@register(
    "attribution",
    "attribution_patching",
    kind="method",
    cost_unit="passes",
    metric="logit_diff",
    needs_gradients=True,
)
def attribution_patching(model: HookedModel, task: Task) -> PatchingResult:
    """Linear estimate of :func:`activation_patching` from one backward pass."""
    start = time.perf_counter()
    ds = check_task(task)
    n_layers, _ = _sizes(model)
    z_sites = [Site(C.ATTN_Z, layer) for layer in range(n_layers)]
    clean_out, clean = model.run_with_cache(ds.clean, z_sites)
    leaves: dict[Site, Tensor] = {}

    def leaf(site: Site):
        def fn(value: Tensor) -> Tensor:
            leaves[site] = value.detach().requires_grad_(True)
            return leaves[site]

        return fn

    with torch.enable_grad():
        out = model.run_with(ds.corrupted, [Replace(s, leaf(s)) for s in z_sites], grad=True)
        ld = _ld(ds, out)
        grads = torch.autograd.grad(ld.mean(), [leaves[s] for s in z_sites])
    clean_ld = _ld(ds, clean_out).mean().item()
    corrupt_ld = ld.mean().item()
    denom = clean_ld - corrupt_ld if abs(clean_ld - corrupt_ld) > 1e-8 else 1e-8
    # g is the gradient of the batch *mean*, so per-prompt terms are summed (not averaged again)
    scores = (
        torch.stack(
            [
                ((clean[s] - leaves[s].detach()) * g).sum(dim=(0, 1, 3))
                for s, g in zip(z_sites, grads)
            ]
        )
        / denom
    )
    return PatchingResult(
        scores,
        clean_ld,
        corrupt_ld,
        "attribution_patching",
        cost=Cost(forward=2, backward=1),
        seconds=time.perf_counter() - start,
    )
