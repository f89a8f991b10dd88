"""Kernel SHAP on models interplab never trained: interplab's default vs shap's explainers at theirs.

Models (scikit-learn, seeded, float64), each with exact interventional Shapley values of the
log-odds against the same 16-row background (the truth):

    gbc-d30      GradientBoostingClassifier on breast_cancer (30 features); truth:
                 shap.TreeExplainer(model, bg, feature_perturbation="interventional",
                 model_output="raw") (log-odds)
    gbc-d10      GradientBoostingClassifier on make_classification (10 features): interplab
                 enumerates all 2^10 − 2 coalitions (exact); same truth as above
    mlp-d12      MLPClassifier on make_classification (12 features); truth: brute-force Shapley
                 sum over all 4096 coalitions (written here, independent of interplab)
    logreg-d60   LogisticRegression on make_classification (60 features); truth: the exact linear
                 formula w_j · (x_j − mean_bg x_j)

Per model, over ROWS test rows: relative L1 error (Σ|φ̂ − φ| / Σ|φ|, mean over rows), top-5
overlap (|top5(φ̂) ∩ top5(φ)| / 5), seconds per row (median), for
    interplab     attribute(model, x, method="kernel_shap", baseline=bg) at its defaults
    shap_kernel   shap.KernelExplainer(f, bg).shap_values(x) at its defaults (nsamples = 2d + 2048,
                  l1_reg = "num_features(10)")
    shap_perm     shap.PermutationExplainer(f, bg)(x) at its defaults (max_evals = 500)
all on the same logit function f, timed interleaved per row (interplab, shap_kernel, shap_perm,
...), torch threads 1; and the coverage of interplab's 95 % ``error`` (share of features whose
exact value lies within value ± error, over the rows whose estimate was sampled, not enumerated;
per model and pooled).

Prints one JSON line: {"benchmark": "rationale_speed", "models": {name: {...}},
"accuracy_ratio_min" (min over models of shap_kernel rel. L1 / interplab rel. L1: ≥ 1 means
interplab is at least as accurate everywhere; 1.0 where both are exact to EXACT), "speed_ratio_min" (min over models of shap_kernel
s/row / interplab s/row: ≥ 1 means interplab is no slower everywhere), "pareto" (both ≥ 1),
"coverage", "load_average", "config"}. Needs shap (``pip install 'interplab[dev]'``).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import statistics
import time
import warnings

import numpy as np
import torch

CONFIG = {
    "rows": 12,
    "background": 16,
    "threads": 1,
    "dtype": "float64",
    "seed": 0,
    "top": 5,
    "interplab": "kernel_shap defaults",
    "shap_kernel": "KernelExplainer defaults",
    "shap_perm": "PermutationExplainer defaults",
}
#: relative L1 error below which an estimate counts as exact (float round-off of the truths)
EXACT = 1e-6


def _features(d: int, x: np.ndarray) -> list:
    from interplab.data.tabular import Feature

    lo, hi = x.min(0), x.max(0)
    return [
        Feature(f"x{j}", "numeric", low=float(lo[j]) - 1.0, high=float(hi[j]) + 1.0)
        for j in range(d)
    ]


def _brute_force(f, x: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Exact interventional Shapley values by summing over every coalition (d ≤ 16)."""
    d = x.shape[0]
    masks = np.array(list(itertools.product([0, 1], repeat=d)), dtype=bool)
    rows = np.where(masks[:, None, :], x[None, None, :], bg[None, :, :]).reshape(-1, d)
    v = f(rows).reshape(len(masks), -1).mean(1)
    index = {tuple(m): i for i, m in enumerate(masks.astype(int).tolist())}
    size = masks.sum(1)
    weight = np.array(
        [math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d) for s in range(d)]
    )
    phi = np.zeros(d)
    for i, m in enumerate(masks):
        for j in np.nonzero(~m)[0]:
            with_j = m.copy()
            with_j[j] = True
            phi[j] += weight[size[i]] * (v[index[tuple(with_j.astype(int).tolist())]] - v[i])
    return phi


def _models(seed: int) -> dict:
    from sklearn.datasets import load_breast_cancer, make_classification
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    out = {}
    x, y = load_breast_cancer(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    out["gbc-d30"] = (GradientBoostingClassifier(random_state=seed).fit(x, y), x, "tree")
    x, y = make_classification(600, 10, n_informative=6, random_state=seed)
    out["gbc-d10"] = (GradientBoostingClassifier(random_state=seed).fit(x, y), x, "tree")
    x, y = make_classification(600, 12, n_informative=8, random_state=seed + 1)
    mlp = MLPClassifier((32, 16), max_iter=600, random_state=seed).fit(x, y)
    out["mlp-d12"] = (mlp, x, "brute")
    x, y = make_classification(600, 60, n_informative=20, random_state=seed + 2)
    out["logreg-d60"] = (LogisticRegression(max_iter=2000).fit(x, y), x, "linear")
    return out


def _truth(kind: str, est, f, rows: np.ndarray, bg: np.ndarray) -> np.ndarray:
    import shap

    if kind == "tree":
        tree = shap.TreeExplainer(
            est, data=bg, feature_perturbation="interventional", model_output="raw"
        )
        return np.asarray(tree.shap_values(rows, check_additivity=False)).reshape(rows.shape)
    if kind == "linear":
        return est.coef_[0][None, :] * (rows - bg.mean(0)[None, :])
    return np.stack([_brute_force(f, r, bg) for r in rows])


def _top(v: np.ndarray, k: int) -> set:
    return set(np.argsort(-np.abs(v))[:k].tolist())


def main() -> None:
    torch.set_num_threads(CONFIG["threads"])
    import shap

    from interplab.methods.rationales import DecisionModel, attribute

    warnings.simplefilter("ignore")
    k = CONFIG["top"]
    models = {}
    cover_in, cover_n = 0, 0
    for name, (est, x, kind) in _models(CONFIG["seed"]).items():
        gen = np.random.default_rng(CONFIG["seed"])
        pick = gen.permutation(x.shape[0])
        bg = x[pick[: CONFIG["background"]]]
        rows = x[pick[CONFIG["background"] : CONFIG["background"] + CONFIG["rows"]]]
        d = x.shape[1]
        model = DecisionModel.from_predict_proba(est, _features(d, x))

        def f(a: np.ndarray, model=model) -> np.ndarray:
            return model.logit(torch.as_tensor(a)).numpy()

        truth = _truth(kind, est, f, rows, bg)
        bg_t = torch.as_tensor(bg)
        kern = shap.KernelExplainer(f, bg)
        perm = shap.PermutationExplainer(f, shap.maskers.Independent(bg, max_samples=len(bg)))

        def ours(i: int, r: np.ndarray, model=model, bg_t=bg_t):
            a = attribute(model, torch.as_tensor(r), method="kernel_shap", baseline=bg_t, seed=i)
            return a.values.numpy(), a

        def theirs(i: int, r: np.ndarray, kern=kern):
            return np.asarray(kern.shap_values(r[None], silent=True)).reshape(-1), None

        def permuted(i: int, r: np.ndarray, perm=perm):
            np.random.seed(i)
            return np.asarray(perm(r[None], silent=True).values).reshape(-1), None

        fns = {"interplab": ours, "shap_kernel": theirs, "shap_perm": permuted}
        for fn in fns.values():  # warm-up
            fn(0, rows[0])
        res = {m: {"err": [], "top": [], "s": []} for m in fns}
        exact_rows, m_in, m_n = 0, 0, 0
        for i, r in enumerate(rows):
            for m, fn in fns.items():
                start = time.perf_counter()
                est_v, a = fn(i, r)
                res[m]["s"].append(time.perf_counter() - start)
                res[m]["err"].append(float(np.abs(est_v - truth[i]).sum() / np.abs(truth[i]).sum()))
                res[m]["top"].append(len(_top(est_v, k) & _top(truth[i], k)) / k)
                if a is not None:
                    if a.extra["exact"]:
                        exact_rows += 1
                    else:
                        e = a.error.numpy()
                        m_in += int((np.abs(est_v - truth[i]) <= e).sum())
                        m_n += d
        models[name] = {
            "features": d,
            "truth": kind,
            "interplab_exact_rows": exact_rows,
            "coverage": m_in / m_n if m_n else None,
            "coverage_n": m_n,
            **{
                f"{m}_{key}": statistics.mean(v[key]) if key != "s" else statistics.median(v["s"])
                for m, v in res.items()
                for key in ("err", "top", "s")
            },
        }
        cover_in, cover_n = cover_in + m_in, cover_n + m_n
        mm = models[name]
        # both at round-off (exact enumeration vs an exact truth): a tie, not a ratio of noise
        tie = max(mm["shap_kernel_err"], mm["interplab_err"]) < EXACT
        mm["accuracy_ratio"] = 1.0 if tie else mm["shap_kernel_err"] / mm["interplab_err"]
        mm["speed_ratio"] = mm["shap_kernel_s"] / mm["interplab_s"]
    acc = min(v["accuracy_ratio"] for v in models.values())
    spd = min(v["speed_ratio"] for v in models.values())
    print(
        json.dumps(
            {
                "benchmark": "rationale_speed",
                "models": models,
                "accuracy_ratio_min": acc,
                "speed_ratio_min": spd,
                "pareto": acc >= 1 and spd >= 1,
                "coverage": cover_in / cover_n if cover_n else None,
                "coverage_n": cover_n,
                "load_average": os.getloadavg()[0],
                "config": CONFIG,
            }
        )
    )


if __name__ == "__main__":
    main()
