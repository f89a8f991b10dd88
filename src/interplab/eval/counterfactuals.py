"""Score a causal hypothesis by how well it predicts the model under interventions.

:func:`score_hypothesis` draws (input, intervention) pairs of three kinds

    interchange   base and source inputs; a located variable takes its value on the source
                  (realised at the hypothesis's sites/subspace)
    ablation      a component the hypothesis calls irrelevant is resample- or mean-ablated
    new_input     a fresh input, no intervention

runs the model on each, decodes its output and compares it with the hypothesis's prediction
(exact for categorical outputs, ``atol`` for numerical ones; a whole output sequence must
match). The inputs of every kind are drawn by :func:`sample_pairs` from the input pool and the
seed alone, never from the hypothesis: every hypothesis scored on one organism with one seed
sees the same n and the same bases/sources for each kind that applies to it (the hypothesis
only decides *which* variable or component a pair intervenes on, round-robin over the ones it
names). It reports, per kind, each with its n and a Wilson 95% interval,

    counterfactual_accuracy_interchange  share of interchange pairs predicted (= IIA)
    counterfactual_accuracy_ablation     share of ablation pairs predicted
    counterfactual_accuracy_new_input    share of new inputs predicted: every hypothesis with
                                         the right program passes these, whatever it says
                                         about the model's insides

and, when a kind does not apply to a hypothesis (no located variable: no interchange; no
component called irrelevant: no ablation), the reason instead of a number. Accuracies are never
pooled over kinds: new-input pairs would give every hypothesis with the right program a floor.

    hypothesis_loss_recovered  causal-scrubbing style: every irrelevant component resampled from
                               a random input and every located variable resampled from an input
                               on which it takes the same value; loss = KL(clean || run) per
                               input (MSE for numerical outputs); recovered = 1 - L_scrub /
                               L_random with L_random the loss of running on a random other
                               input (bootstrap 95%). Not the features track's
                               ``loss_recovered`` (a dictionary spliced into the model). Not
                               measured for a hypothesis that neither locates a variable nor
                               calls a component irrelevant: there is nothing to scrub, and
                               the unscrubbed model would "recover" 1.0 trivially.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from interplab.core.model import mean_activations
from interplab.errors import ConfigError
from interplab.eval.stats import Estimate, bootstrap_ratio, wilson
from interplab.methods.causal.hypothesis import CausalHypothesis, node_site
from interplab.methods.causal.program import outputs_equal, run_program

Tensor = torch.Tensor
PAIR_KINDS = ("interchange", "ablation", "new_input")


@dataclass(frozen=True)
class CounterfactualReport:
    """Scores of one hypothesis (see the module docstring).

    Attributes:
        by_kind: pair kind -> accuracy on that kind's pairs, for the kinds that apply.
        omitted: metric name (``counterfactual_accuracy_<kind>``, ``hypothesis_loss_recovered``)
            -> why it was not measured (it does not apply to this hypothesis).
        hypothesis_loss_recovered: None when not measured (not asked for, or in ``omitted``).
        by_target: "kind:variable-or-component" -> accuracy on those pairs.
        failures: a few mismatching pairs.
    """

    hypothesis: str
    kind: str
    by_kind: Mapping[str, Estimate]
    omitted: Mapping[str, str]
    hypothesis_loss_recovered: Estimate | None
    by_target: Mapping[str, Estimate]
    failures: tuple[dict, ...] = field(default=())

    @property
    def iia(self) -> Estimate | None:
        """Interchange-intervention accuracy: the accuracy on interchange pairs (None when the
        hypothesis locates no variable)."""
        return self.by_kind.get("interchange")

    def estimates(self) -> dict[str, Estimate]:
        """Metric name -> estimate: ``counterfactual_accuracy_<kind>`` per scored kind and
        ``hypothesis_loss_recovered`` when measured."""
        out = {f"counterfactual_accuracy_{k}": e for k, e in self.by_kind.items()}
        if self.hypothesis_loss_recovered is not None:
            out["hypothesis_loss_recovered"] = self.hypothesis_loss_recovered
        return out

    def rows(self) -> dict[str, float]:
        """Metric name -> value: the estimates, plus ``n_<kind>`` (pairs scored) per kind."""
        out = {name: e.value for name, e in self.estimates().items()}
        out.update({f"n_{k}": float(e.n) for k, e in self.by_kind.items()})
        return out


def sample_pairs(
    inputs: Sequence[Sequence[Any]], n: int, seed: int, kind: str
) -> tuple[list, list]:
    """``n`` (base, source) inputs for pairs of ``kind``, drawn uniformly with replacement.

    Depends only on the pool, ``n``, ``seed`` and ``kind`` (each kind has its own stream), so
    every hypothesis scored with the same arguments gets identical pairs."""
    rng = random.Random(f"counterfactual-pairs/{seed}/{kind}")
    bases = [inputs[rng.randrange(len(inputs))] for _ in range(n)]
    sources = [inputs[rng.randrange(len(inputs))] for _ in range(n)]
    return bases, sources


def _round_robin(n: int, targets: Sequence[Any]) -> dict[Any, list[int]]:
    """Pair indices 0..n-1 dealt to ``targets`` in turn: target -> its pair indices."""
    return {t: list(range(i, n, len(targets))) for i, t in enumerate(targets)}


def not_applicable(hyp: CausalHypothesis, kind: str) -> str | None:
    """Why ``kind`` pairs do not apply to ``hyp`` (None when they do)."""
    if kind == "interchange" and not hyp.alignment:
        return (
            f"{hyp.name!r} locates no variable (a circuit-only claim), so it predicts no "
            "interchange"
        )
    if kind == "ablation" and not hyp.irrelevant:
        return (
            f"{hyp.name!r} calls no component irrelevant (no circuit claim, or its circuit "
            "is every head and MLP), so it predicts no ablation"
        )
    return None


def score_hypothesis(
    model: Any,
    hyp: CausalHypothesis,
    inputs: Sequence[Sequence[Any]],
    *,
    n_pairs: int = 200,
    kinds: Sequence[str] = PAIR_KINDS,
    ablation: str = "resample",
    seed: int = 0,
    atol: float = 1e-2,
    loss: bool = True,
) -> CounterfactualReport:
    """Counterfactual-prediction accuracy per pair kind, and hypothesis loss recovered.

    Args:
        model: a HookedModel whose inputs are ``hyp.encode(inputs)``.
        inputs: a pool of program inputs (all of the same length) to draw bases and sources from.
        n_pairs: pairs per kind (interchange pairs are dealt round-robin over the located
            variables in sorted order, ablation pairs over the irrelevant components).
        ablation: "resample" or "mean" for ablation pairs (means over the pool).
    """
    bad = [k for k in kinds if k not in PAIR_KINDS]
    if bad or not inputs or n_pairs < 1:
        raise ConfigError(
            f"kinds must be among {PAIR_KINDS} (got {bad}), inputs non-empty and "
            f"n_pairs ≥ 1 (got {n_pairs})"
        )
    if len({len(x) for x in inputs}) != 1:
        raise ConfigError(
            "score_hypothesis needs inputs of one length (interchanges align by "
            "position); group the pool by length and score each group"
        )
    skip = {k: why for k in kinds if (why := not_applicable(hyp, k)) is not None}
    omitted = {f"counterfactual_accuracy_{k}": why for k, why in skip.items()}
    results: list[tuple[str, str, bool, dict]] = []  # (kind, target, ok, detail)
    for kind in (k for k in kinds if k not in skip):
        bases, sources = sample_pairs(inputs, n_pairs, seed, kind)
        if kind == "interchange":
            results += _interchange_pairs(model, hyp, bases, sources, atol)
        elif kind == "ablation":
            results += _ablation_pairs(model, hyp, ablation, inputs, bases, sources, atol)
        else:
            results += _new_input_pairs(model, hyp, bases, atol)
    by_kind = {k: _accuracy([r for r in results if r[0] == k]) for k in kinds if k not in skip}
    targets = sorted({(r[0], r[1]) for r in results})
    by_target = {
        f"{k}:{t}": _accuracy([r for r in results if (r[0], r[1]) == (k, t)]) for k, t in targets
    }
    failures = tuple({"kind": k, "target": t, **d} for k, t, ok, d in results if not ok)[:5]
    lr = None
    if loss and not (hyp.alignment or hyp.irrelevant):
        omitted["hypothesis_loss_recovered"] = (
            f"{hyp.name!r} neither locates a variable nor calls a component irrelevant: there "
            "is nothing to scrub (the model run as is would recover 1.0 trivially)"
        )
    elif loss:
        lr = hypothesis_loss_recovered(model, hyp, inputs, n=min(n_pairs, 256), seed=seed)
    return CounterfactualReport(hyp.name, hyp.kind, by_kind, omitted, lr, by_target, failures)


def _accuracy(rows: list) -> Estimate:
    return wilson(sum(r[2] for r in rows), len(rows))


def _decode(model: Any, hyp: CausalHypothesis, tokens: Tensor, interventions: list) -> list[Any]:
    with torch.no_grad():
        logits = model.run_with(tokens, interventions) if interventions else model.run(tokens)
    return hyp.decode(logits)


def _interchange_pairs(model, hyp, bases, sources, atol) -> list:
    out = []
    for var, idx in _round_robin(len(bases), sorted(hyp.alignment)).items():
        if not idx:
            continue
        b, s = [bases[i] for i in idx], [sources[i] for i in idx]
        actual = _decode(model, hyp, hyp.encode(b), hyp.interchange(model, var, hyp.encode(s)))
        preds = hyp.predict_interchange(var, b, s)
        out += [
            (
                "interchange",
                var,
                outputs_equal(p, a, numerical=hyp.numerical, atol=atol),
                {"base": list(x), "source": list(y), "pred": p, "actual": a},
            )
            for x, y, p, a in zip(b, s, preds, actual)
        ]
    return out


def _ablation_pairs(model, hyp, how, inputs, bases, sources, atol) -> list:
    means = None
    if how == "mean":
        sites = {node_site(n).without_head() for n in hyp.irrelevant}
        means = mean_activations(model, hyp.encode(inputs[:2048]), sites)
    out = []
    for node, idx in _round_robin(len(bases), hyp.irrelevant).items():
        if not idx:
            continue
        b, s = [bases[i] for i in idx], [sources[i] for i in idx]
        site = node_site(node).without_head()
        iv = hyp.ablate(
            node, how, source_tokens=hyp.encode(s), mean=None if means is None else means[site]
        )
        actual = _decode(model, hyp, hyp.encode(b), [iv])
        out += [
            (
                "ablation",
                str(node),
                outputs_equal(p, a, numerical=hyp.numerical, atol=atol),
                {"base": list(x), "pred": p, "actual": a},
            )
            for x, p, a in zip(b, hyp.predict(b), actual)
        ]
    return out


def _new_input_pairs(model, hyp, xs, atol) -> list:
    actual = _decode(model, hyp, hyp.encode(xs), [])
    return [
        (
            "new_input",
            "-",
            outputs_equal(p, a, numerical=hyp.numerical, atol=atol),
            {"input": list(x), "pred": p, "actual": a},
        )
        for x, p, a in zip(xs, hyp.predict(xs), actual)
    ]


def _per_input_loss(clean: Tensor, run: Tensor, numerical: bool) -> Tensor:
    """[b] loss of ``run`` logits against ``clean`` logits [b, p, v] (positions ≥1)."""
    clean, run = clean[:, 1:], run[:, 1:]
    if numerical or clean.shape[-1] == 1:
        return ((clean - run) ** 2).mean(dim=(1, 2))
    lp, lq = clean.log_softmax(-1), run.log_softmax(-1)
    return (lp.exp() * (lp - lq)).sum(-1).mean(-1)


def hypothesis_loss_recovered(
    model: Any,
    hyp: CausalHypothesis,
    inputs: Sequence[Sequence[Any]],
    *,
    n: int = 256,
    seed: int = 0,
) -> Estimate:
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
