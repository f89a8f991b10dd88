"""Spurious-feature removal (SHIFT, Marks et al. 2024, on a cue we planted and know).

Organism (:mod:`interplab.zoo.spurious`): an MLP on real MNIST digits (label: digit ≥ 5) whose
training images carry a striped background whose orientation equals the label, so the stripes
alone explain the training labels. On the test split the stripes are drawn independently of
the label. Each seed trains a fresh organism (and a fresh oracle), cached on disk.

Budget, the same for every arm: 128 labelled images from the heldout split, 32 per
(label × cue) group, with the cue known (drawn per seed). Nothing is chosen on the test split.

    baseline:original        the model as trained (the reference: do nothing)
    interp:neuron_ablation   rank hidden units by their attribution to the cue on the budget set
                             (activation difference between cue values × readout weight on the
                             logit difference), mean-ablate the top k; k from {0,1,2,4,...,d/2}
                             maximising worst-group accuracy on the budget set
    interp:concept_erasure   LEACE erasure of the cue from the hidden layer, fit on the budget set
    baseline:delete_cue      erase the background texture from the input (pixels at or below its
                             intensity set to 0), then run the original model (uses no examples)
    baseline:dfr             Deep Feature Reweighting: refit the last layer on the budget set
    baseline:random          mean-ablate as many random units as neuron_ablation chose (mean of
                             10 draws per seed)
    baseline:random_erasure  the control for concept_erasure: project out a random subspace of
                             the rank LEACE erased, around the same mean (mean of 10 draws)
    oracle:balanced          the same architecture trained with the cue independent of the label

Metric: worst-group accuracy over the four (label × cue) groups of the test split; secondary:
accuracy on the true label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from interplab.eval.utility import ArmRun, Budget, UtilityTask

PER_GROUP = 32
BUDGET = Budget("training_examples", 4 * PER_GROUP,
                "128 labelled heldout images, 32 per (label × cue) group, cue labels known; every "
                "arm gets the same set (original, delete_cue and the oracle use none of it; the "
                "oracle is trained on 3,000 images with an independent cue)")
ARMS = ("baseline:original", "interp:neuron_ablation", "interp:concept_erasure",
        "baseline:delete_cue", "baseline:dfr", "baseline:random", "baseline:random_erasure",
        "oracle:balanced")
TEST_SIZE = {"spurious-digits-small": 500, "spurious-digits": 1500}
RANDOM_DRAWS = 10
_DESC = ("MNIST digit ≥ 5 classifier trained where a striped background equals the label; test "
         "stripes independent of the label. Remove the cue's use, scored by worst-group accuracy.")
TASKS: dict[str, UtilityTask] = {
    name: UtilityTask(name=name, metric="worst_group_accuracy", arms=ARMS, budget=BUDGET,
                      description=_DESC + (" Quick: 64 hidden units, 500 test images." if size == 500
                                           else " Full: 128 hidden units, 1,500 test images."),
                      secondary=("accuracy",))
    for name, size in TEST_SIZE.items()
}


GROUPS = ("group_00", "group_01", "group_10", "group_11")


@dataclass(frozen=True)
class CueFamily:
    """How the shared arms reach one family of spurious-cue organisms (images here, bios in
    :mod:`interplab.bench.utility.spurious_text`): ``load(task, seed, oracle)`` -> organism with
    ``.net`` (``features``/``head`` split at the hidden layer) and ``.truth``; ``split(org,
    name)`` -> grouped data (``inputs``, ``y``, ``cue``) of "test" or "heldout" with the cue
    independent of the label; ``delete_cue(org, data)`` -> the inputs with the cue removed."""

    load: Callable[[str, int, bool], Any]
    split: Callable[[Any, str], Any]
    delete_cue: Callable[[Any, Any], Any]
    test_size: dict[str, int]
    per_group: int = PER_GROUP


def _k_ladder(width: int) -> list[int]:
    ks, k = [0], 1
    while k <= width // 2:
        ks.append(k)
        k *= 2
    return ks


def _scores(logits: Any, data: Any) -> dict[str, float]:
    from interplab.models.grouped import group_accuracies

    return group_accuracies(logits.argmax(-1), data)


def _choose_k(net: Any, budget: Any) -> tuple[int, Any]:
    """The ranking of units by cue attribution and the k that maximises worst-group accuracy on
    the budget set (smallest k on ties)."""
    from interplab.methods.erasure import mean_ablate, rank_units

    w = net.out.weight
    h = net.features(budget.inputs)
    ranking = rank_units(h, budget.cue, readout=w[1] - w[0])
    best = max(_k_ladder(h.shape[1]), key=lambda k: (
        _scores(net.head(mean_ablate(h, ranking.top(k), ranking.means)), budget)["worst_group_accuracy"], -k))
    return best, ranking


def _one_seed(family: CueFamily, task: UtilityTask, arm: str, seed: int) -> tuple[dict[str, float], float, dict]:
    import torch

    from interplab.methods.erasure import fit_leace, mean_ablate, random_eraser, retrain_readout
    from interplab.models.grouped import balanced_subset

    org = family.load(task.name, seed, False)
    test = family.split(org, "test")
    test = test.subset(torch.arange(min(family.test_size[task.name], len(test))))
    budget = balanced_subset(family.split(org, "heldout"), family.per_group, seed)
    net, spent, info = org.net, float(len(budget)), {}
    with torch.no_grad():
        h_test = net.features(test.inputs)
        if arm == "baseline:original":
            logits, spent = net.head(h_test), 0.0
        elif arm == "baseline:delete_cue":
            logits, spent = net(family.delete_cue(org, test)), 0.0
        elif arm == "oracle:balanced":
            oracle = family.load(task.name, seed, True)
            logits, spent = oracle.net(test.inputs), float(oracle.truth["info"]["n_train"])
        elif arm == "interp:concept_erasure":
            eraser = fit_leace(net.features(budget.inputs), budget.cue)
            logits, info = net.head(eraser.apply(h_test)), {"rank": eraser.rank}
        elif arm == "interp:neuron_ablation":
            k, ranking = _choose_k(net, budget)
            logits = net.head(mean_ablate(h_test, ranking.top(k), ranking.means))
            info = {"k": k, "units": ranking.top(k).tolist()}
        elif arm == "baseline:random":
            k, ranking = _choose_k(net, budget)
            gen = torch.Generator().manual_seed(seed)
            draws = [_scores(net.head(mean_ablate(h_test, torch.randperm(h_test.shape[1], generator=gen)[:k],
                                                  ranking.means)), test) for _ in range(RANDOM_DRAWS)]
            return ({m: sum(d[m] for d in draws) / len(draws) for m in draws[0]}, spent,
                    {"k": k, "draws": RANDOM_DRAWS})
        elif arm == "baseline:random_erasure":
            eraser = fit_leace(net.features(budget.inputs), budget.cue)
            draws = [_scores(net.head(random_eraser(eraser, seed * RANDOM_DRAWS + i).apply(h_test)), test)
                     for i in range(RANDOM_DRAWS)]
            return ({m: sum(d[m] for d in draws) / len(draws) for m in draws[0]}, spent,
                    {"rank": eraser.rank, "draws": RANDOM_DRAWS})
        elif arm == "baseline:dfr":
            with torch.enable_grad():
                readout = retrain_readout(net.features(budget.inputs), budget.y)
            logits = readout.logits(h_test)
        else:  # pragma: no cover - check_arm rejects unknown arms first
            raise AssertionError(arm)
    return _scores(logits, test), spent, info


def run_family(family: CueFamily, task: UtilityTask, arm: str, seeds: list[int]) -> ArmRun:
    """Run ``arm`` of ``task`` on each seed (a fresh organism per seed); see the module doc."""
    import torch

    task.check_arm(arm)
    torch.set_num_threads(1)
    metrics = (task.metric,) + task.secondary
    values: dict[str, list[float]] = {m: [] for m in metrics}
    spent, per_seed = [], []
    for seed in seeds:
        scores, used, info = _one_seed(family, task, arm, seed)
        for m in metrics:
            values[m].append(scores[m])
        spent.append(used)
        per_seed.append({"seed": seed, **info, "groups": {g: scores[g] for g in GROUPS}})
    n_test = family.test_size[task.name]
    return ArmRun(values, {m: n_test for m in metrics}, spent,
                  {"per_seed": per_seed, "budget_examples": 4 * family.per_group})


def _load(name: str, seed: int, oracle: bool) -> Any:
    from interplab.zoo.spurious import load

    return load(name, seed, oracle=oracle)


def _split(org: Any, split: str) -> Any:
    from interplab.models import spurious as sp

    return sp.cued(split, "random", org.spec.strength)


def _delete_cue(org: Any, data: Any) -> Any:
    from interplab.models import spurious as sp

    return sp.delete_cue(data.inputs, org.spec.strength)


DIGITS = CueFamily(_load, _split, _delete_cue, TEST_SIZE)


def run(task: UtilityTask, arm: str, seeds: list[int]) -> ArmRun:
    """Run ``arm`` of ``task`` on each seed (a fresh organism per seed); see the module doc."""
    return run_family(DIGITS, task, arm, seeds)
