"""Perturbed organisms: ``perturbed-<seed>-<i>`` is the compiled generated organism
``generated-<seed>-<i>`` (:mod:`interplab.zoo.generated`) whose weights were perturbed by seeded
Gaussian noise and then fine-tuned back to its RASP program. Its circuit is still the planted
one, but its weights off the compiled nonzero pattern are no longer zero, so baselines that rank
edges by weight or activation norm are measured on weights where a zero does not mark every edge
outside the circuit.

Recipe (:func:`perturb_and_finetune`), all seeded by ``seed``:

1. to every weight matrix ``W`` (every ``W_*`` parameter; biases are left as compiled) add
   ``N(0, (NOISE * rms_nonzero(W))^2)`` noise, where ``rms_nonzero`` is the RMS of ``W``'s
   nonzero entries (:func:`perturb`), so the zeros off the designed circuit become
   nonzero at a scale set by that matrix's own circuit weights (a matrix the program leaves all
   zero takes the median scale of the model's matrices: :func:`matrix_scales`);
2. fine-tune every parameter with Adam (one torch thread, full batch) on one half of the inputs
   of full length (:func:`~interplab.compile.generate.split_inputs`, seed ``seed``: the half the
   scoring pairs come from), against the RASP evaluator's outputs: cross-entropy per position,
   plus hinges that keep the decode threshold meaningful (a compiled model decodes a value only
   when its logit exceeds 0.5: the target logit is pushed to at least 1, and at a position where
   the program's output is ``None`` every logit to at most 0). Training stops when every output
   on the training half decodes right, or after ``STEPS`` steps;
3. exact-match accuracy on the other half (the truth's half, never trained on) must reach
   :data:`MIN_ACCURACY`, else :class:`~interplab.errors.VerificationError` with the numbers.

The organism (:func:`interplab.zoo.circuit_organisms.perturbed_organism`) is the compiled sibling's contract
(:func:`interplab.zoo.circuit_organisms._rasp_organism`) with the perturbed model: the
per-ablation truth is derived in the RASP evaluator on the truth half and checked by single-edge
ablation in the *perturbed* weights. That check (:mod:`interplab.compile.truth_check`) ablates
only the designed edges, because in compiled weights an edge outside the design carries nothing;
here it does carry something, so every edge of the full graph outside the design is also ablated
alone on the same pairs, and an ablation under which one of them changes an output has its truth
refused (recorded with :func:`~interplab.zoo.circuit_organisms.release`).

Eligibility (:func:`ineligible`) is a rule on the program only: its output must be categorical.
A numerical output is decoded as a raw float and checked to 1e-4 (agreement) and 1e-3 (the
edge check), a tolerance that noise-perturbed, gradient-trained weights do not meet by design.

Measured (seed 0, NOISE 0.02, first 20 eligible programs, 500 steps): 3 give an organism
(``perturbed-0-4``, ``-0-7``, ``-0-12``; 8 verified per-ablation truths, ``zero`` of ``-0-12``
refused), 12 miss held-out accuracy 0.95 (e.g. selector-width programs, whose compiled MLP
reads an attention fraction through steep ramps: on ``generated-0-5`` noise 0.001 alone breaks
99% of the training outputs, and fine-tuning does not bring them back within the budget) and 5 have every per-ablation truth refused in the perturbed weights. At
larger noise fewer truths survive (:data:`NOISE_RULE`): the compiled truth holds in weights only
near the compiled point.

Weights are cached under ``cache_dir()/perturbed/<name>-s<seed>/`` (safetensors + sidecar, via
:func:`interplab.models.io.save_model`) with a fingerprint of the recipe, the compiled weights and
the program's behaviour, so a changed recipe retrains; a build holds the entry's lock.

    from interplab.zoo.circuit_organisms import perturbed_organism
    org = perturbed_organism("perturbed-0-4")   # an Organism with a verified CircuitTruth
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from typing import Any

import torch

from interplab._config import cache_dir
from interplab.errors import ConfigError, VerificationError, WeightsError
from interplab.models import weights_cache
from interplab.models.io import atomic_write_text, load_model, save_model
from interplab.models.transformer import HookedTransformer
from interplab.zoo.generated import parse_seed_index
from interplab.zoo.registry import ZooEntry

_NAME = re.compile(r"^perturbed-(\d+)-(\d+)$")
_log = logging.getLogger("interplab.zoo")

#: noise scale, as a fraction of each weight matrix's RMS over its nonzero entries (see
#: :func:`perturb`; how it was chosen: the report of issue 25 and :data:`NOISE_RULE`)
NOISE = 0.02
#: most Adam steps of the fine-tune (full batch); it stops earlier when the training half is right
STEPS = 300
#: Adam step size relative to each tensor's own scale (its RMS over nonzero entries)
LR = 1e-2
#: held-out exact-match accuracy a perturbed model must reach
MIN_ACCURACY = 0.95
#: bump when the recipe changes in a way the fingerprint's settings do not show
RECIPE_VERSION = 3
NOISE_RULE = (
    "the largest noise in {0.02, 0.05, 0.1} x rms_nonzero at which at least 3 of the first 10 "
    "eligible programs of seed 0 give an organism (held-out accuracy >= 0.95 and at least one "
    "per-ablation truth verified in the perturbed weights); measured: 3 (0.02) and 2 (0.05) "
    "of 10, and 0 at 0.1 (that one with recipe version 1, all-zero matrices left unperturbed)"
)
STEPS_RULE = (
    "the most whole hundreds of full-batch steps that fit 20 s of one core on the largest of the "
    "first 20 eligible programs of seed 0 (512 training inputs, ~0.06 s a step); at NOISE every "
    "build that reached held-out accuracy 0.95 stopped within 41 steps (441 at noise 0.05)"
)
FAILED_NAME = "perturbed_failed.json"


# ------------------------------------------------------------------------------ names and rule
def parse_name(name: str) -> tuple[int, int]:
    """``perturbed-<seed>-<i>`` -> (seed, i); UnknownNameError (one line) otherwise."""
    return parse_seed_index(name, "perturbed", "perturbed organism", "perturbed-0-1")


def sibling(name: str) -> str:
    """The compiled sibling: ``perturbed-0-1`` -> ``generated-0-1``."""
    seed, i = parse_name(name)
    return f"generated-{seed}-{i}"


def _program(name: str) -> Any:
    """The sibling's RASP program, drawn without compiling it."""
    from interplab.compile.generate import draw
    from interplab.zoo.generated import accepted_candidates

    seed, i = parse_name(name)
    if i > 100_000:
        raise ConfigError(f"{name}: index {i} is too large (at most 100000 per seed)")
    return draw(seed, accepted_candidates(seed, i + 1)[i]).program


def ineligible(name: str) -> str | None:
    """Why ``name`` (``perturbed-<s>-<i>`` or its sibling ``generated-<s>-<i>``) gets no
    perturbed organism under the rule (a categorical output), or None. Decided on the program
    alone, before any training."""
    if name.startswith("generated-"):
        name = "perturbed-" + name.removeprefix("generated-")
    return ineligible_program(_program(name))


def ineligible_program(program: Any) -> str | None:
    """The rule itself, on a RASP program: why it is ineligible (a numerical output), or None."""
    if program.is_numerical:
        return (
            "numerical output (decoded as a raw float and checked to 1e-4; a perturbed, "
            "fine-tuned model is not held to that)"
        )
    return None


def perturbed_names(seed: int = 0, k: int = 10, scan: int = 200) -> list[str]:
    """The first ``k`` eligible ``perturbed-<seed>-<i>`` by index among the first ``scan``."""
    from interplab.zoo.generated import accepted_candidates

    if k < 0:
        raise ConfigError(f"k must be >= 0, got {k}")
    names: list[str] = []
    for i in range(scan):
        if len(names) == k:
            break
        if i % 40 == 0:
            accepted_candidates(seed, min(i + 40, scan))
        if ineligible(f"perturbed-{seed}-{i}") is None:
            names.append(f"perturbed-{seed}-{i}")
    return names


# ------------------------------------------------------------------------------------- noise
def rms_nonzero(w: torch.Tensor) -> float:
    """RMS of the nonzero entries of ``w`` (0.0 when every entry is zero)."""
    nz = w[w != 0]
    return float(nz.double().pow(2).mean().sqrt()) if nz.numel() else 0.0


def is_matrix(key: str, w: torch.Tensor) -> bool:
    """A weight matrix: a floating tensor of two or more axes named ``W_*`` (biases, ``b_*``,
    are left as compiled even where they have two axes, e.g. ``attn.b_Q`` [heads, d_head])."""
    return key.rsplit(".", 1)[-1].startswith("W_") and w.dim() >= 2 and w.is_floating_point()


def matrix_scales(state_dict: dict[str, torch.Tensor]) -> dict[str, float]:
    """The scale of each weight matrix (:func:`is_matrix`): its RMS over its nonzero entries; a
    matrix that is all zero (a head or MLP the program leaves unused) takes the median of the
    other matrices' scales (most compiled matrices have scale 1; queries and MLP inputs are
    sharpened to tens or hundreds, a scale an unused component has no reason to take)."""
    mats = {k: w for k, w in state_dict.items() if is_matrix(k, w)}
    own = {k: rms_nonzero(w) for k, w in mats.items()}
    nonzero = sorted(v for v in own.values() if v > 0)
    median = nonzero[len(nonzero) // 2] if nonzero else 0.0
    return {k: v if v > 0 else median for k, v in own.items()}


def perturb(
    state_dict: dict[str, torch.Tensor], noise: float, seed: int
) -> dict[str, torch.Tensor]:
    """A copy of ``state_dict`` with ``N(0, (noise * scale(W))^2)`` added to every weight matrix
    (:func:`is_matrix`; biases unchanged), where ``scale(W)`` is
    :func:`rms_nonzero` of ``W`` (an all-zero matrix borrows one: :func:`matrix_scales`), drawn
    from one generator seeded with ``seed`` in the state dict's key order."""
    if noise < 0:
        raise ConfigError(f"noise must be >= 0, got {noise}")
    gen = torch.Generator().manual_seed(seed)
    scales = matrix_scales(state_dict)
    out = {}
    for key, w in state_dict.items():
        w = w.detach().clone()
        if key in scales:
            w += torch.randn(w.shape, generator=gen, dtype=w.dtype) * (noise * scales[key])
        out[key] = w
    return out


def offcircuit_share(compiled: dict[str, torch.Tensor], weights: dict[str, torch.Tensor]) -> float:
    """Share of the squared weight norm of ``weights`` (every weight matrix, :func:`is_matrix`) that
    lies on entries where the compiled weights are exactly zero: 0.0 for compiled weights."""
    off = total = 0.0
    for key, w in weights.items():
        if not is_matrix(key, w):
            continue
        sq = w.detach().double().pow(2)
        total += float(sq.sum())
        off += float(sq[compiled[key] == 0].sum())
    return off / total if total else 0.0


def relative_change(compiled: dict[str, torch.Tensor], weights: dict[str, torch.Tensor]) -> float:
    """||W - W_compiled|| / ||W_compiled|| over every parameter."""
    diff = sum(float((weights[k].double() - v.double()).pow(2).sum()) for k, v in compiled.items())
    base = sum(float(v.double().pow(2).sum()) for v in compiled.values())
    return (diff / base) ** 0.5 if base else 0.0


# ---------------------------------------------------------------------------------- training
def _targets(model: Any, inputs: list[tuple]) -> tuple[torch.Tensor, list[list[Any]]]:
    """Class index per (input, position) from the RASP evaluator (-1 where the output is None),
    and the outputs themselves."""
    from interplab.compile import rasp

    index = {(type(v).__name__, v): i for i, v in enumerate(model.output_values)}
    outs, rows = [], []
    for x in inputs:
        out = rasp.evaluate(model.program, list(x))
        row = []
        for v in out:
            if v is None:
                row.append(-1)
            elif (type(v).__name__, v) in index:
                row.append(index[(type(v).__name__, v)])
            else:
                raise ConfigError(
                    f"{model.name}: the program outputs {v!r}, which is not among the compiled "
                    f"output values {list(model.output_values)}"
                )
        outs.append(list(out))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long), outs


def _accuracy(model: Any, logits: torch.Tensor, outs: list[list[Any]]) -> float:
    """Exact match (every position) of decoded ``logits`` with the program's outputs."""
    from interplab.compile.ground_truth import values_equal

    decoded = model.decode(logits)
    return sum(values_equal(o, d) for o, d in zip(outs, decoded)) / max(1, len(outs))


def _loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy where the output has a value, plus the decode-threshold hinges."""
    z = logits[:, 1:]
    has = target >= 0
    zero = z.sum() * 0.0
    loss = zero
    if has.any():
        zv, tv = z[has], target[has]
        loss = loss + torch.nn.functional.cross_entropy(zv, tv)
        loss = loss + torch.relu(1.0 - zv.gather(1, tv[:, None])).pow(2).mean()
    if (~has).any():
        loss = loss + torch.relu(z[~has]).pow(2).sum(-1).mean()
    return loss


def _finetune(
    model: Any, train: list[tuple], steps: int, lr: float, seed: int
) -> tuple[int, float]:
    """Fine-tune ``model`` in place on ``train``; (steps run, training accuracy at the end)."""
    target, outs = _targets(model, train)
    tokens = model.encode(train)
    module = model.model
    params = list(module.parameters())
    torch.manual_seed(seed)
    # compiled matrices differ in scale by two orders of magnitude (attention queries ~100, the
    # rest ~1): each tensor's step size is ``lr`` times its own scale, as its noise is
    groups = [{"params": [p], "lr": lr * (rms_nonzero(p.detach()) or 1.0)} for p in params]
    opt = torch.optim.Adam(groups)
    module.train()
    run = 0
    acc = 0.0
    for step in range(steps + 1):
        logits = module(tokens)
        acc = _accuracy(model, logits, outs)
        if acc == 1.0 or step == steps:
            break
        opt.zero_grad()
        _loss(logits, target).backward()
        opt.step()
        run += 1
    module.eval()
    for p in params:
        p.grad = None
    return run, acc


def _as_compiled(sib: Any, state: dict[str, torch.Tensor], name: str) -> Any:
    """A CompiledModel with the sibling's program, truth and decoding and ``state`` as weights."""
    from interplab.compile.compiled import CompiledModel

    return CompiledModel(
        sib.cfg, state, sib.ground_truth, sib.output_values, program=sib.program, name=name
    )


def perturb_and_finetune(
    name: str, seed: int = 0, *, noise: float = NOISE, steps: int = STEPS
) -> tuple[HookedTransformer, dict]:
    """Build ``perturbed-<s>-<i>`` (not cached; see :func:`load_perturbed`): the compiled
    sibling's weights perturbed (:func:`perturb`, seed ``seed``) and fine-tuned back to the
    program on the scoring half of :func:`~interplab.compile.generate.split_inputs` (seed
    ``seed``). Returns (a CompiledModel, its report). Raises VerificationError when exact-match
    accuracy on the held-out half is below :data:`MIN_ACCURACY`, ConfigError when the program
    is ineligible (:func:`ineligible`)."""
    from interplab.compile.generate import split_inputs
    from interplab.zoo.generated import load_generated

    why = ineligible(name)
    if why is not None:
        raise ConfigError(f"{name}: {sibling(name)} gets no perturbed organism ({why})")
    if steps < 0:
        raise ConfigError(f"steps must be >= 0, got {steps}")
    sib = load_generated(sibling(name))
    compiled = {k: v.detach().clone() for k, v in sib.model.model.state_dict().items()}
    model = _as_compiled(sib.model, perturb(compiled, noise, seed), name)
    train, held = split_inputs(sib.spec, seed)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.process_time()
        wall = time.perf_counter()
        steps_run, train_acc = _finetune(model, train, steps, LR, seed)
        seconds = time.perf_counter() - wall
        cpu = time.process_time() - start
        with torch.no_grad():
            _, outs = _targets(model, held)
            held_acc = _accuracy(model, model.model(model.encode(held)), outs)
    finally:
        torch.set_num_threads(before)
    state = model.model.state_dict()
    report = {
        "noise": noise,
        "steps": steps,
        "lr": LR,
        "steps_run": steps_run,
        "train_seconds": round(seconds, 3),
        "train_cpu_seconds": round(cpu, 3),
        "task_accuracy_train": train_acc,
        "task_accuracy_heldout": held_acc,
        "n_train": len(train),
        "n_heldout": len(held),
        "weight_rel_change": relative_change(compiled, state),
        "offcircuit_weight_share": offcircuit_share(compiled, state),
    }
    if held_acc < MIN_ACCURACY:
        raise VerificationError(
            f"{name} (seed {seed}): after {steps_run} fine-tuning steps (noise {noise}) its "
            f"exact-match accuracy is {held_acc:.3f} on the {len(held)} held-out inputs "
            f"(training half {train_acc:.3f} on {len(train)}); it needs {MIN_ACCURACY}"
        )
    return model, report


# ------------------------------------------------------------------------------------ caching
def organism_dir(name: str, seed: int) -> Any:
    """``cache_dir()/perturbed/<name>-s<seed>``."""
    return cache_dir() / "perturbed" / f"{name}-s{seed}"


def fingerprint(name: str, seed: int, noise: float, steps: int) -> str:
    """What a cached perturbed model was built from: the recipe's settings and version, the
    compiled sibling's weights and the program's behaviour."""
    from interplab.zoo.generated import load_generated

    sib = load_generated(sibling(name))
    h = hashlib.sha256()
    for key, v in sorted(sib.model.model.state_dict().items()):
        h.update(key.encode())
        h.update(v.detach().contiguous().numpy().tobytes())
    return weights_cache.digest(
        {
            "version": RECIPE_VERSION,
            "name": name,
            "seed": seed,
            "noise": noise,
            "steps": steps,
            "lr": LR,
            "min_accuracy": MIN_ACCURACY,
            "behaviour": sib.spec.behaviour,
            "compiled": h.hexdigest()[:16],
        }
    )


def load_perturbed(
    name: str,
    seed: int = 0,
    *,
    noise: float | None = None,
    steps: int | None = None,
    retrain: bool = False,
) -> tuple[Any, dict]:
    """The perturbed model and its report (``noise``/``steps`` default to :data:`NOISE` and
    :data:`STEPS`), built on first use and cached (under the entry's lock). A build that fails
    verification is recorded beside the entry and raised again without retraining until the
    fingerprint changes or ``retrain=True``."""
    noise = NOISE if noise is None else noise
    steps = STEPS if steps is None else steps
    parse_name(name)
    directory = organism_dir(name, seed)
    with weights_cache.entry_lock(directory):
        return _load_entry(name, seed, noise, steps, retrain)


def _load_entry(name: str, seed: int, noise: float, steps: int, retrain: bool) -> tuple[Any, dict]:
    from interplab.zoo.generated import load_generated

    directory = organism_dir(name, seed)
    fp = fingerprint(name, seed, noise, steps)
    failed = directory / FAILED_NAME
    if failed.is_file() and not retrain:
        stored = json.loads(failed.read_text("utf-8"))
        if stored.get("fingerprint") == fp:
            raise VerificationError(stored["reason"] + f" (recorded in {failed})")
    if (directory / "model.json").is_file() and not retrain:
        try:
            hooked, extra = load_model(directory, name=name)
            data = extra.get("perturbed", {})
            if data.get("fingerprint") == fp:
                sib = load_generated(sibling(name)).model
                return _as_compiled(sib, hooked.model.state_dict(), name), dict(data["report"])
        except (WeightsError, KeyError, TypeError) as exc:
            _log.warning(
                "rebuilding perturbed organism %s: its cache in %s is unusable (%s)",
                name,
                directory,
                str(exc).splitlines()[0],
            )
    try:
        model, report = perturb_and_finetune(name, seed, noise=noise, steps=steps)
    except VerificationError as exc:
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(failed, json.dumps({"fingerprint": fp, "reason": str(exc)}))
        raise
    save_model(directory, model, extra={"perturbed": {"fingerprint": fp, "report": report}})
    if failed.is_file():
        failed.unlink()
    return model, report


# ----------------------------------------------------------------------------------- organism
def offcircuit_problems(model: Any, pairs: list, ablations: Any) -> dict[str, list[str]]:
    """Every edge of the full graph outside the designed circuit whose ablation alone changes a
    decoded output on ``pairs``, per ablation in ``ablations`` (the check of
    :mod:`interplab.compile.edge_measure`, over the edges the compiled check leaves out)."""
    from interplab.compile.assemble import Weights
    from interplab.compile.edge_measure import measure_edge_ablations
    from interplab.core.circuit import full_graph

    cfg = model.cfg
    designed = set(model.ground_truth.designed.edges)
    edges = sorted(set(full_graph(cfg.n_layers, cfg.n_heads).edges) - designed)
    weights = Weights(cfg, model.model.state_dict(), {}, model.output_values)
    rows = [(c, x) for c, x in pairs if len(c) == len(x) and len(c) > 0]
    with torch.no_grad():
        flags = measure_edge_ablations(weights, model.ground_truth.vocab, rows, edges)
    return {
        a: [
            f"{e} under {a}: outside the designed circuit, but ablating it alone changes the "
            f"output on some of the {len(rows)} pairs"
            for e in edges
            if a in flags[e]
        ]
        for a in ablations
    }


# ----------------------------------------------------------------------------------- registry
def _entry(name: str) -> ZooEntry:
    return ZooEntry(
        name,
        "trained",
        f"{sibling(name)} with noise-perturbed weights fine-tuned back to its program",
        lambda: load_perturbed(name)[0],
        frozenset({"trained", "circuits", "perturbed", "generated"}),
        family=__name__,
    )


def entries() -> list[ZooEntry]:
    """None listed: the family follows the unbounded generated family; :func:`resolve` builds
    entries by name."""
    return []


def resolve(name: str) -> ZooEntry | None:
    """The registry entry for ``perturbed-<seed>-<i>`` (nothing is built until used); None for
    any other name."""
    return _entry(name) if _NAME.match(name) else None


__all__ = [
    "MIN_ACCURACY",
    "NOISE",
    "STEPS",
    "entries",
    "ineligible",
    "ineligible_program",
    "is_matrix",
    "load_perturbed",
    "matrix_scales",
    "offcircuit_problems",
    "offcircuit_share",
    "parse_name",
    "perturb",
    "perturb_and_finetune",
    "perturbed_names",
    "relative_change",
    "resolve",
    "rms_nonzero",
    "sibling",
]
