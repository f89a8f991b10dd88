"""Logit lens and direct logit attribution (DLA) for a Llama-style :class:`HookedLlama`, on a
token task that scores one position per row (IOI, or your own
:class:`~interplab.tasks.Task`).

Logit lens: the task's logit difference read from each layer's ``resid_post`` through the final
RMSNorm and unembedding. DLA: each head's write (``attn_result``) at the scored position,
divided by the final RMSNorm's scale (taken from the real final residual, i.e. frozen), dotted
with ``W_U[:, right] - W_U[:, wrong]`` (minus the mean unembedding when the task has no wrong
answer); the heads' DLA plus the other components' sum to the final logit difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interplab.core.sites import Component, Site
from interplab.errors import ConfigError
from interplab.methods.base import Cost, Result
from interplab.methods.registry import register
from interplab.tasks import Task, check_task

Tensor = torch.Tensor
C = Component


@dataclass(frozen=True)
class LensResult(Result):
    """layer_logit_diff [n_layers] (logit lens after each layer); head_dla [layer, head];
    ``cost``: one forward pass with a cache."""

    layer_logit_diff: Tensor
    head_dla: Tensor
    final_logit_diff: float

    def to_dict(self) -> dict:
        return {
            "layer_logit_diff": self.layer_logit_diff.tolist(),
            "head_dla": self.head_dla.tolist(),
            "final_logit_diff": self.final_logit_diff,
        }


@register(
    "attribution", "logit_lens_and_dla", kind="method", cost_unit="passes", metric="logit_diff"
)
def logit_lens_and_dla(model, task: Task) -> LensResult:
    """``model``: a HookedLlama (needs ``model.model.ln_final`` and ``model.model.W_U``)."""
    task = check_task(task)
    if task.positions.shape[1] != 1:
        raise ConfigError(
            f"the logit lens and DLA read one scored position per prompt; task "
            f"{task.name!r} scores {task.positions.shape[1]}"
        )
    if task.labels is None:
        raise ConfigError(f"the logit lens and DLA score the labels; task {task.name!r} has none")
    llama = model.model
    last, right = task.positions[:, 0], task.labels[:, 0]
    n_layers = llama.cfg.n_layers
    sites = (
        [Site(C.RESID_POST, i) for i in range(n_layers)]
        + [Site(C.ATTN_RESULT, i) for i in range(n_layers)]
        + [Site(C.UNEMBED_IN)]
    )
    rows = torch.arange(len(task))
    with torch.no_grad():
        logits, cache = model.run_with_cache(task.clean, sites)
        wrong = (
            llama.W_U[:, task.wrong_labels[:, 0]]
            if task.wrong_labels is not None
            else llama.W_U.mean(1, keepdim=True)
        )
        direction = (llama.W_U[:, right] - wrong).T  # [n, d]
        lens = torch.stack(
            [
                task.logit_diffs_at(
                    llama.unembed_logits(cache[Site(C.RESID_POST, i)][rows, last]).unsqueeze(1)
                ).mean()
                for i in range(n_layers)
            ]
        )
        final = cache[Site(C.UNEMBED_IN)][rows, last]
        scale = torch.rsqrt(final.pow(2).mean(-1, keepdim=True) + llama.ln_final.eps)  # [n, 1]
        w = direction * llama.ln_final.w * scale  # [n, d]
        dla = torch.stack(
            [
                torch.einsum("nhd,nd->nh", cache[Site(C.ATTN_RESULT, i)][rows, last], w).mean(0)
                for i in range(n_layers)
            ]
        )
        final_ld = task.mean_logit_diff(logits).item()
    return LensResult(lens, dla, final_ld, cost=Cost(forward=1))
