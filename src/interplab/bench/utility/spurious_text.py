"""Spurious-feature removal on text (SHIFT, Marks et al. 2024, on a gender cue we planted).

Organism (:mod:`interplab.zoo.bios`): a one-layer transformer classifying template biographies
as nurse or engineer. The profession is conveyed only by content words (workplace, task verb,
what it works on; six synonyms each); in training every nurse is female and every engineer male
(names and pronouns), so gender alone explains the training labels. On the test split gender is
drawn independently of the profession. Each seed trains a fresh organism (and oracle), cached.

Budget, the same for every arm: 128 labelled bios from the heldout split, 32 per
(profession × gender) group, with gender known (drawn per seed). Nothing is chosen on test.

    baseline:original        the model as trained (the reference: do nothing)
    interp:neuron_ablation   rank the hidden units (``act``: ReLU of the pooled transformer
                             output) by attribution to gender on the budget set (activation
                             difference × readout weight on the logit difference), mean-ablate
                             the top k; k from {0,1,2,4,...,d/2} by cross-validation
    interp:concept_erasure   LEACE erasure of gender from the hidden layer, fit on the budget set
    baseline:delete_cue      replace names by "[name]" and she/he, her/him, her/his by they,
                             them, their, then run the original model (uses no examples)
    baseline:dfr             Deep Feature Reweighting: refit the last layer on the budget set;
                             its L2 penalty from {1, 0.1, 0.01, 0.001, 0.0001} by cross-validation
    baseline:random          mean-ablate as many random units as neuron_ablation chose (mean of
                             10 draws per seed)
    baseline:random_erasure  the control for concept_erasure: project out a random subspace of
                             the rank LEACE erased, around the same mean (mean of 10 draws)
    interp:shift_retrain     SHIFT with retraining (Marks et al. 2024): rank and mean-ablate the
                             top k units as neuron_ablation does, then refit the last layer as
                             DFR does on the same 128 bios with the ablation in place; k and the
                             L2 penalty chosen jointly by one cross-validation (k = 0 is DFR)
    interp:erasure_retrain   LEACE erasure of gender from the hidden layer, then the DFR refit on
                             the erased features; L2 by cross-validation (LEACE refit inside each
                             fold on the fold's training part only)
    baseline:random_retrain  the control for shift_retrain: mean-ablate as many random units as
                             it chose, then the same refit with its L2 (mean of 10 draws per seed)
    oracle:balanced          the same architecture trained with gender independent of profession

Hyperparameters are chosen as in the image task (:mod:`interplab.bench.utility.spurious`): by
4-fold cross-validation on the 128 budget bios, stratified by group, scored by worst-group
accuracy on the held-out fold, for every arm that has one (the same protocol for interp and
baseline arms); the choice is recorded per seed. The retrain arms solve DFR's objective by
Newton's method (the same optimum; see the image task's docstring).

Metric: worst-group accuracy over the four (profession × gender) groups of the test split;
secondary: accuracy.
"""

from __future__ import annotations

from typing import Any

from interplab.bench.utility.spurious import ARMS, CueFamily, cue_tasks, run_family
from interplab.eval.utility import ArmRun, Budget, UtilityTask

PER_GROUP = 32
BUDGET = Budget(
    "training_examples",
    4 * PER_GROUP,
    "128 labelled heldout bios, 32 per (profession × gender) group, gender known; every "
    "arm gets the same set (original, delete_cue and the oracle use none of it; the "
    "oracle is trained on 4,000 bios with gender independent of profession)",
)
TEST_SIZE = {"spurious-bios-small": 1000, "spurious-bios": 2000}
_DESC = (
    "Nurse-vs-engineer classifier on template bios, trained where gender (names, pronouns) "
    "equals the profession; test gender independent. Remove the cue's use, scored by "
    "worst-group accuracy."
)
TASKS = cue_tasks(
    TEST_SIZE,
    ARMS,
    BUDGET,
    _DESC,
    {
        "quick": " Quick: d_model 32, 32 hidden units, 1,000 test bios.",
        "full": " Full: d_model 48, 64 hidden units, 2,000 test bios.",
    },
)


def _load(name: str, seed: int, oracle: bool) -> Any:
    from interplab.zoo.bios import load

    return load(name, seed, oracle=oracle)


def _split(org: Any, split: str) -> Any:
    from interplab.models import bios as bm

    return bm.bios(split, "random")


def _delete_cue(org: Any, data: Any) -> Any:
    from interplab.models import bios as bm

    return bm.delete_cue(data.inputs)


def run(task: UtilityTask, arm: str, seeds: list[int]) -> ArmRun:
    """Run ``arm`` of ``task`` on each seed (a fresh organism per seed); see the module doc.
    The arms are the image task's (:func:`interplab.bench.utility.spurious.run_family`)."""
    return run_family(CueFamily(_load, _split, _delete_cue, TEST_SIZE, PER_GROUP), task, arm, seeds)
