"""Time per explained decision: interplab's full checked rationale vs SHAP's KernelExplainer alone.

Config (fixed): organism credit-mlp (20 features, MLP), 8 test decisions, background = 50
training rows for both, torch threads = 1, float64.

    interplab   ``explain``: Kernel SHAP (10 replicates × 64 coalitions × 16 background rows, with
                its error), counterfactual recourse (beam search + refinement, 3 options), and
                every claim tested on fresh interventions
    shap        ``shap.KernelExplainer(f, background).shap_values(x, nsamples="auto")`` on the
                same logit function (attributions only: no recourse, no checks)

Both are timed per decision, interleaved (interplab, shap, interplab, ...) to share machine load;
agreement of the two attributions (mean Spearman over the rows) and the number of model rows
each evaluates per decision (SHAP's "auto" budget is 2·d + 2048 coalitions × the background;
interplab's is smaller and it reports the resulting error) are reported beside the times.

Prints one JSON line: {"benchmark": "rationale_speed", "interplab_s_per_decision",
"shap_s_per_decision", "ratio" (= shap / interplab time: > 1 means interplab's full checked
rationale is faster than SHAP's KernelExplainer alone), "agreement_spearman", "config"}. Without
``shap`` installed (``pip install 'interplab[dev]'``) "shap_s_per_decision" and "ratio" are null
and "reference_note" says why.
"""

from __future__ import annotations

import json
import statistics
import time
import warnings

import torch

CONFIG = {
    "organism": "credit-mlp",
    "rows": 8,
    "background": 50,
    "threads": 1,
    "dtype": "float64",
    "shap_nsamples": "auto",
}


def main() -> None:
    torch.set_num_threads(CONFIG["threads"])
    from interplab.eval.rationales import spearman
    from interplab.methods.rationales import DecisionModel, explain
    from interplab.zoo.tabular import get

    org = get(CONFIG["organism"])
    model = DecisionModel.from_torch(org.model, org.features, outcomes=org.data.outcomes)
    bg = org.background[: CONFIG["background"]]
    rows = org.test_rows[: CONFIG["rows"]]
    try:
        import shap
    except ImportError:
        shap = None
    ours, theirs, agree, evals = [], [], [], []
    explainer = None
    if shap is not None:
        explainer = shap.KernelExplainer(
            lambda a: model.logit(torch.as_tensor(a)).numpy(), bg.numpy()
        )
    explain(model, rows[0], baseline=bg)  # warm-up
    for i, x in enumerate(rows):
        start = time.perf_counter()
        rat = explain(model, x, baseline=bg, seed=i)
        ours.append(time.perf_counter() - start)
        evals.append(rat.attributions.cost.evaluations + rat.recourse.cost.evaluations)
        if explainer is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                values = explainer.shap_values(x[None].numpy(), nsamples="auto", silent=True)
                theirs.append(time.perf_counter() - start)
            agree.append(spearman(rat.attributions.values, torch.tensor(values).reshape(-1)))
    result = {
        "benchmark": "rationale_speed",
        "interplab_s_per_decision": statistics.median(ours),
        "shap_s_per_decision": statistics.median(theirs) if theirs else None,
        "ratio": statistics.median(theirs) / statistics.median(ours) if theirs else None,
        "agreement_spearman": statistics.mean(agree) if agree else None,
        "interplab_model_rows_per_decision": statistics.median(evals),
        "shap_model_rows_per_decision": (2 * len(org.features) + 2048) * CONFIG["background"]
        if theirs
        else None,
        "config": CONFIG,
    }
    if shap is None:
        result["reference_note"] = "shap is not installed: pip install 'interplab[dev]'"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
