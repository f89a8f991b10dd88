"""A tiny data-attribution organism for fast tests (80 digits, 12 subset retrainings), built once
per test session in the session's private cache and shared by the test modules."""

from __future__ import annotations

import functools

from interplab.models.classifiers import ClassifierSpec
from interplab.zoo import data_attribution as zda

TINY = "digits-tiny-test"
TINY_SPEC = zda.DAOrganismSpec(
    ClassifierSpec("logreg", weight_decay=1e-2, steps=60, lr=1.0, n_checkpoints=3),
    n_train=80,
    n_test=12,
    n_triggered=8,
    n_planted=6,
    n_subsets=12,
    n_loo=5,
    description="tiny test organism",
)
TINY_MLP = "digits-tiny-mlp-test"
TINY_MLP_SPEC = zda.DAOrganismSpec(
    ClassifierSpec("mlp", n_hidden=8, weight_decay=1e-3, steps=150, lr=0.02, n_checkpoints=3),
    n_train=60,
    n_test=10,
    n_triggered=6,
    n_planted=4,
    n_subsets=6,
    n_loo=3,
    description="tiny test MLP",
)
TINY_PASSAGES = "passages-tiny-test"
TINY_PASSAGES_SPEC = zda.DAOrganismSpec(
    ClassifierSpec(
        "mlp",
        n_in=48,
        n_classes=16,
        n_hidden=16,
        weight_decay=1e-3,
        steps=200,
        lr=0.02,
        n_checkpoints=2,
    ),
    n_train=120,
    n_test=10,
    n_subsets=6,
    n_loo=3,
    data="passages",
    description="tiny test passages",
)
zda.SPECS.setdefault(TINY, TINY_SPEC)
zda.SPECS.setdefault(TINY_PASSAGES, TINY_PASSAGES_SPEC)
zda.SPECS.setdefault(TINY_MLP, TINY_MLP_SPEC)


@functools.cache
def organism(name: str = TINY):
    return zda.load_or_train(name)


@functools.cache
def organism_and_truth(name: str = TINY):
    from interplab.zoo.retraining_truth import build_truth

    org = organism(name)
    return org, build_truth(org, progress=False)
