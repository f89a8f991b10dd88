"""Replacement the other way round: a compiled block swapped for a sparse dictionary.

A compiled RASP model's MLP computes known variables (a categorical/numerical Map, a
SequenceMap, the MLP half of a SelectorWidth) and writes each into known residual dimensions
(``ground_truth.basis(label)``). :func:`dictionary_replacement` trains a dictionary on that
block from the program's own inputs — a **transcoder** ``mlp_in -> mlp_out`` (the block's
function), or an **SAE** on ``mlp_out`` (its output only) — splices the dictionary's output
into ``mlp_out`` with :class:`~interplab.core.interventions.Replace` on held-out inputs, and
reports, next to the original model and mean ablation of the same block:

    accuracy        fraction of output positions whose decoded value equals the reference
                    evaluator's (``rasp.evaluate`` of the program)
    fidelity        acc(replaced) / acc(original);  mean_fidelity likewise for mean ablation
    kl_recovered    1 - KL(orig || replaced) / KL(orig || mean-ablated)   (categorical outputs)
    l2_recovered    1 - MSE(orig, replaced) / MSE(orig, mean-ablated)     (output logits)

and the dictionary's *feature view* of the block: MMCS and recall (cosine ≥ 0.9) between its
decoder directions and the true directions the block writes (one residual basis vector per
dimension of each variable it computes), plus precision over live latents, L0 and variance
explained — so the report shows whether the dictionary found the compiled features.
Inputs are split in half: the dictionary and the ablation mean see one half, scores use the
other.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from interplab.compile import rasp
from interplab.compile.agreement import by_length
from interplab.compile.ground_truth import values_equal
from interplab.core.interventions import Replace
from interplab.core.sites import Component, Site
from interplab.errors import ConfigError
from interplab.eval.features import feature_recovery, max_cosines
from interplab.eval.replacement import FidelityRatios
from interplab.methods.causal.hypotheses import mlp_blocks
from interplab.methods.dictionaries import DictionaryConfig, TensorSource, train_dictionary

Tensor = torch.Tensor
KINDS = ("transcoder", "sae")


@dataclass(frozen=True)
class DictionaryReplacementResult(FidelityRatios):
    """Scores of one compiled block replaced by a dictionary.

    Attributes:
        program: the compiled program. block: the replaced site (display string).
        variables: labels of the variables the block computes. kind: "transcoder" or "sae".
        correct_original / correct_replaced / correct_mean_ablated: output positions whose
            decoded value equals the reference evaluator's, out of ``n_positions``.
        kl_*: mean KL(original || run) over output positions (NaN for numerical outputs).
        l2_*: mean squared difference of output logits to the original run.
        mmcs, recall: true written directions vs the dictionary's decoder directions
            (max cosine, mean / fraction ≥ 0.9); precision: live latents within 0.9 of one.
        max_cosines: per true direction (label, value, max cosine).
        variance_explained, l0: of the dictionary's output vs the block's on held-out inputs.
        n_train, n_eval: inputs the dictionary was trained on / scored on. seconds: wall time.
    """

    program: str
    block: str
    variables: tuple[str, ...]
    kind: str
    correct_original: int
    correct_replaced: int
    correct_mean_ablated: int
    n_positions: int
    kl_replaced: float
    kl_mean_ablated: float
    l2_replaced: float
    l2_mean_ablated: float
    mmcs: float
    recall: float
    precision: float
    max_cosines: tuple[tuple[str, Any, float], ...]
    variance_explained: float
    l0: float
    n_train: int
    n_eval: int
    seconds: float

    @property
    def accuracy_original(self) -> float:
        return self.correct_original / max(self.n_positions, 1)

    @property
    def accuracy_replaced(self) -> float:
        return self.correct_replaced / max(self.n_positions, 1)

    @property
    def accuracy_mean_ablated(self) -> float:
        return self.correct_mean_ablated / max(self.n_positions, 1)

    @property
    def l2_recovered(self) -> float:
        return (
            1.0 - self.l2_replaced / self.l2_mean_ablated
            if self.l2_mean_ablated > 1e-12
            else float("nan")
        )


def written_directions(model: Any, labels: Sequence[str]) -> tuple[Tensor, list[tuple[str, Any]]]:
    """True directions [feature, d_model] the block writes: one residual basis vector per
    dimension of each variable (``ground_truth.basis(label)`` columns), with (label, value)."""
    truth = model.ground_truth
    rows, names = [], []
    for label in labels:
        basis = truth.basis(label)  # [d_model, n_dims]
        rows.append(basis.T)
        names += [(label, truth.directions[i].value) for i in truth.variable(label).dims]
    return torch.cat(rows), names


def default_config(
    kind: str,
    d_model: int,
    n_features: int,
    n_variables: int = 1,
    *,
    steps: int = 800,
    seed: int = 0,
) -> DictionaryConfig:
    """TopK dictionary keeping ``k = n_variables`` latents per position (a compiled block
    writes one direction per variable per position) with 4 latents per true direction (at
    least 32); a transcoder when ``kind == "transcoder"``. About 1 s of CPU training."""
    return DictionaryConfig(
        d_in=d_model,
        d_latent=max(32, 4 * n_features),
        activation="topk",
        k=max(1, n_variables),
        d_out=d_model if kind == "transcoder" else None,
        lr=3e-3,
        batch_size=256,
        steps=steps,
        log_every=max(1, steps),
        resample_every=100,
        seed=seed,
    )


def _activations(model: Any, groups: dict[int, list], sites: list[Site]) -> dict[Site, Tensor]:
    rows: dict[Site, list[Tensor]] = {s: [] for s in sites}
    with torch.no_grad():
        for group in groups.values():
            _, cache = model.run_with_cache(model.encode(group), sites)
            for s in sites:
                rows[s].append(cache[s].reshape(-1, cache[s].shape[-1]).float())
    return {s: torch.cat(v) for s, v in rows.items()}


def dictionary_replacement(
    model: Any,
    program: rasp.SOp,
    inputs: Sequence[Sequence[Any]],
    layer: int,
    *,
    kind: str = "transcoder",
    config: DictionaryConfig | None = None,
    max_eval: int = 2048,
    atol: float = 1e-2,
    seed: int = 0,
) -> DictionaryReplacementResult:
    """Replace compiled MLP ``layer`` by a dictionary trained on half of ``inputs``; score on
    the other half (at most ``max_eval`` inputs). See the module docstring for the scores.

    Args:
        model: a :class:`~interplab.compile.compiled.CompiledModel`.
        program: its RASP program (the reference evaluator).
        kind: "transcoder" (``mlp_in -> mlp_out``) or "sae" (on ``mlp_out``).
        config: the dictionary; default :func:`default_config`.
        atol: tolerance for numerical outputs (as in the counterfactual scores).
    """
    # Tiny matrices: one thread is as fast, and a second one spin-waits badly (10-40x slower)
    # when the cores are shared with other work. Restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _dictionary_replacement(
            model, program, inputs, layer, kind, config, max_eval, atol, seed
        )
    finally:
        torch.set_num_threads(threads)


def _dictionary_replacement(
    model: Any,
    program: rasp.SOp,
    inputs: Sequence[Sequence[Any]],
    layer: int,
    kind: str,
    config: DictionaryConfig | None,
    max_eval: int,
    atol: float,
    seed: int,
) -> DictionaryReplacementResult:
    start = time.perf_counter()
    blocks = mlp_blocks(model)
    if layer not in blocks:
        raise ConfigError(
            f"{model.ground_truth.program}: layer {layer}'s MLP computes no variable; "
            f"MLPs that do: {sorted(blocks)} (see mlp_blocks(model))"
        )
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {KINDS}, got {kind!r}")
    out_site, in_site = Site(Component.MLP_OUT, layer), Site(Component.MLP_IN, layer)
    fit_groups, ev_groups = _split(inputs, max_eval, seed)
    fit = [x for g in fit_groups.values() for x in g]
    ev = [x for g in ev_groups.values() for x in g]
    true_dirs, names = written_directions(model, blocks[layer])
    d_model = model.ground_truth.d_model
    cfg = config or default_config(kind, d_model, len(names), len(blocks[layer]), seed=seed)

    acts = _activations(model, fit_groups, [in_site, out_site])
    x = acts[in_site] if kind == "transcoder" else acts[out_site]
    trained = train_dictionary(
        TensorSource(x, acts[out_site] if kind == "transcoder" else None, seed=seed), cfg
    )
    dic = trained.dictionary
    means = _means(model, fit_groups, out_site)

    numerical = model.numerical_output
    counts = [0, 0, 0]
    kl = [0.0, 0.0]
    l2 = [0.0, 0.0]
    n_pos = 0
    recon_err, recon_var, l0_sum, latent_rows = 0.0, [], 0.0, []
    with torch.no_grad():
        for length, group in ev_groups.items():
            tok = model.encode(group)
            orig, cache = model.run_with_cache(tok, [in_site, out_site])
            read = cache[in_site] if kind == "transcoder" else cache[out_site]
            latents = dic.encode(read.float())
            spliced = dic.decode(latents).to(cache[out_site].dtype)
            rep = model.run_with(tok, [Replace(out_site, fn=_constant(spliced))])
            mab = model.run_with(tok, [Replace(out_site, fn=_broadcast(means[length]))])
            want = [rasp.evaluate(program, xs) for xs in group]
            for i, logits in enumerate((orig, rep, mab)):
                counts[i] += sum(
                    _positions_equal(w, g, atol) for w, g in zip(want, model.decode(logits))
                )
            for j, logits in enumerate((rep, mab)):
                l2[j] += float(((logits[:, 1:] - orig[:, 1:]) ** 2).sum(-1).sum())
                if not numerical:
                    kl[j] += float(_kl(orig[:, 1:], logits[:, 1:]).sum())
            n_pos += len(group) * length
            target = cache[out_site].float().reshape(-1, d_model)
            recon_err += float(((spliced.float().reshape(-1, d_model) - target) ** 2).sum())
            recon_var.append(target)
            l0_sum += float((latents > 0).float().sum())
            latent_rows.append(latents.reshape(-1, latents.shape[-1]))
    target = torch.cat(recon_var)
    var = float(((target - target.mean(0)) ** 2).sum())
    all_latents = torch.cat(latent_rows)
    cos = max_cosines(true_dirs, dic.directions)
    rec = feature_recovery(true_dirs, dic.directions, 0.9, live=(all_latents > 0).any(0))
    nan = float("nan")
    return DictionaryReplacementResult(
        program=model.ground_truth.program,
        block=str(out_site),
        variables=blocks[layer],
        kind=kind,
        correct_original=counts[0],
        correct_replaced=counts[1],
        correct_mean_ablated=counts[2],
        n_positions=n_pos,
        kl_replaced=kl[0] / n_pos if not numerical else nan,
        kl_mean_ablated=kl[1] / n_pos if not numerical else nan,
        l2_replaced=l2[0] / n_pos,
        l2_mean_ablated=l2[1] / n_pos,
        mmcs=float(cos.mean()),
        recall=rec.recall,
        precision=rec.precision,
        max_cosines=tuple((lab, val, float(c)) for (lab, val), c in zip(names, cos)),
        variance_explained=1.0 - recon_err / var if var > 0 else nan,
        l0=l0_sum / all_latents.shape[0],
        n_train=len(fit),
        n_eval=len(ev),
        seconds=time.perf_counter() - start,
    )


def _constant(value: Tensor) -> Callable[[Tensor], Tensor]:
    """A replacement that sets the site to ``value``."""
    return lambda v: value


def _broadcast(mean: Tensor) -> Callable[[Tensor], Tensor]:
    """A replacement that sets every row of the site to ``mean``."""
    return lambda v: mean.expand_as(v).clone()


def _means(model: Any, groups: dict[int, list], site: Site) -> dict[int, Tensor]:
    """Per input length, the batch-mean activation of ``site`` [1, pos, d] on ``groups``."""
    out = {}
    with torch.no_grad():
        for length, group in groups.items():
            _, cache = model.run_with_cache(model.encode(group), [site])
            out[length] = cache[site].mean(0, keepdim=True)
    return out


def _split(
    inputs: Sequence[Sequence[Any]], max_eval: int, seed: int
) -> tuple[dict[int, list], dict[int, list]]:
    """Per length, a seeded half for fitting and the other half for scoring (a length with a
    single input is used for both); the scoring half is capped at ``max_eval`` in total, taken
    in proportion to each length's share."""
    rng = random.Random(seed)
    groups = by_length(inputs)
    if not groups:
        raise ConfigError("dictionary_replacement needs inputs; got none")
    total = sum(len(g) for g in groups.values())
    fit, ev = {}, {}
    for length, group in sorted(groups.items()):
        group = list(group)
        rng.shuffle(group)
        half = max(1, len(group) // 2)
        fit[length] = group[:half]
        rest = group[half:] or group
        ev[length] = (
            rest[: max(1, round(max_eval * len(rest) / max(total - len(fit), 1)))]
            if total > 2 * max_eval
            else rest
        )
    return fit, ev


def _positions_equal(want: Sequence[Any], got: Sequence[Any], atol: float) -> int:
    return sum(values_equal([w], [g], atol) for w, g in zip(want, got))


def _kl(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    lp, lq = p_logits.double().log_softmax(-1), q_logits.double().log_softmax(-1)
    return (lp.exp() * (lp - lq)).sum(-1)
