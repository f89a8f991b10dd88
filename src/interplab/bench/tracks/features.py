"""Feature-recovery track: train a dictionary on an organism with known features and score it.

Organisms (names are parsed, so any size works; :data:`ORGANISMS` lists the registered ones):
    synthetic-features-{d}x{n}   n known features in d dimensions (SyntheticFeatures), e.g. 64x128
    superposition-{n}x{m}        toy model of superposition, n features in m hidden dims, e.g. 20x5
Methods: sae-relu, sae-topk, sae-jumprelu (autoencoders on the activations) and transcoder
(synthetic: predicts a second representation of the same features; superposition: predicts the
model's output from its hidden state).
Metrics: mmcs and feature_f1 (ground truth), l0 and variance_explained (proxies), and
loss_recovered where there is a model to splice into (superposition organisms).

One job (~2–12 s on 2 CPU cores) returns rows ``{"organism", "method", "ablation": None,
"metric", "value", "seconds"}``; ``seconds`` is the dictionary's training time.
"""

from __future__ import annotations

import re
import time

import torch

from interplab.core.model import wrap_module
from interplab.core.sites import Site
from interplab.errors import unknown_name
from interplab.eval.features import loss_recovered, score_dictionary
from interplab.methods.dictionaries import DictionaryConfig, train_dictionary
from interplab.models.superposition import SuperpositionConfig, train_superposition
from interplab.models.synthetic import SyntheticConfig, SyntheticFeatures

ORGANISMS = ("superposition-20x5", "superposition-40x10", "synthetic-features-32x64",
             "synthetic-features-64x128")
METHODS = ("sae-relu", "sae-topk", "sae-jumprelu", "transcoder")
METRICS = ("mmcs", "feature_f1", "l0", "variance_explained", "loss_recovered")
ABLATIONS = (None,)
SUITES = {
    "quick": [{"organisms": ["superposition-20x5", "synthetic-features-32x64"], "methods": list(METHODS),
               "ablations": [None]}],
    "full": [{"organisms": list(ORGANISMS), "methods": list(METHODS), "ablations": [None]}],
}

_SYNTHETIC = re.compile(r"^synthetic-features-(\d+)x(\d+)$")
_SUPERPOSITION = re.compile(r"^superposition-(\d+)x(\d+)$")
#: Cosine at which a dictionary direction counts as having found a feature.
THRESHOLD = 0.9
EVAL_SAMPLES = 4096
#: Training steps of the quick, tuned schedule per organism kind.
STEPS = {"synthetic": 1200, "superposition": 1000}


def _dictionary_config(kind: str, method: str, d_in: int, n_features: int, d_out: int | None,
                       seed: int, steps: int | None) -> DictionaryConfig:
    """Hyperparameters per organism kind and method (tuned once by hand, fixed here)."""
    synthetic = kind == "synthetic"
    base = dict(d_in=d_in, d_latent=2 * n_features, lr=3e-3, seed=seed,
                steps=steps or STEPS[kind], batch_size=1024)
    if method == "sae-relu":
        return DictionaryConfig(activation="relu", l1_coefficient=3e-2 if synthetic else 0.3, **base)
    if method == "sae-topk":
        return DictionaryConfig(activation="topk", k=4 if synthetic else 2, **base)
    if method == "sae-jumprelu":
        return DictionaryConfig(activation="jumprelu", l0_coefficient=3e-2 if synthetic else 0.1,
                                jumprelu_threshold=0.05 if synthetic else 0.1, **base)
    return DictionaryConfig(activation="topk", k=4 if synthetic else 2, d_out=d_out, **base)


def run_feature_job(organism: str, method: str, seed: int = 0, *, steps: int | None = None) -> list[dict]:
    """Train ``method`` on ``organism`` with ``seed`` and return one row per metric.

    ``steps`` overrides the training length (the default is the quick, tuned schedule)."""
    return _run(organism, method, seed, steps)[0]


def run_job(job):  # -> interplab.bench.tracks.JobOutput
    """Track entry point for ``interplab bench``: rows plus a ``max_cosines`` artifact
    ({"values": per true feature max cosine, "threshold": ...}) for the feature-recovery plot."""
    from interplab.bench.tracks import JobOutput

    rows, artifacts = _run(job.organism, job.method, job.seed, None)
    return JobOutput(rows=rows, artifacts=artifacts)


def _run(organism: str, method: str, seed: int, steps: int | None) -> tuple[list[dict], dict]:
    if method not in METHODS:
        raise unknown_name("method", method, METHODS)
    syn, sup = _SYNTHETIC.match(organism), _SUPERPOSITION.match(organism)
    if not (syn or sup):
        raise unknown_name("organism", organism, ORGANISMS)
    transcoder = method == "transcoder"
    torch.manual_seed(seed)
    extra: dict[str, float] = {}
    if syn:
        d, n = int(syn[1]), int(syn[2])
        source = SyntheticFeatures(SyntheticConfig(n_features=n, d=d, mean_active=4.0, seed=seed,
                                                   d_out=d if transcoder else None))
        true = source.out_directions if transcoder else source.directions
        config = _dictionary_config("synthetic", method, d, n, d if transcoder else None, seed, steps)
    else:
        n, m = int(sup[1]), int(sup[2])
        source = train_superposition(SuperpositionConfig(n_features=n, d_hidden=m, sparsity=0.95,
                                                         steps=2000, seed=seed))
        rep = source.represented
        true = (source.out_directions if transcoder else source.directions)[rep]
        config = _dictionary_config("superposition", method, m, n, n if transcoder else None, seed, steps)
    start = time.perf_counter()
    trained = train_dictionary(source, config)
    seconds = time.perf_counter() - start
    batch = source.sample(EVAL_SAMPLES, 10**6 + seed)
    if sup:
        hooked = wrap_module(source, ["hidden", "output"])
        inputs = batch.coefficients
        site = Site.module("output") if transcoder else Site.module("hidden")
        extra["loss_recovered"] = loss_recovered(
            hooked, site, inputs, trained.dictionary, loss_fn=lambda out: source.loss(inputs, out),
            input_site=Site.module("hidden") if transcoder else None)
    scores = score_dictionary(trained.dictionary, batch.x, batch.y if transcoder else None,
                              true_directions=true, threshold=THRESHOLD,
                              loss_recovered=extra.get("loss_recovered"))
    values = {"mmcs": scores.mmcs, "feature_f1": scores.f1, "l0": scores.l0,
              "variance_explained": scores.variance_explained, **extra}
    rows = [{"organism": organism, "method": method, "ablation": None, "metric": metric,
             "value": float(value), "seconds": seconds} for metric, value in values.items()]
    artifacts = {"max_cosines": {"values": [round(float(v), 5) for v in scores.max_cosines],
                                 "threshold": THRESHOLD}}
    return rows, artifacts


__all__ = ["ABLATIONS", "METHODS", "METRICS", "ORGANISMS", "SUITES", "THRESHOLD", "run_feature_job", "run_job"]
