"""Variables on a real model (MIB's causal-variable localisation track; Mueller et al. 2025):
which featuriser of SmolLM2-135M's residual stream localises an IOI variable?

Organisms: ``smollm2-ioi-<variable>`` for the variables of
:mod:`interplab.eval.variable_localisation` (``io_position``: first vs second name;
``io_token``: the indirect object's identity). Methods: the featurisers, registered in the
method registry's ``variables_real`` family (das, pca, neurons, neurons_grad, sae, sae_grad;
``random`` is a baseline, the control) and two references registered as baselines: ``full``
(the whole residual patched: what the site carries) and ``none`` (no intervention). Every job
of one seed reads one study (the same base prompts, model runs, PCA and SAE per layer for every
featuriser and variable), computed once and memoised in the process and on disk (see
:func:`_study`); a job's seconds are its own cells' time.

Rows: metric ``iia`` (held-out interchange-intervention accuracy), ``method`` naming the cell
``<featuriser>:L<layer>:k<k>`` (``full:L<layer>``, ``none:L<layer>``); bookkeeping ``n_test``
and ``n_train`` (pairs kept after the correctness filter). Each IIA's 95% Wilson interval and
n are in the ``estimates`` artifact (cell -> value, low, high, n); the study (settings, counts,
SAE quality, timings, MIB verdict, every featuriser's cells of the variable) is in the
``localisation`` artifact. Full suite only: the study (both variables) took 600 s plus 25 s
of model loading on one thread of a 2-core machine shared with other work.
"""

from __future__ import annotations

import functools
from typing import Any

from interplab.bench.track import Job, JobOutput, Metric, Row, module_track
from interplab.errors import ConfigError, unknown_name
from interplab.eval import variable_localisation as vl  # registers the featurisers

PREFIX = "smollm2-ioi-"
VARIABLES = ("io_position", "io_token")
ORGANISMS = tuple(PREFIX + v for v in VARIABLES)
METHODS = (*vl.FEATURISERS, vl.CEILING, vl.NONE)
ABLATIONS = (None,)
SUITES = {"full": [{"organisms": list(ORGANISMS), "methods": list(METHODS)}]}
#: the configuration the bench runs (a name of variable_localisation.CONFIGS)
CONFIG = "full"


#: bump when the study's code changes what it computes (the on-disk cache key includes it)
STUDY_VERSION = 1


@functools.lru_cache(maxsize=2)
def _study(config: str, seed: int) -> dict[str, Any]:
    """The study as a dict (every variable), once per configuration and seed: memoised in the
    process and on disk (``<cache>/variables_real/<config>-<digest>.json``, keyed by the
    settings and :data:`STUDY_VERSION`), so the track's jobs run it once even in parallel
    workers (the first holds the entry's lock; the others wait, then read its file)."""
    import dataclasses
    import json

    from interplab import _config
    from interplab.models.io import atomic_write_text
    from interplab.models.pretrained.registry import load
    from interplab.models.weights_cache import digest, entry_lock

    if config not in vl.CONFIGS:
        raise unknown_name("localisation configuration", config, tuple(vl.CONFIGS))
    cfg = dataclasses.replace(vl.CONFIGS[config], seed=seed, variables=VARIABLES)
    key = digest({"config": cfg.as_dict(), "version": STUDY_VERSION})
    path = _config.cache_dir() / "variables_real" / f"{config}-{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    with entry_lock(path):
        if path.exists():
            return json.loads(path.read_text())
        text = json.dumps(vl.localise(load("smollm2-135m"), cfg).as_dict())
        atomic_write_text(path, text)
    return json.loads(text)  # as a later read gives it (JSON lists, string keys)


def job_output(organism: str, method: str, seed: int = 0, config: str = CONFIG) -> JobOutput:
    """Rows and artifacts of one (variable, featuriser) job (see the module docstring)."""
    if organism not in ORGANISMS:
        raise unknown_name("variables_real organism", organism, ORGANISMS)
    if method not in METHODS:
        raise unknown_name("variables_real method", method, METHODS)
    variable = organism.removeprefix(PREFIX)
    study = _study(config, seed)
    cells = [c for c in study["cells"] if c["variable"] == variable]
    if not cells:
        raise ConfigError(f"the {config} study has no cells for {variable}")
    rows: list[Row] = []
    estimates: dict[str, dict[str, float]] = {}
    if method == vl.NONE:
        for layer, est in study["no_intervention"][variable].items():
            rows.append(Row("iia", float(est["value"]), seconds=0.0, method=f"none:L{layer}"))
            estimates[f"none:L{layer}"] = est
    for c in cells:
        if c["featuriser"] != method:
            continue
        name = (
            f"full:L{c['layer']}"
            if method == vl.CEILING
            else f"{c['featuriser']}:L{c['layer']}:k{c['k']}"
        )
        rows.append(Row("iia", float(c["iia"]["value"]), seconds=c["seconds"], method=name))
        estimates[name] = c["iia"]
    if not rows:
        raise ConfigError(f"the {config} study did not run {method} on {variable}")
    counts = study["counts"][variable]
    rows += [
        Row("n_test", float(counts["n_test"]), seconds=0.0),
        Row("n_train", float(counts["n_train"]), seconds=0.0),
    ]
    artifacts = {
        "estimates": estimates,
        "localisation": {
            "variable": variable,
            "config": study["config"],
            "counts": counts,
            "sae": study["sae"],
            "seconds": study["seconds"],
            "verdict": study["verdict"][variable],
            "cells": cells,
            "no_intervention": study["no_intervention"][variable],
        },
    }
    return JobOutput(rows, artifacts)


def run_job(job: Job) -> JobOutput:
    return job_output(job.organism, job.method, job.seed)


TRACK = module_track(
    globals(),
    name="variables_real",
    metrics=(
        Metric("iia", headline=True),
        Metric("n_test", better=None, bookkeeping=True),
        Metric("n_train", better=None, bookkeeping=True),
    ),
    section="interplab.report.variables_real:section",
    leaderboard=False,  # cells are (featuriser, layer, k), not rankable methods of one organism
)
