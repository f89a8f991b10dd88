"""Cost of attributing the copyright organism's outputs, and dattri side by side.

Prints one JSON line:

    organism, threads, n_docs, n_queries, n_adapter_params
    finetune_seconds      the organism's fine-tuning time (its cache sidecar, as built)
    load_seconds          loading it here (the cache, or a build on first use)
    per_doc_gradient_s    one document's adapter gradient (one batch / its size), by the API's
                          vmap; ``_capture_s``: the same gradients from batched backward passes
                          (what ekfac_lora uses; exact, see the tests)
    methods               per method and baseline: seconds, seconds per query, sampled peak RSS
                          above the start (MiB), recall@10 per kind with its interval
    dattri                dattri's gradient-cosine attributor (TracInAttributor, normalised
                          gradients, one checkpoint = the final weights, its random projection
                          to 512 dims) on the same adapter parameters, documents and queries:
                          its seconds, and agreement with interplab's grad_cos (mean Spearman
                          over queries, mean top-10 overlap); ``ratio`` = dattri's seconds over
                          interplab's grad_cos seconds, both measured in this run (> 1: faster)

Run: ``python benchmarks/copyright_attribution.py [--organism smollm2-ft] [--threads 2]
[--methods grad_cos,tracin] [--checkpoints 4] [--no-dattri]``. dattri is a reference library
(dev extra), never a runtime dependency of interplab.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from interplab.eval import copyright as E


def finetune_seconds(org) -> float | None:
    """The fine-tune time recorded in the organism's cache sidecar (None when absent)."""
    path = Path(getattr(org, "directory", "")) / "organism.json"
    try:
        return float(json.loads(path.read_text())["seconds"]["finetune"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def dattri_grad_cos(org, queries) -> tuple[torch.Tensor, float]:
    """dattri's gradient cosine on the same scorer, parameters, documents and queries:
    (scores [n_queries, n_docs], seconds)."""
    from dattri.algorithm.tracin import TracInAttributor
    from dattri.task import AttributionTask
    from torch.utils.data import DataLoader, TensorDataset

    module = E.scorer(org)
    (xr, yr), (xt, yt) = E.attribution_data(org, queries)
    final = {k: v for k, v in module.state_dict().items()}

    def loss(params, data):
        x, y = data
        z = torch.func.functional_call(module, params, (x[None],))
        return E.scorer_loss(z, y[None])[0]

    def load(model, ckpt):
        return model  # the final weights are the module's own

    module.eval()
    task = AttributionTask(
        loss_func=loss, model=module, checkpoints=final, checkpoints_load_func=load
    )
    attributor = TracInAttributor(task, weight_list=torch.ones(1), normalized_grad=True)
    train = DataLoader(TensorDataset(xr, yr), batch_size=8, shuffle=False)
    test = DataLoader(TensorDataset(xt, yt), batch_size=8, shuffle=False)
    start = time.perf_counter()
    scores = attributor.attribute(train, test).T.double()
    return scores, time.perf_counter() - start


def main(argv: list[str] | None = None, organism=None) -> dict:
    """Run the benchmark (``organism``: an already loaded organism, else ``--organism``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--organism", default="smollm2-ft")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", default=",".join(E.METHODS + E.BASELINES))
    ap.add_argument("--checkpoints", type=int, default=E.CHECKPOINTS)
    ap.add_argument("--no-dattri", action="store_true")
    ap.add_argument("--out", help="also write the JSON here after every method (partial runs)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from interplab.zoo.copyright import load

    start = time.perf_counter()
    org = organism if organism is not None else load(args.organism)
    load_seconds = time.perf_counter() - start
    queries = E.build_queries(org, "generated")
    out: dict = {
        "organism": args.organism,
        "threads": args.threads,
        "n_docs": len(org.corpus.docs),
        "n_queries": len(queries),
        "kinds": {k: queries.kinds.count(k) for k in E.KINDS},
        "n_adapter_params": sum(p.numel() for p in org.model.parameters() if p.requires_grad),
        "finetune_seconds": finetune_seconds(org),
        "load_seconds": load_seconds,
        "per_doc_gradient_s": E.seconds_per_doc_gradient(org, queries),
        "per_doc_gradient_capture_s": E.seconds_per_doc_gradient(org, queries, how="capture"),
        "continuation": queries.continuation,
        "outputs_matching_target": sum(queries.matches_target),
        "methods": {},
    }

    def save() -> None:
        if args.out:
            from interplab.models.io import atomic_write_text

            atomic_write_text(Path(args.out), json.dumps(out))

    runs = {}
    losses = None
    names = [m for m in args.methods.split(",") if m]
    if not args.no_dattri and "grad_cos" not in names:
        names.append("grad_cos")
    for name in names:
        if name in E.METHODS:
            run = E.run_method(org, queries, name, checkpoints=args.checkpoints)
        else:
            if name == "loss_membership" and losses is None:
                losses = E.doc_losses(org)
            run = E.run_baseline(org, queries, name, losses=losses)
        runs[name] = run
        out["methods"][name] = E.summary(run, queries)
        save()
        if name != "grad_cos" or args.no_dattri:
            continue
        ref, seconds = dattri_grad_cos(org, queries)
        ours = run
        out["dattri"] = {
            "attributor": "TracInAttributor(normalized_grad=True, 1 checkpoint, proj_dim 512)",
            "seconds": seconds,
            "seconds_per_query": seconds / len(queries),
            "interplab_grad_cos_seconds": ours.seconds,
            "ratio": seconds / max(ours.seconds, 1e-9),
            "spearman_vs_grad_cos": E.spearman(ref, ours.scores),
            "top10_overlap_vs_grad_cos": E.top_overlap(ref, ours.scores),
            "recall": E.summary(E.MethodRun("dattri", ref, seconds, len(queries), 0.0), queries)[
                "recall"
            ],
        }
        save()
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
