"""The causal family's hypothesis builders: each proposes an explanation of a model that the
causal scorers (:mod:`interplab.eval.counterfactuals`, :mod:`interplab.eval.replacement`,
:mod:`interplab.eval.dictionary_replacement`) then test.

One call shape: ``fn(model, truth, inputs, *, seed=0) -> Proposal``, where ``truth`` is the
organism's verified :class:`~interplab.methods.causal.CausalHypothesis` (the variables and the
program every builder names; controls perturb it, and only ``ground_truth`` returns it) and
``inputs`` the pool the hypothesis is scored on::

    ground_truth            the true hypothesis: a scorer self-check (kind baseline), right by
                            construction, never a result
    misaligned              control: the variables at random subspaces of their true sites
    shuffled                control: the located variables swapped among themselves
    random                  control for DAS: the same variables and k at uniformly drawn
                            residual sites, in uniformly drawn subspaces
    circuit_eap             EAP's top edges as a circuit, the rest irrelevant; size: the
                            smallest k whose top-k edges recover ≥ :data:`EAP_RECOVERY` of the
                            all-ablated KL on EAP's own :data:`EAP_PAIRS` pairs (no truth read)
    probe                   a linear probe on the last-named computed variable, at the output of
                            the component that computes it (against a (token, position) control)
    replacement             the aligned components of the explanation, each to be swapped for
                            the part built from it (needs components aligned to variables)
    dictionary_replacement  the compiled MLP blocks and the variables each writes, each to be
                            replaced by a transcoder

A proposal's ``hypothesis`` is what is scored; ``extra`` holds the artifacts it explains itself
with (the EAP circuit, the random alignment, the probe's target and scores).
"""

from __future__ import annotations

import random as _random
from dataclasses import dataclass
from typing import Any

from interplab.core.sites import Component
from interplab.methods.base import Result
from interplab.methods.registry import register

#: circuit_eap keeps the smallest top-k edges that recover this share of the KL
EAP_RECOVERY = 0.9
#: EAP's own task pairs (clean, corrupted)
EAP_PAIRS = 64
#: the probe reads at most this many inputs of the pool
PROBE_INPUTS = 2048


@dataclass(frozen=True)
class Proposal(Result):
    """A builder's output: the hypothesis to score (None for a probe, whose scores are in
    ``extra``), the parts it names (``parts``: variables or MLP layers to replace) and the
    artifacts in ``extra``."""

    hypothesis: Any = None
    parts: tuple = ()


@register("causal", "ground_truth", kind="baseline", metric="counterfactual_accuracy_interchange")
def ground_truth(model: Any, truth: Any, inputs: Any, *, seed: int = 0) -> Proposal:
    """The true hypothesis: a scorer self-check (right by construction), not a result."""
    return Proposal(hypothesis=truth)


@register("causal", "misaligned", kind="baseline", metric="counterfactual_accuracy_interchange")
def misaligned_hypothesis(model: Any, truth: Any, inputs: Any, *, seed: int = 0) -> Proposal:
    """Control: the variables misplaced (random subspaces at the true sites)."""
    from interplab.methods.causal.hypothesis import misaligned

    return Proposal(hypothesis=misaligned(truth, seed=seed))


@register("causal", "shuffled", kind="baseline", metric="counterfactual_accuracy_interchange")
def shuffled_hypothesis(model: Any, truth: Any, inputs: Any, *, seed: int = 0) -> Proposal:
    """Control: the located variables swapped (needs ≥ 2 of them)."""
    from interplab.methods.causal.hypothesis import shuffled

    return Proposal(hypothesis=shuffled(truth))


@register("causal", "random", kind="baseline", metric="counterfactual_accuracy_interchange")
def random_hypothesis(model: Any, truth: Any, inputs: Any, *, seed: int = 0) -> Proposal:
    """Control for DAS: its variables and k at uniformly drawn residual sites and subspaces."""
    from interplab.errors import ConfigError
    from interplab.methods.causal.das_training import random_alignment

    drawn = random_alignment(model, truth.program, inputs, seed=seed)
    if not drawn:
        raise ConfigError(
            "random: the program has no computed variable that varies on the "
            "inputs, so there is nothing to place at random"
        )
    hyp = truth.with_subspaces(
        "random alignment",
        drawn,
        kind="wrong",
        description="control: random residual sites and subspaces",
    )
    alignment = {v: {"site": str(site), "k": int(b.shape[1])} for v, (site, b) in drawn.items()}
    return Proposal(hypothesis=hyp, extra={"alignment": alignment})


@register(
    "causal",
    "circuit_eap",
    kind="method",
    metric="counterfactual_accuracy_ablation",
    needs_gradients=True,
)
def circuit_eap(model: Any, truth: Any, inputs: Any, *, seed: int = 0) -> Proposal:
    """EAP (resample ablation, KL) on its own random clean/corrupted pairs; keep the smallest
    top-k of :func:`smallest_recovering_k` (never the true circuit's size); read the heads and
    MLPs of those edges as a circuit hypothesis. Artifact ``eap_circuit``."""
    from interplab.methods.causal.hypothesis import from_circuit
    from interplab.methods.circuits import find_circuit
    from interplab.tasks import Task

    rng = _random.Random(f"circuit_eap/{seed}")
    clean = [rng.choice(inputs) for _ in range(EAP_PAIRS)]
    corrupt = [rng.choice(inputs) for _ in range(EAP_PAIRS)]
    task = Task(truth.encode(clean), truth.encode(corrupt), metric="kl")
    scores = find_circuit("eap", model, task, ablation="resample")
    k, recovered = smallest_recovering_k(model, task, scores.ranked())
    circuit = scores.to_circuit(top_k=k)
    hyp = from_circuit(
        "EAP circuit",
        truth.program,
        circuit.nodes,
        truth.all_nodes,
        truth.encode,
        truth.decode,
        numerical=truth.numerical,
    )
    info = {
        "k": k,
        "n_edges": len(scores.scores),
        "rule": f"smallest top-k recovering ≥ "
        f"{EAP_RECOVERY} of the all-ablated KL on EAP's own {EAP_PAIRS} pairs",
        "recovered_at_k": recovered,
        "nodes": sorted(str(n) for n in hyp.circuit or ()),
    }
    return Proposal(hypothesis=hyp, extra={"eap_circuit": info})


def smallest_recovering_k(
    model: Any, task: Any, ranked: list, threshold: float = EAP_RECOVERY, ablation: str = "resample"
) -> tuple[int, float]:
    """(k, recovery at k): the smallest k such that keeping the first k edges of ``ranked``
    and ablating every other edge recovers ≥ ``threshold`` of the KL from the clean run that
    ablating every edge causes (recovery = 1 - KL_k / KL_none, on ``task``'s own pairs).
    Reads only the model, the task and the ranking. All edges when no k reaches it."""
    import torch

    from interplab.methods.circuits.engine import EdgePatcher

    patcher = EdgePatcher(model, task, ablation=ablation, metric="kl")
    keep = torch.zeros(patcher.n_edges)
    none = patcher.score_keep(keep)
    if none <= 0:
        return 0, 1.0  # ablating every edge changes nothing: no edge is needed
    recovered = 0.0
    for k, edge in enumerate(ranked, start=1):
        keep[patcher.index.edge_id[edge]] = 1.0
        recovered = 1.0 - patcher.score_keep(keep) / none
        if recovered >= threshold:
            return k, recovered
    return len(ranked), recovered


def probe_target(model: Any, truth: Any) -> tuple[str, Any]:
    """(variable, site): the last-named computed variable, at the output of the component
    that computes it (SIIT: its aligned component; compiled: the ground truth's writer)."""
    from interplab.core.sites import Component, Site

    var = sorted(v for v in truth.alignment if v not in ("tokens", "indices"))[-1]
    real = truth.alignment[var]
    if real.nodes:
        return var, real.sites[-1]
    site = model.ground_truth.variables[var].sites[-1]
    if site.component is Component.ATTN_RESULT and site.head is None:
        site = Site(Component.ATTN_RESULT, site.layer, 0)
    return var, site


@register("causal", "probe", kind="method", metric="probe_selectivity")
def probe(model: Any, truth: Any, inputs: Any, *, seed: int = 0) -> Proposal:
    """A linear probe for :func:`probe_target`'s variable on the first :data:`PROBE_INPUTS`
    inputs. ``extra["probe"]``: the target and its scores — ``accuracy`` always; ``selectivity``
    and ``control_accuracy`` against a Hewitt–Liang (token, position) control task only when
    that control passes its checks (else ``extra["omitted"]`` says why)."""
    from interplab.methods.causal.program import run_program
    from interplab.methods.probing import (
        DegenerateControlTask,
        probe_accuracy,
        probe_selectivity,
        token_position_types,
    )

    var, site = probe_target(model, truth)
    pool = inputs[:PROBE_INPUTS]
    _, cache = model.run_with_cache(truth.encode(pool), [site])
    X = cache[site][:, 1:].reshape(-1, cache[site].shape[-1])
    y = [v for xs in pool for v in run_program(truth.program, xs)[var]]
    info: dict[str, Any] = {"variable": var, "site": str(site), "types": "(token, position)"}
    try:
        result = probe_selectivity(X, y, token_position_types(pool), seed=seed)
    except DegenerateControlTask as err:
        info["accuracy"] = probe_accuracy(X, y, seed=seed)
        omitted = {"probe_selectivity": str(err), "probe_control_accuracy": str(err)}
        return Proposal(parts=(var,), extra={"probe": info, "omitted": omitted})
    info.update(
        selectivity=result.selectivity,
        accuracy=result.accuracy,
        control_accuracy=result.control_accuracy,
        n_control_types=result.n_control_types,
        n_train=result.n_train,
        n_test=result.n_test,
        majority_baseline=result.majority_baseline,
    )
    return Proposal(parts=(var,), extra={"probe": info})


@register("causal", "replacement", kind="method", metric="replacement_fidelity")
def replacement(model: Any, truth: Any, inputs: Any, *, seed: int = 0) -> Proposal:
    """The explanation's aligned variables (sorted), each of whose components is to be swapped
    for the part built from it; an error when none has aligned components."""
    from interplab.errors import ConfigError

    parts = tuple(v for v in sorted(truth.alignment) if truth.alignment[v].nodes)
    if not parts:
        raise ConfigError(
            "replacement needs components aligned to variables "
            "(SIIT organisms have them; compiled ground truth is subspace-level)"
        )
    return Proposal(hypothesis=truth, parts=parts)


@register("causal", "dictionary_replacement", kind="method", metric="replacement_fidelity")
def dictionary_replacement(
    model: Any, truth: Any = None, inputs: Any = None, *, seed: int = 0
) -> Proposal:
    """The compiled MLP blocks to replace by a dictionary: ``parts`` = ((layer, labels of the
    variables its MLP writes), ...), read from the compiled ground truth."""
    return Proposal(parts=tuple(mlp_blocks(model).items()))


def mlp_blocks(model: Any) -> dict[int, tuple[str, ...]]:
    """layer -> labels of the variables that layer's MLP writes (compiled ground truth), by
    layer; what :func:`dictionary_replacement` proposes and
    :func:`interplab.eval.dictionary_replacement.dictionary_replacement` replaces."""
    out: dict[int, list[str]] = {}
    for var in model.ground_truth.variables.values():
        for site in var.sites:
            if site.component is Component.MLP_OUT and site.layer is not None:
                out.setdefault(site.layer, []).append(var.label)
    return {k: tuple(sorted(v)) for k, v in sorted(out.items())}
