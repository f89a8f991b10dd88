"""Replacement parts: swap a component for a part built from its explanation and see whether
the model still does its task.

The explanation "components N compute variable v" (a located variable of a
:class:`~interplab.methods.causal.hypothesis.CausalHypothesis`) yields a part: it computes v
symbolically (the RASP operation, run by the high-level program on the actual inputs) and writes,
at each aligned site and position, the model's mean activation over fit inputs with that value
of v there (the least-squares linear map from the one-hot value into the model's own
representation: the compiled op mapped into the trained model's space by the alignment).

:func:`replacement_fidelity` reports task accuracy (whole output sequence right) of the original
model, with the part, and with the component mean-ablated, plus KL to the original recovered by
the part relative to mean ablation:

    fidelity      = acc(replaced) / acc(original)
    mean_fidelity = acc(mean-ablated) / acc(original)
    kl_recovered  = 1 - KL(orig || replaced) / KL(orig || mean-ablated)

The reverse direction (a compiled block replaced by a dictionary reconstruction) is
:mod:`interplab.eval.dictionary_replacement`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from interplab.core.interventions import Mean, Replace
from interplab.core.sites import Site
from interplab.errors import ConfigError
from interplab.methods.causal.hypothesis import CausalHypothesis
from interplab.methods.causal.program import outputs_equal, run_program

Tensor = torch.Tensor


class FidelityRatios:
    """Ratios shared by replacement results: from ``accuracy_original``, ``accuracy_replaced``,
    ``accuracy_mean_ablated``, ``kl_replaced`` and ``kl_mean_ablated`` of the subclass."""

    @property
    def fidelity(self) -> float:
        """Task accuracy with the replacement, as a fraction of the original's."""
        return self.accuracy_replaced / max(self.accuracy_original, 1e-12)  # type: ignore[attr-defined]

    @property
    def mean_fidelity(self) -> float:
        """The same with the component mean-ablated instead (the baseline)."""
        return self.accuracy_mean_ablated / max(self.accuracy_original, 1e-12)  # type: ignore[attr-defined]

    @property
    def kl_recovered(self) -> float:
        """1 - KL(replaced) / KL(mean-ablated); NaN when mean ablation changes nothing."""
        kl_mean = self.kl_mean_ablated  # type: ignore[attr-defined]
        return 1.0 - self.kl_replaced / kl_mean if kl_mean > 1e-12 else float("nan")  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ReplacementResult(FidelityRatios):
    """Scores of one replacement. ``components``: what was swapped (display strings)."""

    variable: str
    components: tuple[str, ...]
    accuracy_original: float
    accuracy_replaced: float
    accuracy_mean_ablated: float
    kl_replaced: float
    kl_mean_ablated: float
    n_fit: int
    n_eval: int


def value_prototypes(
    model: Any, hyp: CausalHypothesis, variable: str, inputs: Sequence[Sequence[Any]]
) -> dict[Site, dict[tuple[int, str], Tensor]]:
    """site -> {(position, repr(value)): mean activation [d]} over ``inputs``; position 0 (BOS)
    is keyed by value ``"<bos>"``."""
    real = hyp.alignment[variable]
    _, cache = model.run_with_cache(hyp.encode(inputs), real.sites)
    vals = [run_program(hyp.program, xs)[variable] for xs in inputs]
    out: dict[Site, dict[tuple[int, str], Tensor]] = {}
    for site in real.sites:
        acts = cache[site]  # [b, p, d]
        sums: dict[tuple[int, str], list] = {}
        for i, row in enumerate(vals):
            keys = [(0, "<bos>")] + [(p + 1, repr(v)) for p, v in enumerate(row)]
            for pos, key in enumerate(keys):
                entry = sums.setdefault(key, [torch.zeros(acts.shape[-1]), 0])
                entry[0] += acts[i, pos]
                entry[1] += 1
        out[site] = {k: s / c for k, (s, c) in sums.items()}
    return out


def _part(table: dict[tuple[int, str], Tensor], values: list[list[Any]], fallback: Tensor):
    """fn(current [b, p, d]) -> prototype activations for the batch's variable values."""
    rows = []
    for row in values:
        keys = [(0, "<bos>")] + [(p + 1, repr(v)) for p, v in enumerate(row)]
        rows.append(torch.stack([table.get(k, fallback[pos]) for pos, k in enumerate(keys)]))
    new = torch.stack(rows)
    return lambda current: new.to(current.dtype)


def replacement_fidelity(
    model: Any,
    hyp: CausalHypothesis,
    variable: str,
    inputs: Sequence[Sequence[Any]],
    *,
    n_fit: int = 1024,
    n_eval: int = 512,
    seed: int = 0,
) -> ReplacementResult:
    """Swap the components computing ``variable`` for the part built from the explanation."""
    if variable not in hyp.alignment:
        raise ConfigError(
            f"{hyp.name!r} does not locate {variable!r}; it locates {sorted(hyp.alignment)}"
        )
    rng = random.Random(seed)
    pool = list(inputs)
    rng.shuffle(pool)
    half = len(pool) // 2
    fit = pool[: min(n_fit, half)]
    ev = pool[half:][:n_eval] if len(pool) > 1 else pool
    real = hyp.alignment[variable]
    tables = value_prototypes(model, hyp, variable, fit)
    _, fit_cache = model.run_with_cache(hyp.encode(fit), real.sites)
    means = {s: fit_cache[s].mean(0) for s in real.sites}
    vals = [run_program(hyp.program, xs)[variable] for xs in ev]
    tok = hyp.encode(ev)
    parts = [Replace(s, fn=_part(tables[s], vals, means[s])) for s in real.sites]
    ablate = [Mean(s, mean=_whole_mean(model, s, hyp.encode(fit))) for s in real.sites]
    with torch.no_grad():
        orig = model.run(tok)
        rep = model.run_with(tok, parts)
        mab = model.run_with(tok, ablate)
    truth = hyp.predict(ev)

    def acc(logits: Tensor) -> float:
        pred = hyp.decode(logits)
        return sum(outputs_equal(p, t, numerical=hyp.numerical) for p, t in zip(pred, truth)) / len(
            ev
        )

    def kl(logits: Tensor) -> float:
        lp, lq = orig[:, 1:].log_softmax(-1), logits[:, 1:].log_softmax(-1)
        return float((lp.exp() * (lp - lq)).sum(-1).mean())

    comps = tuple(str(n) for n in real.nodes) or tuple(str(s) for s in real.sites)
    return ReplacementResult(
        variable, comps, acc(orig), acc(rep), acc(mab), kl(rep), kl(mab), len(fit), len(ev)
    )


def _whole_mean(model: Any, site: Site, tokens: Tensor) -> Tensor:
    """Batch mean of the whole tensor at ``site.without_head()`` (what ``Mean`` expects)."""
    base = site.without_head()
    _, cache = model.run_with_cache(tokens, [base])
    return cache[base].mean(0)
