"""Training-data attribution on a model trained outside the zoo: a plain ``nn.Sequential`` MLP
(64 -> 32 -> ReLU -> 10) on sklearn's 8x8 digits, attributed through
``attribute_data(module, ...)``, scored by LDS against real retraining, and ``dattri``'s TRAK
and influence functions side by side on the same model.

Config (fixed): float64; ``torch.set_num_threads(THREADS)``; inputs / 16; a seeded random split
of the 1797 digits into ``n_train`` and ``n_test``; full-batch Adam (lr 0.01, ``STEPS`` steps,
L2 ``WEIGHT_DECAY`` in the loss) from one seeded initialisation; checkpoints (state dicts) every
``STEPS / N_CHECKPOINTS`` steps for TracIn / TRAK.

Ground truth: ``n_subsets`` random halves of the training set (masks from their own seed), the
MLP retrained on each from the *same* initialisation, and its label margin (log-odds of the true
label, :func:`interplab.models.classifiers.margin`) on every test point; leave-one-out on
``n_loo`` seeded training points likewise. LDS / LOO correlation and their bootstrap intervals
are :mod:`interplab.eval.data_attribution`'s (95%, over test points).

dattri (0.3.0; ``pip install dattri`` keeps torch 2.13.0+cpu: its requirements are numpy, scipy,
tqdm, pyyaml, pretty_midi): ``TRAKAttributor`` (margin as output function, projection dim 256,
the same checkpoints), ``IFAttributorCG`` / ``IFAttributorLiSSA`` / ``IFAttributorEKFAC`` at the
final weights (cross-entropy loss on the training side, the test margin as target,
regularisation = weight decay + interplab's damping). dattri's influence scores are
``grad(target)^T H^-1 grad(loss)``, whose negative is the effect of *keeping* an example on the
margin (interplab's sign), so they are negated before scoring (fixed by the formula, not chosen
by the result); TRAK's need no flip.

``ekfac_empirical``: interplab's EK-FAC with the true labels (``fisher="empirical"``), the
Fisher dattri's EK-FAC estimates from the given loss. ``--truth-cache FILE`` keeps the
retraining truth between runs (keyed by the config).

Prints one JSON line: {"benchmark": "tda_any_module", "threads", "n_train", "n_test",
"n_subsets", "n_loo", "methods": {name: {"lds": {value, low, high, n}, "loo": {...}, "seconds"}},
"dattri": {name: {...} or null, "*_note"}}.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

THREADS = 1
HIDDEN = 32
STEPS = 300
LR = 0.01
WEIGHT_DECAY = 1e-3
N_CHECKPOINTS = 4
MASK_SEED = 7_919
METHODS = (
    "grad_dot",
    "grad_cos",
    "tracin",
    "trak",
    "if_exact",
    "if_cg",
    "if_lissa",
    "ekfac",
    "ekfac_empirical",
    "representer",
    "nn_representation",
    "nn_input",
    "random",
)


@dataclass
class Case:
    x: torch.Tensor
    y: torch.Tensor
    xt: torch.Tensor
    yt: torch.Tensor
    net: torch.nn.Module
    checkpoints: list[dict[str, torch.Tensor]]
    seed: int


def build_mlp(seed: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(64, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 10)
    ).double()


def train_mlp(
    x: torch.Tensor, y: torch.Tensor, seed: int
) -> tuple[torch.nn.Module, list[dict[str, torch.Tensor]]]:
    """Full-batch Adam on mean CE + WEIGHT_DECAY / 2 |theta|^2 from a seeded init."""
    net = build_mlp(seed)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    ckpts = []
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss = loss + 0.5 * WEIGHT_DECAY * sum((p**2).sum() for p in net.parameters())
        loss.backward()
        opt.step()
        if step % (STEPS // N_CHECKPOINTS) == 0:
            ckpts.append({k: v.detach().clone() for k, v in net.state_dict().items()})
    return net, ckpts


def make_case(n_train: int = 500, n_test: int = 100, seed: int = 0) -> Case:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float64) / 16
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    tr, te = order[:n_train], order[n_train : n_train + n_test]
    net, ckpts = train_mlp(x[tr], y[tr], seed)
    return Case(x[tr], y[tr], x[te], y[te], net, ckpts, seed)


def _margins(net: torch.nn.Module, case: Case) -> torch.Tensor:
    from interplab.models.classifiers import margin

    with torch.no_grad():
        return margin(net(case.xt), case.yt)


@dataclass
class Truth:
    masks: torch.Tensor  # [n_subsets, n_train] bool
    outputs: torch.Tensor  # [n_subsets, n_test]
    loo_index: torch.Tensor
    loo_effect: torch.Tensor  # [n_loo, n_test]: full - without


def retraining_truth(case: Case, n_subsets: int, n_loo: int = 0) -> Truth:
    """Retrain on random halves (and without single points) from the same init."""
    n = len(case.x)
    gen = torch.Generator().manual_seed(case.seed + MASK_SEED)
    masks = torch.zeros(n_subsets, n, dtype=torch.bool)
    outputs = torch.zeros(n_subsets, len(case.xt), dtype=torch.float64)
    for j in range(n_subsets):
        masks[j, torch.randperm(n, generator=gen)[: n // 2]] = True
        net, _ = train_mlp(case.x[masks[j]], case.y[masks[j]], case.seed)
        outputs[j] = _margins(net, case)
    loo_index = torch.randperm(n, generator=gen)[:n_loo].sort().values
    full = _margins(case.net, case)
    effect = torch.zeros(n_loo, len(case.xt), dtype=torch.float64)
    for k, i in enumerate(loo_index.tolist()):
        keep = torch.ones(n, dtype=torch.bool)
        keep[i] = False
        net, _ = train_mlp(case.x[keep], case.y[keep], case.seed)
        effect[k] = full - _margins(net, case)
    return Truth(masks, outputs, loo_index, effect)


def ours(case: Case, method: str) -> tuple[torch.Tensor, float]:
    from interplab.methods.data_attribution import attribute_data

    ckpts = case.checkpoints if method in ("tracin", "trak") else None
    extra = {"fisher": "empirical"} if method == "ekfac_empirical" else {}
    att = attribute_data(
        case.net,
        (case.x, case.y),
        (case.xt, case.yt),
        method=method.removesuffix("_empirical"),
        checkpoints=ckpts,
        weight_decay=WEIGHT_DECAY,
        **extra,
    )
    return att.scores, att.seconds


def lds_of(case: Case, truth: Truth, method: str):
    from interplab.eval.data_attribution import lds

    return lds(ours(case, method)[0], truth.masks, truth.outputs)


def _score(scores: torch.Tensor, truth: Truth) -> dict:
    from interplab.eval.data_attribution import lds, loo_correlation

    out = {"lds": lds(scores, truth.masks, truth.outputs).to_json()}
    if len(truth.loo_index):
        out["loo"] = loo_correlation(scores, truth.loo_index, truth.loo_effect).to_json()
    return out


# ---- dattri, on the same model -------------------------------------------------------------


def _dattri_funcs(net: torch.nn.Module):
    from interplab.models.classifiers import margin

    def batch(data):  # one example (under vmap) or a batch; dattri's LiSSA casts to float32
        x, y = data
        x, y = x.to(torch.float64), y.long()
        return (x[None], y[None]) if x.dim() == 1 else (x, y)

    def loss_func(params, data):
        x, y = batch(data)
        z = torch.func.functional_call(net, params, (x,))
        return torch.nn.functional.cross_entropy(z, y)

    def target_func(params, data):
        x, y = batch(data)
        z = torch.func.functional_call(net, params, (x,))
        return margin(z, y).mean()

    def correct_probability(params, data):
        x, y = batch(data)
        z = torch.func.functional_call(net, params, (x,))
        return torch.exp(-torch.nn.functional.cross_entropy(z, y))

    return loss_func, target_func, correct_probability


def _loaders(case: Case, train_batch: int):
    from torch.utils.data import DataLoader, TensorDataset

    train = DataLoader(TensorDataset(case.x, case.y), batch_size=train_batch, shuffle=False)
    test = DataLoader(TensorDataset(case.xt, case.yt), batch_size=len(case.xt), shuffle=False)
    return train, test


def dattri_scores(case: Case, method: str) -> tuple[torch.Tensor, float]:
    """dattri's scores [n_test, n_train] in interplab's sign convention, and seconds."""
    from dattri.algorithm.influence_function import (
        IFAttributorCG,
        IFAttributorEKFAC,
        IFAttributorLiSSA,
    )
    from dattri.algorithm.trak import TRAKAttributor
    from dattri.task import AttributionTask

    from interplab.methods.data_attribution.influence import DAMPING

    net = case.net.eval()
    loss_func, target_func, correct_probability = _dattri_funcs(net)
    final = {k: v.detach().clone() for k, v in net.state_dict().items()}
    reg = WEIGHT_DECAY + DAMPING
    start = time.perf_counter()
    if method == "trak":
        task = AttributionTask(loss_func=target_func, model=net, checkpoints=list(case.checkpoints))
        att = TRAKAttributor(
            task=task,
            correct_probability_func=correct_probability,
            projector_kwargs={"proj_dim": 256, "device": "cpu", "proj_max_batch_size": 32},
            device="cpu",
        )
        train, test = _loaders(case, 64)
        att.cache(train)
        scores = att.attribute(test).T
        sign = 1.0
    else:
        task = AttributionTask(
            loss_func=loss_func, model=net, checkpoints=final, target_func=target_func
        )
        if method == "if_cg":
            att = IFAttributorCG(task=task, device="cpu", max_iter=100, regularization=reg)
        elif method == "if_lissa":
            att = IFAttributorLiSSA(task=task, device="cpu", damping=reg, recursion_depth=1000)
        elif method == "ekfac":
            att = IFAttributorEKFAC(task=task, device="cpu", damping=reg)
        else:
            raise ValueError(method)
        train, test = _loaders(case, len(case.x))
        att.cache(train)
        scores = att.attribute(train, test).T
        sign = -1.0
    seconds = time.perf_counter() - start
    case.net.load_state_dict(final)
    return sign * scores.detach().double(), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=500)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--n-subsets", type=int, default=100)
    parser.add_argument("--n-loo", type=int, default=20)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--dattri", default="trak,if_cg,if_lissa,ekfac")
    parser.add_argument(
        "--truth-cache", help="a .pt file: the retraining truth is loaded from it, or saved to it"
    )
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    start = time.perf_counter()
    case = make_case(args.n_train, args.n_test)
    key = [args.n_train, args.n_test, args.n_subsets, args.n_loo, STEPS, LR, WEIGHT_DECAY]
    cached = (
        torch.load(args.truth_cache)
        if args.truth_cache and Path(args.truth_cache).is_file()
        else None
    )
    if cached is not None and cached["key"] == key:
        truth = Truth(**cached["truth"])
    else:
        truth = retraining_truth(case, args.n_subsets, args.n_loo)
        if args.truth_cache:
            torch.save({"key": key, "truth": vars(truth)}, args.truth_cache)
    out: dict = {
        "benchmark": "tda_any_module",
        "model": f"nn.Sequential 64-{HIDDEN}-ReLU-10, float64, digits",
        "threads": THREADS,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "n_subsets": args.n_subsets,
        "n_loo": args.n_loo,
        "truth_seconds": time.perf_counter() - start,
        "methods": {},
        "dattri": {},
    }
    ours(case, "grad_dot")  # warm-up (vmap's first call)
    for m in [m for m in args.methods.split(",") if m]:
        scores, seconds = ours(case, m)
        out["methods"][m] = {**_score(scores, truth), "seconds": seconds}
    for m in [m for m in args.dattri.split(",") if m]:
        try:
            scores, seconds = dattri_scores(case, m)
        except ImportError as exc:
            out["dattri"][m] = None
            out["dattri"][f"{m}_note"] = f"dattri not importable ({exc}); pip install dattri"
            continue
        except Exception as exc:  # a reference failing must not hide the other results
            out["dattri"][m] = None
            out["dattri"][f"{m}_note"] = f"{type(exc).__name__}: {str(exc)[:200]}"
            continue
        out["dattri"][m] = {**_score(scores, truth), "seconds": seconds}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
