"""Score a causal hypothesis by how well it predicts the model under interventions.

:func:`score_hypothesis` samples (input, intervention) pairs of three kinds

    interchange   base and source inputs; a located variable takes its value on the source
                  (realised at the hypothesis's sites/subspace)
    ablation      a component the hypothesis calls irrelevant is resample- or mean-ablated
    new_input     a fresh input, no intervention

runs the model on each, decodes its output and compares it with the hypothesis's prediction
(exact for categorical outputs, ``atol`` for numerical ones; a whole output sequence must
match). It reports

    counterfactual_accuracy  over all pairs (Wilson 95% interval)
    iia                      over interchange pairs only (Wilson 95% interval)
    loss_recovered           causal-scrubbing style: every irrelevant component resampled from a
                             random input and every located variable resampled from an input on
                             which it takes the same value; loss = KL(clean || run) per input
                             (MSE for numerical outputs); recovered = 1 - L_scrub / L_random with
                             L_random the loss of running on a random other input (bootstrap 95%)

each with its sample count.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

from interplab.core.model import mean_activations
from interplab.errors import ConfigError
from interplab.methods.causal.hypothesis import CausalHypothesis, node_site
from interplab.methods.causal.program import outputs_equal, run_program

Tensor = torch.Tensor
PAIR_KINDS = ("interchange", "ablation", "new_input")


@dataclass(frozen=True)
class Estimate:
    """A proportion or ratio with a 95% interval and the number of samples behind it."""

    value: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def wilson(successes: int, n: int, z: float = 1.96) -> Estimate:
    """Wilson score interval for ``successes`` out of ``n``."""
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n)


def bootstrap_ratio(num: Tensor, den: Tensor, *, n_boot: int = 500, seed: int = 0) -> Estimate:
    """1 - mean(num)/mean(den) with a percentile bootstrap interval over paired samples [n]."""
    n = int(num.shape[0])
    value = float(1 - num.mean() / den.mean().clamp_min(1e-12))
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n, (n_boot, n), generator=gen)
    boots = 1 - num[idx].mean(1) / den[idx].mean(1).clamp_min(1e-12)
    lo, hi = torch.quantile(boots, torch.tensor([0.025, 0.975])).tolist()
    return Estimate(value, lo, hi, n)


@dataclass(frozen=True)
class CounterfactualReport:
    """Scores of one hypothesis. ``by_kind``/``by_target``: accuracy per pair kind and per
    intervened variable or component (str). ``failures``: a few mismatching pairs."""

    hypothesis: str
    kind: str
    counterfactual_accuracy: Estimate
    iia: Estimate | None
    loss_recovered: Estimate | None
    by_kind: Mapping[str, Estimate]
    by_target: Mapping[str, Estimate]
    failures: tuple[dict, ...] = field(default=())

    def rows(self) -> dict[str, float]:
        out = {"counterfactual_accuracy": self.counterfactual_accuracy.value}
        if self.iia is not None:
            out["iia"] = self.iia.value
        if self.loss_recovered is not None:
            out["loss_recovered"] = self.loss_recovered.value
        return out


def score_hypothesis(model: Any, hyp: CausalHypothesis, inputs: Sequence[Sequence[Any]], *,
                     n_pairs: int = 200, kinds: Sequence[str] = PAIR_KINDS,
                     ablation: str = "resample", seed: int = 0, atol: float = 1e-2,
                     loss: bool = True, batch_size: int = 256) -> CounterfactualReport:
    """Counterfactual-prediction accuracy, IIA and loss recovered of ``hyp`` on ``model``.

    Args:
        model: a HookedModel whose inputs are ``hyp.encode(inputs)``.
        inputs: a pool of program inputs (all of the same length) to draw bases and sources from.
        n_pairs: pairs per kind (interchange pairs are split evenly over located variables,
            ablation pairs over irrelevant components).
        ablation: "resample" or "mean" for ablation pairs (means over the pool).
    """
    bad = [k for k in kinds if k not in PAIR_KINDS]
    if bad or not inputs:
        raise ConfigError(f"kinds must be among {PAIR_KINDS} (got {bad}) and inputs non-empty")
    if len({len(x) for x in inputs}) != 1:
        raise ConfigError("score_hypothesis needs inputs of one length (interchanges align by "
                          "position); group the pool by length and score each group")
    rng = random.Random(seed)
    results: list[tuple[str, str, bool, dict]] = []  # (kind, target, ok, detail)
    if "interchange" in kinds and hyp.alignment:
        names = sorted(hyp.alignment)
        for i, var in enumerate(names):
            m = n_pairs // len(names) + (1 if i < n_pairs % len(names) else 0)
            results += _interchange_pairs(model, hyp, var, inputs, m, rng, atol)
    if "ablation" in kinds and hyp.irrelevant:
        means = None
        if ablation == "mean":
            sites = {node_site(n).without_head() for n in hyp.irrelevant}
            means = mean_activations(model, hyp.encode(inputs[:2048]), sites)
        nodes = hyp.irrelevant
        for i, node in enumerate(nodes):
            m = n_pairs // len(nodes) + (1 if i < n_pairs % len(nodes) else 0)
            if m:
                results += _ablation_pairs(model, hyp, node, ablation, means, inputs, m, rng, atol)
    if "new_input" in kinds:
        xs = [inputs[rng.randrange(len(inputs))] for _ in range(n_pairs)]
        actual = _decode(model, hyp, hyp.encode(xs), [], batch_size)
        for x, pred, act in zip(xs, hyp.predict(xs), actual):
            ok = outputs_equal(pred, act, numerical=hyp.numerical, atol=atol)
            results.append(("new_input", "-", ok, {"input": list(x), "pred": pred, "actual": act}))

    def est(rows: list) -> Estimate:
        return wilson(sum(r[2] for r in rows), len(rows))

    by_kind = {k: est([r for r in results if r[0] == k]) for k in kinds
               if any(r[0] == k for r in results)}
    targets = sorted({(r[0], r[1]) for r in results})
    by_target = {f"{k}:{t}": est([r for r in results if (r[0], r[1]) == (k, t)]) for k, t in targets}
    iia = by_kind.get("interchange")
    failures = tuple({"kind": k, "target": t, **d} for k, t, ok, d in results if not ok)[:5]
    lr = loss_recovered(model, hyp, inputs, n=min(n_pairs, 256), seed=seed) if loss else None
    return CounterfactualReport(hyp.name, hyp.kind, est(results), iia, lr, by_kind, by_target,
                                failures)


def _decode(model: Any, hyp: CausalHypothesis, tokens: Tensor, interventions: list,
            batch_size: int) -> list[Any]:
    with torch.no_grad():
        logits = model.run_with(tokens, interventions) if interventions else model.run(tokens)
    return hyp.decode(logits)


def _interchange_pairs(model, hyp, var, inputs, m, rng, atol) -> list:
    bases = [inputs[rng.randrange(len(inputs))] for _ in range(m)]
    sources = [inputs[rng.randrange(len(inputs))] for _ in range(m)]
    if not m:
        return []
    src_tok = hyp.encode(sources)
    ivs = hyp.interchange(model, var, src_tok)
    actual = _decode(model, hyp, hyp.encode(bases), ivs, m)
    preds = hyp.predict_interchange(var, bases, sources)
    return [("interchange", var, outputs_equal(p, a, numerical=hyp.numerical, atol=atol),
             {"base": list(b), "source": list(s), "pred": p, "actual": a})
            for b, s, p, a in zip(bases, sources, preds, actual)]


def _ablation_pairs(model, hyp, node, how, means, inputs, m, rng, atol) -> list:
    bases = [inputs[rng.randrange(len(inputs))] for _ in range(m)]
    sources = [inputs[rng.randrange(len(inputs))] for _ in range(m)]
    site = node_site(node).without_head()
    iv = hyp.ablate(node, how, source_tokens=hyp.encode(sources),
                    mean=None if means is None else means[site])
    actual = _decode(model, hyp, hyp.encode(bases), [iv], m)
    return [("ablation", str(node), outputs_equal(p, a, numerical=hyp.numerical, atol=atol),
             {"base": list(b), "pred": p, "actual": a})
            for b, p, a in zip(bases, hyp.predict(bases), actual)]


def _per_input_loss(clean: Tensor, run: Tensor, numerical: bool) -> Tensor:
    """[b] loss of ``run`` logits against ``clean`` logits [b, p, v] (positions ≥1)."""
    clean, run = clean[:, 1:], run[:, 1:]
    if numerical or clean.shape[-1] == 1:
        return ((clean - run) ** 2).mean(dim=(1, 2))
    lp, lq = clean.log_softmax(-1), run.log_softmax(-1)
    return (lp.exp() * (lp - lq)).sum(-1).mean(-1)


def loss_recovered(model: Any, hyp: CausalHypothesis, inputs: Sequence[Sequence[Any]], *,
                   n: int = 256, seed: int = 0) -> Estimate:
    """Causal-scrubbing-style loss recovered (see the module docstring), bootstrap interval."""
    rng = random.Random(seed + 1)
    bases = [inputs[rng.randrange(len(inputs))] for _ in range(n)]
    randoms = [inputs[rng.randrange(len(inputs))] for _ in range(n)]
    tok = hyp.encode(bases)
    ivs = []
    for node in hyp.irrelevant:
        src = [inputs[rng.randrange(len(inputs))] for _ in range(n)]
        ivs.append(hyp.ablate(node, "resample", source_tokens=hyp.encode(src)))
    if hyp.alignment:
        pool = list(inputs) if len(inputs) <= 4096 else rng.sample(list(inputs), 4096)
        for var in sorted(hyp.alignment):
            index: dict[str, list] = {}
            for x in pool:
                index.setdefault(repr(run_program(hyp.program, x)[var]), []).append(x)
            src = []
            for b in bases:
                same = index.get(repr(run_program(hyp.program, b)[var]), [b])
                src.append(same[rng.randrange(len(same))])
            ivs += hyp.interchange(model, var, hyp.encode(src))
    with torch.no_grad():
        clean = model.run(tok)
        scrub = model.run_with(tok, ivs) if ivs else clean
        rand = model.run(hyp.encode(randoms))
    num = _per_input_loss(clean, scrub, hyp.numerical)
    den = _per_input_loss(clean, rand, hyp.numerical)
    return bootstrap_ratio(num, den, seed=seed)
