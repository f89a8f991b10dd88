"""Training throughput of a sparse autoencoder on CPU, in samples (activation vectors) per second.

Config (fixed): ReLU SAE with L1 penalty, d_in 128, d_latent 1024, batch 1024, Adam lr 1e-3,
unit-norm decoder, 150 timed steps after 10 warm-up steps, torch threads = 2, float32.
Activations come from an in-memory tensor of synthetic-feature activations, so the number
measures the training step, not data generation.

Prints one JSON line: {"benchmark": "sae_throughput", "samples_per_second": S, "config": {...},
"reference": ..., "ratio": ...}. When ``--saelens-python PATH`` (default
/tmp/saelens-venv/bin/python, if it exists) has sae-lens installed, the same config is timed
with sae-lens's StandardTrainingSAE in that interpreter, each step as sae-lens's SAETrainer
does it (forward, MSE + decoder-norm-weighted L1, backward, grad-norm clip, Adam step; sae-lens
keeps the decoder norm in the loss where interplab projects and renormalizes it) and "ratio" = interplab / sae-lens samples per second. Otherwise "reference" is null
and "reference_note" says why. The two runs are interleaved (A, B, A, B) to share machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CONFIG = {"architecture": "relu+l1", "d_in": 128, "d_latent": 1024, "batch_size": 1024,
          "l1_coefficient": 1e-3, "lr": 1e-3, "steps": 150, "warmup_steps": 10, "threads": 2,
          "dtype": "float32"}

SAELENS_SNIPPET = r"""
import json, sys, time, torch
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"]); torch.manual_seed(0)
from sae_lens import StandardTrainingSAE, StandardTrainingSAEConfig
from sae_lens.saes.sae import TrainStepInput
sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=cfg["d_in"], d_sae=cfg["d_latent"],
                          l1_coefficient=cfg["l1_coefficient"], device="cpu", dtype="float32"))
opt = torch.optim.Adam(sae.parameters(), lr=cfg["lr"])
data = torch.randn(16 * cfg["batch_size"], cfg["d_in"])
def step(i):
    x = data[torch.randint(0, data.shape[0], (cfg["batch_size"],))]
    out = sae.training_forward_pass(TrainStepInput(sae_in=x, coefficients={"l1": cfg["l1_coefficient"]},
                                                   dead_neuron_mask=None, n_training_steps=i,
                                                   is_logging_step=False))
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)  # as sae-lens's SAETrainer does
    opt.step(); opt.zero_grad()
for i in range(cfg["warmup_steps"]): step(i)
start = time.perf_counter()
for i in range(cfg["steps"]): step(i)
print(json.dumps({"samples_per_second": cfg["steps"] * cfg["batch_size"] / (time.perf_counter() - start)}))
"""


def interplab_samples_per_second() -> float:
    import torch

    from interplab.methods.dictionaries import DictionaryConfig, TensorSource, train_dictionary

    torch.set_num_threads(CONFIG["threads"])
    data = torch.randn(16 * CONFIG["batch_size"], CONFIG["d_in"], generator=torch.Generator().manual_seed(0))
    cfg = DictionaryConfig(d_in=CONFIG["d_in"], d_latent=CONFIG["d_latent"], activation="relu",
                           l1_coefficient=CONFIG["l1_coefficient"], lr=CONFIG["lr"],
                           batch_size=CONFIG["batch_size"], steps=CONFIG["warmup_steps"])
    train_dictionary(TensorSource(data), cfg)  # warm-up
    cfg = DictionaryConfig(**{**cfg.to_json(), "steps": CONFIG["steps"], "log_every": CONFIG["steps"]})
    start = time.perf_counter()
    train_dictionary(TensorSource(data), cfg)
    return CONFIG["steps"] * CONFIG["batch_size"] / (time.perf_counter() - start)


def saelens_samples_per_second(python: str) -> float:
    out = subprocess.run([python, "-c", SAELENS_SNIPPET, json.dumps(CONFIG)], capture_output=True,
                         text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed")
    return json.loads(out.stdout.strip().splitlines()[-1])["samples_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saelens-python", default="/tmp/saelens-venv/bin/python")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    ours, theirs, note = [], [], None
    have_ref = os.path.exists(args.saelens_python)
    if not have_ref:
        note = (f"no sae-lens interpreter at {args.saelens_python}; install sae-lens in a separate venv "
                "(never the project's) and pass --saelens-python")
    for _ in range(args.repeats):
        ours.append(interplab_samples_per_second())
        if have_ref and note is None:
            try:
                theirs.append(saelens_samples_per_second(args.saelens_python))
            except Exception as exc:  # report why, do not fail the benchmark
                note = f"sae-lens run failed: {exc}"
    result = {"benchmark": "sae_throughput", "samples_per_second": round(statistics.median(ours)),
              "config": CONFIG, "reference": None, "ratio": None,
              "load_average_1min": round(os.getloadavg()[0], 2)}
    if theirs and note is None:
        ref = statistics.median(theirs)
        result.update(reference={"name": "sae-lens StandardTrainingSAE", "samples_per_second": round(ref)},
                      ratio=round(statistics.median(ours) / ref, 3))
    else:
        result["reference_note"] = note
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
