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
                             the top k; k from {0,1,2,4,...,d/2} maximising worst-group accuracy
                             on the budget set
    interp:concept_erasure   LEACE erasure of gender from the hidden layer, fit on the budget set
    baseline:delete_cue      replace names by "[name]" and she/he, her/him, her/his by they,
                             them, their, then run the original model (uses no examples)
    baseline:dfr             Deep Feature Reweighting: refit the last layer on the budget set
    baseline:random          mean-ablate as many random units as neuron_ablation chose (mean of
                             10 draws per seed)
    oracle:balanced          the same architecture trained with gender independent of profession

Metric: worst-group accuracy over the four (profession × gender) groups of the test split;
secondary: accuracy.
"""

from __future__ import annotations

from typing import Any

from interplab.eval.utility import ArmRun, Budget, UtilityTask

PER_GROUP = 32
BUDGET = Budget("training_examples", 4 * PER_GROUP,
                "128 labelled heldout bios, 32 per (profession × gender) group, gender known; every "
                "arm gets the same set (original, delete_cue and the oracle use none of it; the "
                "oracle is trained on 4,000 bios with gender independent of profession)")
ARMS = ("baseline:original", "interp:neuron_ablation", "interp:concept_erasure",
        "baseline:delete_cue", "baseline:dfr", "baseline:random", "oracle:balanced")
TEST_SIZE = {"spurious-bios-small": 1000, "spurious-bios": 2000}
RANDOM_DRAWS = 10
GROUPS = ("group_00", "group_01", "group_10", "group_11")
_DESC = ("Nurse-vs-engineer classifier on template bios, trained where gender (names, pronouns) "
         "equals the profession; test gender independent. Remove the cue's use, scored by "
         "worst-group accuracy.")
TASKS: dict[str, UtilityTask] = {
    name: UtilityTask(name=name, metric="worst_group_accuracy", arms=ARMS, budget=BUDGET,
                      description=_DESC + (" Quick: d_model 32, 32 hidden units, 1,000 test bios."
                                           if name.endswith("-small")
                                           else " Full: d_model 48, 64 hidden units, 2,000 test bios."),
                      secondary=("accuracy",))
    for name in TEST_SIZE
}


def _k_ladder(width: int) -> list[int]:
    ks, k = [0], 1
    while k <= width // 2:
        ks.append(k)
        k *= 2
    return ks


def _scores(logits: Any, data: Any) -> dict[str, float]:
    from interplab.models.bios import group_accuracies

    return group_accuracies(logits.argmax(-1), data)


def _choose_k(net: Any, budget: Any) -> tuple[int, Any]:
    """The ranking of units by gender attribution and the k maximising worst-group accuracy on
    the budget set (smallest k on ties)."""
    from interplab.methods.erasure import mean_ablate, rank_units

    w = net.out.weight
    h = net.features(budget.tokens)
    ranking = rank_units(h, budget.cue, readout=w[1] - w[0])
    best = max(_k_ladder(h.shape[1]), key=lambda k: (
        _scores(net.head(mean_ablate(h, ranking.top(k), ranking.means)), budget)["worst_group_accuracy"], -k))
    return best, ranking


def _one_seed(task: UtilityTask, arm: str, seed: int) -> tuple[dict[str, float], float, dict]:
    import torch

    from interplab.methods.erasure import fit_leace, mean_ablate, retrain_readout
    from interplab.models import bios as bm
    from interplab.zoo.bios import load

    org = load(task.name, seed)
    test = bm.bios("test", "random")
    test = test.subset(torch.arange(min(TEST_SIZE[task.name], len(test))))
    budget = bm.balanced_subset(bm.bios("heldout", "random"), PER_GROUP, seed)
    net, spent, info = org.net, float(len(budget)), {}
    with torch.no_grad():
        h_test = net.features(test.tokens)
        if arm == "baseline:original":
            logits, spent = net.head(h_test), 0.0
        elif arm == "baseline:delete_cue":
            logits, spent = net(bm.delete_cue(test.tokens)), 0.0
        elif arm == "oracle:balanced":
            oracle = load(task.name, seed, oracle=True)
            logits, spent = oracle.net(test.tokens), float(oracle.truth["info"]["n_train"])
        elif arm == "interp:concept_erasure":
            eraser = fit_leace(net.features(budget.tokens), budget.cue)
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
        elif arm == "baseline:dfr":
            with torch.enable_grad():
                readout = retrain_readout(net.features(budget.tokens), budget.y)
            logits = readout.logits(h_test)
        else:  # pragma: no cover - check_arm rejects unknown arms first
            raise AssertionError(arm)
    return _scores(logits, test), spent, info


def run(task: UtilityTask, arm: str, seeds: list[int]) -> ArmRun:
    """Run ``arm`` of ``task`` on each seed (a fresh organism per seed); see the module doc."""
    import torch

    task.check_arm(arm)
    torch.set_num_threads(1)
    metrics = (task.metric,) + task.secondary
    values: dict[str, list[float]] = {m: [] for m in metrics}
    spent, per_seed = [], []
    for seed in seeds:
        scores, used, info = _one_seed(task, arm, seed)
        for m in metrics:
            values[m].append(scores[m])
        spent.append(used)
        per_seed.append({"seed": seed, **info, "groups": {g: scores[g] for g in GROUPS}})
    n_test = TEST_SIZE[task.name]
    return ArmRun(values, {m: n_test for m in metrics}, spent,
                  {"per_seed": per_seed, "budget_examples": 4 * PER_GROUP})
