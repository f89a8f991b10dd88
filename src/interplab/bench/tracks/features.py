"""Feature-recovery track: train a dictionary on an organism with known features and score it.

Organisms (names are parsed, so any size works; :data:`ORGANISMS` lists the registered ones):
    synthetic-features-{d}x{n}   n known features in d dimensions (SyntheticFeatures), e.g. 64x128
    superposition-{n}x{m}        toy model of superposition, n features in m hidden dims, e.g. 20x5
Methods: sae-relu, sae-topk, sae-jumprelu (autoencoders on the activations) and transcoder
(TopK; synthetic: predicts a second representation of the same features; superposition: predicts
the model's output from its hidden state), and the baseline ``random`` (a registry baseline): an
untrained dictionary of random unit directions, the score a dictionary gets for nothing (in few
dimensions, random directions already sit close to every feature).

Hyperparameters come from the activations, never from the truth: neither the true features,
their number, nor the true L0 reaches a dictionary's config.
    width       d_latent = EXPANSION × d_in (the activation width; 4, a common SAE expansion,
                picked for cost), for every method.
    sparsity    sae-topk, transcoder (k) and sae-relu (L1 coefficient) by one rule,
                :func:`~interplab.methods.dictionaries.select.sweep_sparsity`: settings from a
                fixed ladder, sparsest first, each trained for a quarter of the schedule on
                SWEEP_SAMPLES sampled activations and scored by variance explained on
                HELD_OUT_SAMPLES other activations; the choice is the first setting whose next
                rung adds less than MIN_GAIN = 0.05 variance explained (else the densest tried);
                the chosen setting then trains with the full schedule. Ladders:
                    sae-topk, transcoder   k = 1, 2, 4, ... below d_in
                    sae-relu               L1 coefficient = scale × (1, 0.3, 0.1, 0.03, 0.01, 0.003)
                where scale is the activations' RMS distance from their mean (so a coefficient
                means the same at any activation scale).
                sae-jumprelu takes fixed settings, the library's defaults in units of scale: L0
                coefficient 0.01 scale², initial threshold and bandwidth 0.05 scale. (The rule
                cannot pick its L0 coefficient from short runs; see the select module.)
    seeds       a dictionary is seeded with seed + DICTIONARY_SEED_OFFSET (equal seeds would
                start a dictionary at a synthetic organism's true directions).
Each swept job adds a row (``k_chosen`` or ``l1_coefficient_chosen``) and a ``sparsity_sweep``
artifact (settings tried, held-out variance explained and L0 of each, the choice).

Metrics (one name, one definition; other tracks use other names for other quantities):
    mmcs                mean over true features of the max cosine similarity between the feature's
                        direction and any decoder direction (Sharkey et al. 2022); superposition
                        organisms count only the features the model represents (‖W_i‖ ≥ 0.5);
                        a transcoder is compared in the space it writes to
    feature_f1          harmonic mean of recall (true features within cosine THRESHOLD = 0.9 of a
                        decoder direction) and precision (live latents within 0.9 of a true feature)
    l0                  active latents per sample (proxy)
    variance_explained  1 − Σ‖y − ŷ‖² / Σ‖y − ȳ‖² on the evaluation batch (proxy; y = x for an SAE)
    loss_recovered      superposition organisms only: with the model's task loss L (importance-
                        weighted squared error), (L_zero − L_spliced) / (L_zero − L_clean) when the
                        dictionary's output replaces the hidden state (SAE) or the output
                        (transcoder) and L_zero zero-ablates that site; 1 = as good as the real
                        activation
    k_chosen, l1_coefficient_chosen   the swept setting (a choice, not a score)
All scores are on 4096 evaluation samples that neither training nor the sweep saw.

One job (~2–20 s on 2 CPU cores) returns rows ``{"organism", "method", "ablation": None,
"metric", "value", "seconds"}``; ``seconds`` is the dictionary's training time, sweep included.
"""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any

import torch

from interplab.bench.track import Job, JobOutput, Metric, Row, module_track
from interplab.core.model import wrap_module
from interplab.core.sites import Site
from interplab.data.synthetic import SyntheticConfig, SyntheticFeatures
from interplab.errors import unknown_name
from interplab.eval.features import loss_recovered, score_dictionary
from interplab.methods.dictionaries import (
    DictionaryConfig,
    SparseDictionary,
    SparsitySweep,
    activation_scale,
    k_ladder,
    sweep_sparsity,
    train_dictionary,
)
from interplab.methods.dictionaries.select import L1_LADDER
from interplab.models.superposition import SuperpositionConfig, train_superposition

Tensor = torch.Tensor

ORGANISMS = (
    "superposition-20x5",
    "superposition-40x10",
    "synthetic-features-32x64",
    "synthetic-features-64x128",
)
#: registry names (family "dictionaries"; ``random`` is a baseline there)
METHODS = ("sae-relu", "sae-topk", "sae-jumprelu", "transcoder", "random")
METRICS = (
    "mmcs",
    "feature_f1",
    "l0",
    "variance_explained",
    "loss_recovered",
    "k_chosen",
    "l1_coefficient_chosen",
)
ABLATIONS = (None,)
SUITES = {
    "quick": [
        {
            "organisms": ["superposition-20x5", "synthetic-features-32x64"],
            "methods": list(METHODS),
            "ablations": [None],
        }
    ],
    "full": [{"organisms": list(ORGANISMS), "methods": list(METHODS), "ablations": [None]}],
}

_SYNTHETIC = re.compile(r"^synthetic-features-(\d+)x(\d+)$")
_SUPERPOSITION = re.compile(r"^superposition-(\d+)x(\d+)$")
#: Cosine at which a dictionary direction counts as having found a feature.
THRESHOLD = 0.9
EVAL_SAMPLES = 4096
#: Training steps of the quick schedule per organism kind.
STEPS = {"synthetic": 1200, "superposition": 1000}
#: Dictionary latents per dimension of the activations.
EXPANSION = 4
#: A sweep run trains 1/SWEEP_FRACTION of the schedule.
SWEEP_FRACTION = 4
#: Activations the sweep trains on, and held-out activations it scores on.
SWEEP_SAMPLES, HELD_OUT_SAMPLES = 2**15, 4096
#: Sample indices of the sweep's data (training uses 0..steps-1, evaluation 10**6 + seed).
_SWEEP_INDEX, _HELD_OUT_INDEX = 3 * 10**6, 2 * 10**6
#: Dictionaries are seeded with seed + this offset. SyntheticFeatures draws its true directions
#: as ``randn(n, d)`` from ``Generator().manual_seed(seed)`` and SparseDictionary draws its
#: initial decoder the same way, so with equal seeds a dictionary would *start* at the truth.
DICTIONARY_SEED_OFFSET = 7919


def select_hyperparameters(
    method: str,
    kind: str,
    x: Tensor,
    held_out_x: Tensor,
    *,
    y: Tensor | None = None,
    held_out_y: Tensor | None = None,
    seed: int = 0,
    steps: int | None = None,
) -> tuple[DictionaryConfig, SparsitySweep | None]:
    """The config ``method`` trains with, chosen from activations only (see the module docstring).

    Args:
        kind: "synthetic" or "superposition" (picks the training schedule, :data:`STEPS`).
        x, held_out_x: activations [n, d_in] to sweep on and to score the sweep on.
        y, held_out_y: a transcoder's targets [n, d_out] (None for an autoencoder).
        steps: the final training length (default: the schedule); sweep runs train a quarter.
    Returns:
        (config, sweep), sweep None for methods without one (sae-jumprelu, random).
    """
    if method not in METHODS:
        raise unknown_name("method", method, METHODS)
    d_in = x.shape[-1]
    d_out = y.shape[-1] if (method == "transcoder" and y is not None) else None
    steps = steps or STEPS[kind]
    base = DictionaryConfig(
        d_in=d_in,
        d_latent=EXPANSION * d_in,
        d_out=d_out,
        lr=3e-3,
        seed=seed + DICTIONARY_SEED_OFFSET,
        steps=steps,
        batch_size=1024,
    )
    scale = activation_scale(x)
    if method == "random":  # the baseline: random unit directions, never trained
        return dataclasses.replace(base, activation="relu", steps=0), None
    if method == "sae-jumprelu":
        return dataclasses.replace(
            base,
            activation="jumprelu",
            l0_coefficient=0.01 * scale**2,
            jumprelu_threshold=0.05 * scale,
            jumprelu_bandwidth=0.05 * scale,
        ), None
    if method == "sae-relu":
        config = dataclasses.replace(base, activation="relu")
        field, ladder = "l1_coefficient", tuple(r * scale for r in L1_LADDER)
    else:  # sae-topk, transcoder
        config = dataclasses.replace(base, activation="topk")
        field, ladder = "k", k_ladder(d_in, config.d_latent)
    sweep = sweep_sparsity(
        config,
        field,
        ladder,
        x,
        held_out_x,
        y=y,
        held_out_y=held_out_y,
        steps=max(1, steps // SWEEP_FRACTION),
    )
    chosen: dict[str, Any] = {field: sweep.chosen}
    return dataclasses.replace(config, **chosen), sweep


def run_feature_job(
    organism: str, method: str, seed: int = 0, *, steps: int | None = None
) -> list[Row]:
    """Train ``method`` on ``organism`` with ``seed`` and return one row per metric (its
    ``seconds``: the dictionary's training time, sweep included).

    ``steps`` overrides the training length (the default is the quick schedule)."""
    return _run(organism, method, seed, steps)[0]


def run_job(job: Job) -> JobOutput:
    """Track entry point for ``interplab bench``: rows plus a ``max_cosines`` artifact
    ({"values": per true feature max cosine, "threshold": ...}) for the feature-recovery plot
    and, for swept methods, a ``sparsity_sweep`` artifact (see the module docstring)."""
    rows, artifacts = _run(job.organism, job.method, job.seed, None)
    return JobOutput(rows=rows, artifacts=artifacts)


def _organism(organism: str, transcoder: bool, seed: int):
    """(kind, source, true directions [feature, d]) for an organism name."""
    syn, sup = _SYNTHETIC.match(organism), _SUPERPOSITION.match(organism)
    if syn:
        d, n = int(syn[1]), int(syn[2])
        source = SyntheticFeatures(
            SyntheticConfig(
                n_features=n, d=d, mean_active=4.0, seed=seed, d_out=d if transcoder else None
            )
        )
        return "synthetic", source, source.out_directions if transcoder else source.directions
    if sup:
        n, m = int(sup[1]), int(sup[2])
        model = train_superposition(
            SuperpositionConfig(n_features=n, d_hidden=m, sparsity=0.95, steps=2000, seed=seed)
        )
        return (
            "superposition",
            model,
            (model.out_directions if transcoder else model.directions)[model.represented],
        )
    raise unknown_name("organism", organism, ORGANISMS)


def _run(organism: str, method: str, seed: int, steps: int | None) -> tuple[list[Row], dict]:
    if method not in METHODS:
        raise unknown_name("method", method, METHODS)
    transcoder = method == "transcoder"
    torch.manual_seed(seed)
    kind, source, true = _organism(organism, transcoder, seed)
    # Only activations (x, and a transcoder's target y) reach the choice of hyperparameters.
    sweep_data = source.sample(SWEEP_SAMPLES, _SWEEP_INDEX + seed)
    held_out = source.sample(HELD_OUT_SAMPLES, _HELD_OUT_INDEX + seed)
    start = time.perf_counter()
    config, sweep = select_hyperparameters(
        method,
        kind,
        sweep_data.x,
        held_out.x,
        y=sweep_data.y if transcoder else None,
        held_out_y=held_out.y if transcoder else None,
        seed=seed,
        steps=steps,
    )
    dictionary = (
        train_dictionary(source, config).dictionary
        if config.steps
        else SparseDictionary(config).eval()
    )
    seconds = time.perf_counter() - start
    extra: dict[str, float] = {}
    batch = source.sample(EVAL_SAMPLES, 10**6 + seed)
    if kind == "superposition":
        hooked = wrap_module(source, ["hidden", "output"])
        inputs = batch.coefficients
        site = Site.module("output") if transcoder else Site.module("hidden")
        extra["loss_recovered"] = loss_recovered(
            hooked,
            site,
            inputs,
            dictionary,
            loss_fn=lambda out: source.loss(inputs, out),
            input_site=Site.module("hidden") if transcoder else None,
        )
    scores = score_dictionary(
        dictionary,
        batch.x,
        batch.y if transcoder else None,
        true_directions=true,
        threshold=THRESHOLD,
        loss_recovered=extra.get("loss_recovered"),
    )
    # scored against the organism's true directions, so the ground-truth scores are there
    assert scores.mmcs is not None and scores.f1 is not None and scores.max_cosines is not None
    values = {
        "mmcs": scores.mmcs,
        "feature_f1": scores.f1,
        "l0": scores.l0,
        "variance_explained": scores.variance_explained,
        **extra,
    }
    artifacts: dict = {
        "max_cosines": {
            "values": [round(float(v), 5) for v in scores.max_cosines],
            "threshold": THRESHOLD,
        }
    }
    if sweep is not None:
        values[f"{sweep.field}_chosen"] = sweep.chosen
        artifacts["sparsity_sweep"] = {**sweep.to_json(), "d_latent": config.d_latent}
    rows = [Row(metric, float(value), seconds=seconds) for metric, value in values.items()]
    return rows, artifacts


__all__ = [
    "ABLATIONS",
    "EXPANSION",
    "METHODS",
    "METRICS",
    "ORGANISMS",
    "SUITES",
    "THRESHOLD",
    "TRACK",
    "run_feature_job",
    "run_job",
    "select_hyperparameters",
]


TRACK = module_track(
    globals(),
    name="features",
    families=("dictionaries",),
    metrics=(
        Metric("mmcs", headline=True),
        Metric("feature_f1", headline=True),
        Metric("variance_explained"),
        Metric("l0", better="lower"),
        Metric("loss_recovered"),
        Metric("dead_fraction", better="lower"),
        Metric("k_chosen", better=None, bookkeeping=True),
        Metric("l1_coefficient_chosen", better=None, bookkeeping=True),
        Metric("l0_coefficient_chosen", better=None, bookkeeping=True),
    ),
    section="interplab.report.features:section",
)
