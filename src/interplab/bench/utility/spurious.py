"""Spurious-feature removal (SHIFT, Marks et al. 2024, on a cue we planted and know).

Organism (:mod:`interplab.zoo.spurious`): an MLP on real MNIST digits (label: digit ≥ 5) whose
training images carry a striped background whose orientation equals the label, so the stripes
alone explain the training labels. On the test split the stripes are drawn independently of
the label. Each seed trains a fresh organism (and a fresh oracle), cached on disk.

Budget, the same for every arm: 128 labelled images from the heldout split, 32 per
(label × cue) group, with the cue known (drawn per seed). Nothing is chosen on the test split.

Equal tuning (:func:`interplab.eval.utility.select_by_cv`): an arm with a hyperparameter picks
it from its stated grid by 4-fold cross-validation on the 128 budget images (folds stratified by
group, the same folds for every arm of a seed), scored by worst-group accuracy on the held-out
fold, ties to the earlier grid value; it is then refit on all 128. The choice and every grid
value's score are in the arm's per-seed details (``selection``).

    baseline:original        the model as trained (the reference: do nothing)
    interp:neuron_ablation   rank hidden units by their attribution to the cue (activation
                             difference between cue values × readout weight on the logit
                             difference), mean-ablate the top k; k from {0,1,2,4,...,d/2} by CV
    interp:concept_erasure   LEACE erasure of the cue from the hidden layer, fit on the budget set
                             (closed form: no hyperparameter)
    baseline:delete_cue      erase the background texture from the input (pixels at or below its
                             intensity set to 0), then run the original model (uses no examples)
    baseline:dfr             Deep Feature Reweighting: refit the last layer on the budget set; its
                             L2 penalty from {1, 0.1, 0.01, 0.001, 0.0001} by CV
    baseline:random          mean-ablate as many random units as neuron_ablation chose (its CV
                             choice on the same folds; mean of 10 draws per seed)
    baseline:random_erasure  the control for concept_erasure: project out a random subspace of
                             the rank LEACE erased, around the same mean (mean of 10 draws)
    interp:shift_retrain     SHIFT with retraining (Marks et al. 2024, "ablate, then retrain the
                             head"): rank units as neuron_ablation does, mean-ablate the top k,
                             then refit the last layer as DFR does on the same 128 images with the
                             ablation in place; k and the L2 penalty chosen jointly by one CV over
                             {0,1,2,4,...,d/2} × DFR's grid (ties: smaller k, then stronger L2).
                             k = 0 is DFR itself, so CV may fall back to it
    interp:erasure_retrain   LEACE erasure of the cue from the hidden layer, then the DFR refit on
                             the erased features; L2 by CV (LEACE refit inside each fold on the
                             fold's training part only)
    baseline:random_retrain  the control for shift_retrain: mean-ablate as many random units as
                             shift_retrain chose (its CV choice of k and L2 on the same folds),
                             then the same refit (mean of 10 draws per seed)
    oracle:balanced          the same architecture trained with the cue independent of the label

DFR and the retrain arms solve DFR's objective (logistic regression on the standardised
features, ``l2 · ||W||²``) by Newton's method, batched over the grid, instead of
:func:`~interplab.methods.erasure.retrain_readout`'s L-BFGS: the problem is strictly convex, so
both reach the same optimum (checked in the tests; DFR's worst-group accuracies are the same to
every digit at both sizes), and a grid costs a fraction of a second instead of ~10 s per seed. A
mean-ablated unit is constant, so it carries no information: the refit gives it weight 0 and
its (unpenalised) offset goes to the bias.

Metric: worst-group accuracy over the four (label × cue) groups of the test split; secondary:
accuracy on the true label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from interplab.eval.utility import ArmRun, Budget, UtilityTask, run_seeds, select_by_cv

PER_GROUP = 32
BUDGET = Budget(
    "training_examples",
    4 * PER_GROUP,
    "128 labelled heldout images, 32 per (label × cue) group, cue labels known; every "
    "arm gets the same set (original, delete_cue and the oracle use none of it; the "
    "oracle is trained on 3,000 images with an independent cue)",
)
ARMS = (
    "baseline:original",
    "interp:neuron_ablation",
    "interp:concept_erasure",
    "baseline:delete_cue",
    "baseline:dfr",
    "baseline:random",
    "baseline:random_erasure",
    "interp:shift_retrain",
    "interp:erasure_retrain",
    "baseline:random_retrain",
    "oracle:balanced",
)
TEST_SIZE = {"spurious-digits-small": 500, "spurious-digits": 1500}
RANDOM_DRAWS = 10
#: DFR's L2 penalty grid, strongest first (ties go to the earlier, simpler value)
DFR_L2 = (1.0, 0.1, 0.01, 0.001, 0.0001)
_DESC = (
    "MNIST digit ≥ 5 classifier trained where a striped background equals the label; test "
    "stripes independent of the label. Remove the cue's use, scored by worst-group accuracy."
)


def cue_tasks(
    names: Iterable[str], arms: tuple[str, ...], budget: Budget, description: str, sizes: dict
) -> dict[str, UtilityTask]:
    """The tasks of one family of spurious-cue organisms, scored by worst-group accuracy (plain
    accuracy beside it): ``description`` plus ``sizes["quick"]`` for a ``-small`` organism,
    else ``sizes["full"]``."""
    return {
        name: UtilityTask(
            name=name,
            metric="worst_group_accuracy",
            arms=arms,
            budget=budget,
            description=description + sizes["quick" if name.endswith("-small") else "full"],
            secondary=("accuracy",),
        )
        for name in names
    }


TASKS = cue_tasks(
    TEST_SIZE,
    ARMS,
    BUDGET,
    _DESC,
    {
        "quick": " Quick: 64 hidden units, 500 test images.",
        "full": " Full: 128 hidden units, 1,500 test images.",
    },
)


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
    from interplab.data.grouped import group_accuracies

    return group_accuracies(logits.argmax(-1), data)


def _wga(logits: Any, data: Any) -> float:
    return _scores(logits, data)["worst_group_accuracy"]


def _choose_k(net: Any, budget: Any, h: Any, seed: int) -> tuple[Any, Any]:
    """(selection of k by CV on the budget set, the unit ranking refit on the whole budget set)."""
    from interplab.methods.erasure import mean_ablate, rank_units

    readout = net.out.weight[1] - net.out.weight[0]

    def fold(k: int, tr: list[int], held: list[int]) -> float:
        ranking = rank_units(h[tr], budget.cue[tr], readout=readout)
        return _wga(
            net.head(mean_ablate(h[held], ranking.top(k), ranking.means)), budget.subset(held)
        )

    sel = select_by_cv("k", _k_ladder(h.shape[1]), budget.group.tolist(), fold, seed=seed)
    return sel, rank_units(h, budget.cue, readout=readout)


def _fit_dfr(budget: Any, h: Any, seed: int) -> tuple[Any, Any]:
    """(selection of DFR's L2 penalty by CV on the budget set, the readout refit on all of it).
    DFR's objective (:func:`interplab.methods.erasure.retrain_readout`'s) solved by the batched
    Newton steps of the retrain arms (:func:`_refit_heads`), every penalty of a fold at once: the
    same optimum (a test compares the objectives), and shift_retrain at k = 0 is this arm
    exactly."""

    def fit_fold(tr: list[int], held: list[int]) -> dict:
        heads = _refit_heads(h[tr], budget.y[tr], DFR_L2)
        part = budget.subset(held)
        return {l2: _wga(head.logits(h[held]), part) for l2, head in zip(DFR_L2, heads)}

    sel = select_by_cv("l2", DFR_L2, budget.group.tolist(), _by_fold(fit_fold), seed=seed)
    return sel, _refit_heads(h, budget.y, [sel.value])[0]


# ------------------------------------------------------------- retraining the head (SHIFT+)


def _newton_heads(x: Any, y: Any, l2: Any, *, iters: int = 100, tol: float = 1e-12) -> Any:
    """Minimise DFR's objective ``mean CE + l2 · ||W||²`` for ``G`` problems at once by damped
    Newton steps (float64): ``x [G, n, d]`` standardised features (a dropped unit's column all
    0), ``y [n]`` labels in {0, 1}, ``l2 [G]``. For two classes the objective depends on the
    logit difference ``v·x + c`` only, with ``||W||² = ||v||²/2`` at the optimum, so this is
    binary logistic regression with penalty ``(l2/2)·||v||²`` (bias unpenalised). Returns
    ``theta [G, d + 1]`` (v, then c)."""
    import torch
    from torch.nn import functional as F

    g, n, d = x.shape
    design = torch.cat([x, torch.ones(g, n, 1, dtype=x.dtype)], -1)
    pen = torch.cat([l2[:, None].expand(g, d), torch.zeros(g, 1, dtype=x.dtype)], 1)
    target = y.to(x.dtype)
    jitter = 1e-12 * torch.eye(d + 1, dtype=x.dtype)

    def objective(theta: Any) -> Any:
        z = (design @ theta[..., None])[..., 0]
        return (F.softplus(z) - target * z).mean(-1) + 0.5 * (pen * theta * theta).sum(-1)

    theta = torch.zeros(g, d + 1, dtype=x.dtype)
    f = objective(theta)
    for _ in range(iters):
        p = torch.sigmoid((design @ theta[..., None])[..., 0])
        grad = (design.transpose(1, 2) @ (p - target)[..., None])[..., 0] / n + pen * theta
        hess = design.transpose(1, 2) @ (design * (p * (1 - p) / n)[..., None])
        step = torch.linalg.solve(hess + torch.diag_embed(pen) + jitter, grad)
        decrement = (grad * step).sum(-1)
        if float(decrement.max()) < tol:
            break
        t = torch.ones(g, dtype=x.dtype)
        for _ in range(40):  # backtracking (Armijo), per problem
            new = theta - t[:, None] * step
            f_new = objective(new)
            short = f_new > f - 0.25 * t * decrement
            if not bool(short.any()):
                break
            t = torch.where(short, t / 2, t)
        theta, f = new, f_new
    return theta


def _refit_heads(h: Any, y: Any, l2s: Any, keep: Any = None) -> list[Any]:
    """DFR's refit of the last layer on features ``h [n, d]``, once per ``l2s[i]`` with units
    ``~keep[i]`` ([G, d] bool; None: all kept) ablated: standardised with ``h``'s mean and std as
    :func:`interplab.methods.erasure.retrain_readout` does, an ablated unit's column set to 0
    (a constant carries no information), so its weight is exactly 0. One Readout per problem."""
    import torch

    from interplab.methods.erasure import Readout

    h = h.detach().float()
    l2 = torch.as_tensor(list(l2s), dtype=torch.float64)
    if keep is None:
        keep = torch.ones(len(l2), h.shape[1], dtype=torch.bool)
    mean, std = h.mean(0), h.std(0).clamp_min(1e-6)
    hs = ((h - mean) / std).double()
    theta = _newton_heads(hs[None] * keep[:, None, :].double(), y, l2).float()
    v, c = theta[:, :-1] * keep.float(), theta[:, -1]
    return [
        Readout(mean, std, torch.stack([-v[i] / 2, v[i] / 2]), torch.stack([-c[i] / 2, c[i] / 2]))
        for i in range(len(l2))
    ]


def _by_fold(
    fit_fold: Callable[[list[int], list[int]], dict],
) -> Callable[[Any, list, list], float]:
    """A ``fold_score`` for :func:`select_by_cv` that fits every grid value of a fold at once
    (``fit_fold(train_idx, held_idx) -> {value: held-out score}``, fit on ``train_idx`` only)
    the first time the fold is asked for, then answers from that."""
    done: dict[tuple[int, ...], dict] = {}

    def fold(value: Any, tr: list[int], held: list[int]) -> float:
        key = tuple(held)
        if key not in done:
            done[key] = fit_fold(tr, held)
        return done[key][value]

    return fold


def _shift_grid(width: int) -> list[tuple[int, float]]:
    """(k, l2) pairs of shift_retrain, simplest first: k ascending, then L2 strongest first."""
    return [(k, l2) for k in _k_ladder(width) for l2 in DFR_L2]


def _keep_masks(width: int, ablated: list[Any]) -> Any:
    import torch

    keep = torch.ones(len(ablated), width, dtype=torch.bool)
    for i, units in enumerate(ablated):
        keep[i, units] = False
    return keep


def _choose_shift(net: Any, budget: Any, h: Any, seed: int) -> tuple[Any, Any]:
    """(selection of (k, l2) by CV on the budget set, the unit ranking refit on all of it)."""
    from interplab.methods.erasure import rank_units

    readout = net.out.weight[1] - net.out.weight[0]
    grid = _shift_grid(h.shape[1])

    def fit_fold(tr: list[int], held: list[int]) -> dict:
        ranking = rank_units(h[tr], budget.cue[tr], readout=readout)
        keep = _keep_masks(h.shape[1], [ranking.top(k) for k, _ in grid])
        heads = _refit_heads(h[tr], budget.y[tr], [l2 for _, l2 in grid], keep)
        part = budget.subset(held)
        return {v: _wga(head.logits(h[held]), part) for v, head in zip(grid, heads)}

    sel = select_by_cv("(k, l2)", grid, budget.group.tolist(), _by_fold(fit_fold), seed=seed)
    return sel, rank_units(h, budget.cue, readout=readout)


def _choose_erasure_l2(budget: Any, h: Any, seed: int) -> Any:
    """Selection of erasure_retrain's L2 by CV; LEACE is refit inside each fold on the fold's
    training part only, so the held-out fold enters neither the eraser nor the head."""
    from interplab.methods.erasure import fit_leace

    def fit_fold(tr: list[int], held: list[int]) -> dict:
        eraser = fit_leace(h[tr], budget.cue[tr])
        heads = _refit_heads(eraser.apply(h[tr]), budget.y[tr], DFR_L2)
        erased, part = eraser.apply(h[held]), budget.subset(held)
        return {l2: _wga(head.logits(erased), part) for l2, head in zip(DFR_L2, heads)}

    return select_by_cv("l2", DFR_L2, budget.group.tolist(), _by_fold(fit_fold), seed=seed)


def _mean_of(draws: list[dict[str, float]]) -> dict[str, float]:
    return {m: sum(d[m] for d in draws) / len(draws) for m in draws[0]}


def _one_seed(
    family: CueFamily, task: UtilityTask, arm: str, seed: int
) -> tuple[dict[str, float], float, dict]:
    import torch

    from interplab.data.grouped import balanced_subset
    from interplab.methods.erasure import fit_leace, mean_ablate, random_eraser

    org = family.load(task.name, seed, False)
    test = family.split(org, "test")
    test = test.subset(torch.arange(min(family.test_size[task.name], len(test))))
    budget = balanced_subset(family.split(org, "heldout"), family.per_group, seed)
    net, spent, info = org.net, float(len(budget)), {"selection": None}
    with torch.no_grad():
        h_test, h_budget = net.features(test.inputs), net.features(budget.inputs)
        if arm == "baseline:original":
            logits, spent = net.head(h_test), 0.0
        elif arm == "baseline:delete_cue":
            logits, spent = net(family.delete_cue(org, test)), 0.0
        elif arm == "oracle:balanced":
            oracle = family.load(task.name, seed, True)
            logits, spent = oracle.net(test.inputs), float(oracle.truth["info"]["n_train"])
        elif arm == "interp:concept_erasure":
            eraser = fit_leace(h_budget, budget.cue)
            logits, info = net.head(eraser.apply(h_test)), {"rank": eraser.rank, "selection": None}
        elif arm == "interp:neuron_ablation":
            sel, ranking = _choose_k(net, budget, h_budget, seed)
            logits = net.head(mean_ablate(h_test, ranking.top(sel.value), ranking.means))
            info = {
                "k": sel.value,
                "units": ranking.top(sel.value).tolist(),
                "selection": sel.as_dict(),
            }
        elif arm == "baseline:random":
            sel, _ = _choose_k(net, budget, h_budget, seed)
            means, gen = h_budget.mean(0), torch.Generator().manual_seed(seed)
            draws = [
                _scores(
                    net.head(
                        mean_ablate(
                            h_test,
                            torch.randperm(h_test.shape[1], generator=gen)[: sel.value],
                            means,
                        )
                    ),
                    test,
                )
                for _ in range(RANDOM_DRAWS)
            ]
            return (
                _mean_of(draws),
                spent,
                {
                    "k": sel.value,
                    "draws": RANDOM_DRAWS,
                    "selection": {**sel.as_dict(), "from": "interp:neuron_ablation"},
                },
            )
        elif arm == "baseline:random_erasure":
            eraser = fit_leace(h_budget, budget.cue)
            draws = [
                _scores(
                    net.head(random_eraser(eraser, seed * RANDOM_DRAWS + i).apply(h_test)), test
                )
                for i in range(RANDOM_DRAWS)
            ]
            return (
                _mean_of(draws),
                spent,
                {"rank": eraser.rank, "draws": RANDOM_DRAWS, "selection": None},
            )
        elif arm == "baseline:dfr":
            sel, readout = _fit_dfr(budget, h_budget, seed)
            logits, info = readout.logits(h_test), {"l2": sel.value, "selection": sel.as_dict()}
        elif arm == "interp:shift_retrain":
            sel, ranking = _choose_shift(net, budget, h_budget, seed)
            (k, l2), units = sel.value, ranking.top(sel.value[0])
            keep = _keep_masks(h_budget.shape[1], [units])
            head = _refit_heads(mean_ablate(h_budget, units, ranking.means), budget.y, [l2], keep)
            logits = head[0].logits(mean_ablate(h_test, units, ranking.means))
            info = {"k": k, "l2": l2, "units": units.tolist(), "selection": sel.as_dict()}
        elif arm == "interp:erasure_retrain":
            sel = _choose_erasure_l2(budget, h_budget, seed)
            eraser = fit_leace(h_budget, budget.cue)
            head = _refit_heads(eraser.apply(h_budget), budget.y, [sel.value])
            logits = head[0].logits(eraser.apply(h_test))
            info = {"rank": eraser.rank, "l2": sel.value, "selection": sel.as_dict()}
        elif arm == "baseline:random_retrain":
            sel, _ = _choose_shift(net, budget, h_budget, seed)
            (k, l2), means = sel.value, h_budget.mean(0)
            gen = torch.Generator().manual_seed(seed)
            drawn = [
                torch.randperm(h_budget.shape[1], generator=gen)[:k] for _ in range(RANDOM_DRAWS)
            ]
            keep = _keep_masks(h_budget.shape[1], drawn)
            heads = _refit_heads(h_budget, budget.y, [l2] * RANDOM_DRAWS, keep)
            draws = [
                _scores(head.logits(mean_ablate(h_test, units, means)), test)
                for head, units in zip(heads, drawn)
            ]
            return (
                _mean_of(draws),
                spent,
                {
                    "k": k,
                    "l2": l2,
                    "draws": RANDOM_DRAWS,
                    "selection": {**sel.as_dict(), "from": "interp:shift_retrain"},
                },
            )
        else:  # pragma: no cover - check_arm rejects unknown arms first
            raise AssertionError(arm)
    return _scores(logits, test), spent, info


def run_family(family: CueFamily, task: UtilityTask, arm: str, seeds: list[int]) -> ArmRun:
    """Run ``arm`` of ``task`` on each seed (a fresh organism per seed); see the module doc. A
    seed that fails is recorded in ``ArmRun.failed`` and the other seeds still run."""
    import torch

    task.check_arm(arm)
    torch.set_num_threads(1)
    metrics = (task.metric,) + task.secondary

    def one(seed: int) -> tuple[dict[str, float], float, dict]:
        scores, used, info = _one_seed(family, task, arm, seed)
        return scores, used, {**info, "groups": {g: scores[g] for g in GROUPS}}

    values, spent, per_seed, failed = run_seeds(metrics, seeds, one)
    n_test = family.test_size[task.name]
    return ArmRun(
        values,
        {m: n_test for m in metrics},
        spent,
        {"per_seed": per_seed, "budget_examples": 4 * family.per_group},
        failed,
    )


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
