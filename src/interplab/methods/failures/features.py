"""SAE latents as the units of a failure explanation.

A sparse dictionary ``D`` (e.g. TopK, trained with :mod:`interplab.methods.dictionaries` on the
site's activations on *clean* data only) splits the activation at ``site`` into latent
contributions plus an error:  a = Σ_i f_i · W_dec[i] + b_dec + err.  Latent ``i`` is "patched
back" by adding its change in contribution to the failing run:

    a_fail + Σ_{i ∈ S} (f_i(clean) - f_i(fail)) · W_dec[i]

(the error term and the other latents stay at their failing values). Patching "only the rest"
sets the site to its clean value minus the same sum, so the dictionary's error change goes with
the rest. Scores per example ([batch, d_latent]) use the same methods as
:func:`interplab.methods.failures.explain_failure`:

    activation   one run per latent with that latent patched back; score = Δm
    attribution  ∂m/∂a · (Δf_i · W_dec[i]), one backward
    activation_change   |Δf_i| · ‖W_dec[i]‖ (no model reasoning)
    random       seeded noise (the control)

with m = logit[clean label] - logit[failing label] on the failing run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from interplab.core.interventions import Patch
from interplab.core.sites import Site
from interplab.errors import ConfigError, ShapeError, unknown_name
from interplab.methods import registry
from interplab.methods.base import Cost, Result
from interplab.methods.failures.explain import (
    Explainer,
    _metric,
    _site_grads,
    explainers,
    select_logits,
    top_k_mask,
)

Tensor = torch.Tensor


@dataclass(frozen=True, eq=False)
class FeatureFailureExplanation(Result):
    """Per-example latent scores [batch, d_latent] at ``site`` (higher: carries more of the
    failure); ``cost``: model passes."""

    site: Site
    dictionary: Any
    scores: Tensor
    method: str
    clean_labels: Tensor
    fail_labels: Tensor
    output_position: int | None

    @property
    def n_units(self) -> int:
        return self.scores.shape[1]

    def top(self, k: int) -> Tensor:
        """[batch, d_latent] bool: each example's ``k`` highest-scoring latents."""
        return top_k_mask(self.scores, k)


def latent_deltas(dictionary: Any, a_clean: Tensor, a_fail: Tensor) -> Tensor:
    """Per-latent change in contribution: [batch, d_latent, d_in] = (f_clean - f_fail)_i · W_dec[i]."""
    with torch.no_grad():
        df = dictionary.encode(a_clean) - dictionary.encode(a_fail)
        return df.unsqueeze(-1) * dictionary.W_dec.unsqueeze(0)


def patch_latents(
    model: Any,
    site: Site,
    dictionary: Any,
    a_clean: Tensor,
    a_fail: Tensor,
    failing: Any,
    chosen: Tensor,
    rest: bool = False,
) -> Tensor:
    """Run ``failing`` with the latents ``chosen`` ([batch, d_latent] bool) patched back to their
    clean contributions; with ``rest``, everything *but* them (the site at its clean value minus
    the chosen latents' change)."""
    moved = (latent_deltas(dictionary, a_clean, a_fail) * chosen.unsqueeze(-1)).sum(1)
    value = a_clean - moved if rest else a_fail + moved
    return model.run_with(failing, [Patch(site, value=value)])


def _check(model: Any, site: Site, dictionary: Any) -> None:
    model.check_site(site)
    if getattr(getattr(dictionary, "config", None), "is_transcoder", False):
        raise ConfigError(
            "failure explanation with latents needs an autoencoder (SAE), not a transcoder"
        )
    if not hasattr(dictionary, "encode") or not hasattr(dictionary, "W_dec"):
        raise ConfigError("dictionary must be a SparseDictionary (interplab.methods.dictionaries)")


@dataclass(frozen=True, eq=False)
class _LatentRun:
    """A prepared run whose units are the latents of ``dictionary`` at ``site`` (what a
    registered :class:`~.explain.Explainer` scores): ``deltas`` [batch, d_latent, d_in] is
    each latent's change in contribution from the failing to the clean run."""

    site: Site
    deltas: Tensor
    a_fail: Tensor
    fail_logits: Tensor
    cl: Tensor
    fl: Tensor
    output_position: int | None
    seed: int

    @property
    def n_units(self) -> int:
        return self.deltas.shape[1]

    def change_scores(self) -> Tensor:
        return self.deltas.norm(dim=-1)

    def patching_scores(self, model: Any, failing: Any) -> Tensor:
        base = _metric(self.fail_logits, self.cl, self.fl)
        cols = []
        with torch.no_grad():
            for i in range(self.n_units):
                patch = Patch(self.site, value=self.a_fail + self.deltas[:, i])
                out = select_logits(model.run_with(failing, [patch]), self.output_position)
                cols.append(_metric(out, self.cl, self.fl) - base)
        return torch.stack(cols, 1)

    def gradient_scores(self, model: Any, failing: Any) -> Tensor:
        site = self.site
        g = _site_grads(model, failing, [site], self.cl, self.fl, self.output_position)[site]
        return (self.deltas * g.unsqueeze(1)).sum(-1)  # g: [batch, d_in]


def explain_failure_features(
    model: Any,
    clean: Any,
    failing: Any,
    *,
    site: Site,
    dictionary: Any,
    method: str = "attribution",
    clean_labels: Tensor | None = None,
    output_position: int | None = None,
    seed: int = 0,
) -> FeatureFailureExplanation:
    """Score every latent of ``dictionary`` (an SAE on ``site``, activations [batch, d_in]) for
    carrying the failure on each (clean, failing) pair, with the registered explainer
    ``method`` (one of :func:`~.explain.explainers`)."""
    if method not in explainers():
        raise unknown_name("failure explainer", method, explainers())
    explainer = registry.get("failures", method).fn
    if not isinstance(explainer, Explainer):
        raise ConfigError(f"failure explainer {method!r} cannot score dictionary latents")
    start = time.perf_counter()
    _check(model, site, dictionary)
    _, cc = model.run_with_cache(clean, [site])
    fail_out, fc = model.run_with_cache(failing, [site])
    a_clean, a_fail = cc[site], fc[site]
    if a_fail.dim() != 2 or a_fail.shape[-1] != dictionary.d_in:
        raise ShapeError(
            f"site {site} gives activations {tuple(a_fail.shape)}; latent units need "
            f"[batch, {dictionary.d_in}] (one vector per example)"
        )
    with torch.no_grad():
        clean_pred = select_logits(model.run(clean), output_position).argmax(-1)
    fail_logits = select_logits(fail_out, output_position)
    cl = clean_pred if clean_labels is None else torch.as_tensor(clean_labels, dtype=torch.long)
    fl = fail_logits.argmax(-1)
    deltas = latent_deltas(dictionary, a_clean, a_fail)  # [batch, latent, d_in]
    run = _LatentRun(site, deltas, a_fail, fail_logits, cl, fl, output_position, seed)
    scores, forward, backward = explainer.score(model, failing, run)
    return FeatureFailureExplanation(
        site,
        dictionary,
        scores.detach().float(),
        method,
        cl,
        fl,
        output_position,
        cost=Cost(forward=3 + forward, backward=backward),
        seconds=time.perf_counter() - start,
    )
