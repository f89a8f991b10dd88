"""Training throughput of a sparse autoencoder on CPU, in samples (activation vectors) per second.

``--case synthetic`` (default) times a ReLU+L1 SAE on synthetic activations; ``--case real``
times a TopK SAE on SmolLM2-135M activations and also reports held-out variance explained.
Either way the script prints ONE JSON line (with "case" naming which).

Synthetic case. Config (fixed): ReLU SAE with L1 penalty, d_in 128, d_latent 1024, batch 1024, Adam lr 1e-3,
unit-norm decoder, 150 timed steps after 10 warm-up steps, torch threads = 2, float32.
Activations come from an in-memory tensor of standard-normal activations (16 batches' worth,
seed 0), so the number measures the training step, not data generation. Both sides train on
the same batches: batch ``i`` is the rows interplab's ``TensorSource`` draws for step ``i``,
a generator seeded by ``hash((0, i))``, on both sides.

Prints one JSON line: {"benchmark": "sae_throughput", "samples_per_second": S, "config": {...},
"reference": ..., "ratio": ...}. When ``--saelens-python PATH`` (default
/tmp/saelens-venv/bin/python, if it exists) has sae-lens installed, the same config is timed
with sae-lens's StandardTrainingSAE in that interpreter, each step as sae-lens's SAETrainer
does it (forward, MSE + decoder-norm-weighted L1, backward, grad-norm clip, Adam step; sae-lens
keeps the decoder norm in the loss where interplab projects and renormalizes it) and "ratio" = interplab / sae-lens samples per second. Otherwise "reference" is null
and "reference_note" says why. The two runs are interleaved (A, B, A, B) to share machine load.

Real case (``--case real``). Activations: SmolLM2-135M at L6.resid_post (d_in 576), collected
once by interplab from the offline stdlib-docstring corpus (120 windows of 64 tokens, first
position skipped, a seeded 80/20 window split: ~6,000 training and ~1,500 held-out vectors) and
cached in a temp .safetensors file (``benchmarks/_smollm2_acts.py``) that both interpreters read,
so the sae-lens side never loads the model. Config, the same in both: TopK, d_latent 4608, k 32,
batch 512, Adam lr 1e-3, 5 warm-up + 40 timed steps, batch ``i`` = the same seeded random rows
of the training vectors in both, torch threads = 1, float32, no auxiliary dead-latent loss and
no resampling (sae-lens's TopK aux loss is off because no dead-neuron mask is passed). Each
library keeps its own TopK details: interplab projects the decoder gradient and renormalizes
rows to unit norm; sae-lens (TopKTrainingSAE defaults) starts the decoder at norm 0.1, scales
pre-activations by the decoder norms, and clips the gradient norm at 1.0 as its SAETrainer does.
After the 45 steps each side reports the variance explained on the held-out vectors,
1 - mean ||x - x^||^2 / mean ||x - mean(x)||^2 (the same formula on both sides), and the
held-out L0, so that speed is not bought with quality. These activations are used raw (residual
norm ~110), so sae-lens's small default decoder init (norm 0.1) costs it variance explained
this early in training; that is its default, kept, not a fault of the timing. The sae-lens side runs in
``--saelens-python`` as above; "ratio" = interplab / sae-lens samples per second; the JSON adds
the 1-minute load average because the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CONFIG = {
    "architecture": "relu+l1",
    "d_in": 128,
    "d_latent": 1024,
    "batch_size": 1024,
    "l1_coefficient": 1e-3,
    "lr": 1e-3,
    "steps": 150,
    "warmup_steps": 10,
    "threads": 2,
    "dtype": "float32",
}

SAELENS_SNIPPET = r"""
import json, sys, time, torch
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"]); torch.manual_seed(0)
import sae_lens
from sae_lens import StandardTrainingSAE, StandardTrainingSAEConfig
from sae_lens.saes.sae import TrainStepInput
sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=cfg["d_in"], d_sae=cfg["d_latent"],
                          l1_coefficient=cfg["l1_coefficient"], device="cpu", dtype="float32"))
opt = torch.optim.Adam(sae.parameters(), lr=cfg["lr"])
# the data and the batch draw of interplab's side (TensorSource, seed 0): the same batches
data = torch.randn(16 * cfg["batch_size"], cfg["d_in"], generator=torch.Generator().manual_seed(0))
def step(i):
    gen = torch.Generator().manual_seed(hash((0, i)) & 0x7FFF_FFFF_FFFF)
    x = data[torch.randint(0, data.shape[0], (cfg["batch_size"],), generator=gen)]
    out = sae.training_forward_pass(TrainStepInput(sae_in=x, coefficients={"l1": cfg["l1_coefficient"]},
                                                   dead_neuron_mask=None, n_training_steps=i,
                                                   is_logging_step=False))
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)  # as sae-lens's SAETrainer does
    opt.step(); opt.zero_grad()
for i in range(cfg["warmup_steps"]): step(i)
start = time.perf_counter()
for i in range(cfg["steps"]): step(i)
print(json.dumps({"samples_per_second": cfg["steps"] * cfg["batch_size"] / (time.perf_counter() - start),
                  "version": sae_lens.__version__}))
"""


REAL_CONFIG = {
    "architecture": "topk",
    "model": "smollm2-135m",
    "site": "L6.resid_post",
    "ctx": 64,
    "windows": 120,
    "held_out": 0.2,
    "d_in": 576,
    "d_latent": 4608,
    "k": 32,
    "batch_size": 512,
    "lr": 1e-3,
    "steps": 40,
    "warmup_steps": 5,
    "threads": 1,
    "dtype": "float32",
    "seed": 0,
}

# Shared by both sides (pasted into the sae-lens interpreter): batch i and the held-out measure.
REAL_COMMON = r"""
import torch
def real_batch(train, i, batch_size):
    gen = torch.Generator().manual_seed(i)
    return train[torch.randint(0, train.shape[0], (batch_size,), generator=gen)]
def held_measures(recon, latents, held):
    err = ((recon - held) ** 2).sum(-1).mean()
    var = ((held - held.mean(0)) ** 2).sum(-1).mean()
    return {"variance_explained": float(1 - err / var), "l0": float((latents > 0).float().sum(-1).mean())}
"""

SAELENS_REAL_SNIPPET = (
    REAL_COMMON
    + r"""
import json, sys, time
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"]); torch.manual_seed(cfg["seed"])
from safetensors.torch import load_file
import sae_lens
from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
from sae_lens.saes.sae import TrainStepInput
acts = load_file(sys.argv[2]); train, held = acts["train"], acts["held"]
sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=cfg["d_in"], d_sae=cfg["d_latent"], k=cfg["k"],
                                            device="cpu", dtype="float32"))
opt = torch.optim.Adam(sae.parameters(), lr=cfg["lr"])
def step(i):
    x = real_batch(train, i, cfg["batch_size"])
    out = sae.training_forward_pass(TrainStepInput(sae_in=x, coefficients={}, dead_neuron_mask=None,
                                                   n_training_steps=i, is_logging_step=False))
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)  # as sae-lens's SAETrainer does
    opt.step(); opt.zero_grad()
for i in range(cfg["warmup_steps"]): step(i)
start = time.perf_counter()
for i in range(cfg["warmup_steps"], cfg["warmup_steps"] + cfg["steps"]): step(i)
seconds = time.perf_counter() - start
with torch.no_grad():
    latents = sae.encode(held)
    result = held_measures(sae.decode(latents), latents, held)
print(json.dumps({"samples_per_second": cfg["steps"] * cfg["batch_size"] / seconds,
                  "version": sae_lens.__version__, **result}))
"""
)


def interplab_samples_per_second() -> float:
    import torch

    from interplab.methods.dictionaries import DictionaryConfig, TensorSource, train_dictionary

    torch.set_num_threads(CONFIG["threads"])
    data = torch.randn(
        16 * CONFIG["batch_size"], CONFIG["d_in"], generator=torch.Generator().manual_seed(0)
    )
    cfg = DictionaryConfig(
        d_in=CONFIG["d_in"],
        d_latent=CONFIG["d_latent"],
        activation="relu",
        l1_coefficient=CONFIG["l1_coefficient"],
        lr=CONFIG["lr"],
        batch_size=CONFIG["batch_size"],
        steps=CONFIG["warmup_steps"],
    )
    train_dictionary(TensorSource(data), cfg)  # warm-up
    cfg = DictionaryConfig(
        **{**cfg.to_json(), "steps": CONFIG["steps"], "log_every": CONFIG["steps"]}
    )
    start = time.perf_counter()
    train_dictionary(TensorSource(data), cfg)
    return CONFIG["steps"] * CONFIG["batch_size"] / (time.perf_counter() - start)


def saelens_samples_per_second(python: str) -> dict:
    out = subprocess.run(
        [python, "-c", SAELENS_SNIPPET, json.dumps(CONFIG)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def interplab_real(path: str) -> dict:
    import time

    import torch
    from safetensors.torch import load_file

    from interplab.methods.dictionaries import DictionaryConfig, train_dictionary

    c = REAL_CONFIG
    torch.set_num_threads(c["threads"])
    shared: dict = {}
    exec(REAL_COMMON, shared)  # the same batch and measure code the sae-lens side runs
    acts = load_file(path)
    train, held = acts["train"], acts["held"]

    class Rows:  # an ActivationSource serving the same batches as the sae-lens side
        d_in = d_out = train.shape[1]

        def batch(self, step: int, batch_size: int):
            x = shared["real_batch"](train, step, batch_size)
            return x, x

    total = c["warmup_steps"] + c["steps"]
    cfg = DictionaryConfig(
        d_in=c["d_in"],
        d_latent=c["d_latent"],
        activation="topk",
        k=c["k"],
        lr=c["lr"],
        batch_size=c["batch_size"],
        steps=total,
        log_every=total,
        seed=c["seed"],
    )
    marks: dict[int, float] = {}

    def mark(done: int, _row) -> None:
        if done in (c["warmup_steps"], total):
            marks[done] = time.perf_counter()

    trained = train_dictionary(Rows(), cfg, callback=mark)
    seconds = marks[total] - marks[c["warmup_steps"]]
    with torch.no_grad():
        latents = trained.dictionary.encode(held)
        measures = shared["held_measures"](trained.dictionary.decode(latents), latents, held)
    return {"samples_per_second": c["steps"] * c["batch_size"] / seconds, **measures}


def saelens_real(python: str, path: str) -> dict:
    out = subprocess.run(
        [python, "-c", SAELENS_REAL_SNIPPET, json.dumps(REAL_CONFIG), path],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main_real(python: str, repeats: int) -> dict:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _smollm2_acts import activations_file

    c = REAL_CONFIG
    path = str(
        activations_file(
            model=c["model"],
            site=c["site"],
            ctx=c["ctx"],
            windows=c["windows"],
            held_out=c["held_out"],
            seed=c["seed"],
        )
    )
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        shapes = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    ours, theirs, note = [], [], None
    if not os.path.exists(python):
        note = (
            f"no sae-lens interpreter at {python}; install sae-lens in a separate venv "
            "(never the project's) and pass --saelens-python"
        )
    for _ in range(repeats):
        ours.append(interplab_real(path))
        if note is None:
            try:
                theirs.append(saelens_real(python, path))
            except Exception as exc:  # report why, do not fail the benchmark
                note = f"sae-lens run failed: {exc}"

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    result = {
        "benchmark": "sae_throughput",
        "case": "real",
        "samples_per_second": round(med(ours, "samples_per_second")),
        "variance_explained": round(med(ours, "variance_explained"), 4),
        "l0": round(med(ours, "l0"), 2),
        "config": c,
        "data": {
            "train_vectors": shapes["train"][0],
            "held_out_vectors": shapes["held"][0],
            "file": path,
        },
        "reference": None,
        "ratio": None,
        "runs_samples_per_second": {
            "interplab": [round(r["samples_per_second"]) for r in ours],
            "sae-lens": [round(r["samples_per_second"]) for r in theirs],
        },
    }
    if theirs and note is None:
        ref = med(theirs, "samples_per_second")
        result.update(
            reference={
                "name": f"sae-lens {theirs[0]['version']} TopKTrainingSAE",
                "samples_per_second": round(ref),
                "variance_explained": round(med(theirs, "variance_explained"), 4),
                "l0": round(med(theirs, "l0"), 2),
            },
            ratio=round(med(ours, "samples_per_second") / ref, 3),
        )
    else:
        result["reference_note"] = note
    result["load_average_1min"] = round(os.getloadavg()[0], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saelens-python", default="/tmp/saelens-venv/bin/python")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--case",
        choices=("synthetic", "real"),
        default="synthetic",
        help="synthetic ReLU+L1 activations (default) or SmolLM2-135M activations, TopK",
    )
    args = parser.parse_args()
    if args.case == "real":
        print(json.dumps(main_real(args.saelens_python, args.repeats)))
        return
    ours, theirs, note = [], [], None
    have_ref = os.path.exists(args.saelens_python)
    if not have_ref:
        note = (
            f"no sae-lens interpreter at {args.saelens_python}; install sae-lens in a separate venv "
            "(never the project's) and pass --saelens-python"
        )
    for _ in range(args.repeats):
        ours.append(interplab_samples_per_second())
        if have_ref and note is None:
            try:
                theirs.append(saelens_samples_per_second(args.saelens_python))
            except Exception as exc:  # report why, do not fail the benchmark
                note = f"sae-lens run failed: {exc}"
    result = {
        "benchmark": "sae_throughput",
        "case": "synthetic",
        "samples_per_second": round(statistics.median(ours)),
        "config": CONFIG,
        "reference": None,
        "ratio": None,
        "runs_samples_per_second": {
            "interplab": [round(s) for s in ours],
            "sae-lens": [round(r["samples_per_second"]) for r in theirs],
        },
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    if theirs and note is None:
        ref = statistics.median(r["samples_per_second"] for r in theirs)
        result.update(
            reference={
                "name": f"sae-lens {theirs[0]['version']} StandardTrainingSAE",
                "samples_per_second": round(ref),
            },
            ratio=round(statistics.median(ours) / ref, 3),
        )
    else:
        result["reference_note"] = note
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
