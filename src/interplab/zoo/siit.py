"""SIIT organisms: small native transformers *trained* (from random init) to implement a RASP
program's mechanism, with strict interchange-intervention training (InterpBench's recipe).

Each :class:`SIITSpec` names a program, its inputs (fixed length, small vocabulary), and an
alignment: variable label -> the heads/MLPs that must compute it. Training minimises

    task loss     CE of the model's output vs the program's output on the base input
    IIT loss      CE of the model with the aligned components' outputs taken from a source
                  input vs the program's output with that variable taken from the source
    strict loss   CE of the model with random non-circuit components resampled from the source
                  vs the program's output on the base (pushes them to be irrelevant)

An organism is accepted only if, on held-out (base, source) pairs, IIA ≥ ``min_iia`` for every
aligned variable; the measured numbers go into the ground-truth JSON beside the weights under
``cache_dir()/siit/<name>-s<seed>/``. Tokens: 0 = BOS (position 0), ``1 + i`` = ``vocab[i]``;
outputs are scored at positions 1..length, one class per output value.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from interplab._config import cache_dir
from interplab.compile import rasp
from interplab.compile.dataflow_truth import alignment_reads
from interplab.core.circuit import Circuit, Node
from interplab.core.interventions import Patch
from interplab.core.threads import one_thread
from interplab.errors import VerificationError, WeightsError, unknown_name
from interplab.models import weights_cache
from interplab.models.config import TransformerConfig
from interplab.models.io import atomic_write_text, load_model, save_model
from interplab.models.transformer import HookedTransformer
from interplab.zoo.registry import ZooEntry
from interplab.zoo.siit_specs import (  # noqa: F401 (re-exported: the public path)
    SPECS,
    UNVERIFIED,
    SIITSpec,
    program_library,
    verified_names,
)

Tensor = torch.Tensor
GT_NAME = "siit_ground_truth.json"
#: 2: one batched forward per step, 4,096 training pairs, optional held-out inputs
FORMAT_VERSION = 2
#: (base, source) pairs drawn for training and for the held-out verification
N_TRAIN_PAIRS = 4096
N_TEST_PAIRS = 1024


# --------------------------------------------------------------------------- organism
@dataclass(frozen=True, eq=False)
class SIITOrganism:
    """A verified SIIT-trained model and its ground truth.

    Attributes:
        name, spec, model (HookedTransformer), program (RASP), circuit (true Circuit: the aligned
        components, fed by the embeddings and feeding the logits), output_values (class i ->
        value), verification ({"iia": {var: float}, "task_accuracy", "strict_accuracy",
        "train_seconds", "n_heldout_pairs"}), inputs (every program input).
    """

    name: str
    spec: SIITSpec
    model: HookedTransformer
    program: rasp.SOp
    circuit: Circuit
    output_values: tuple[Any, ...]
    verification: Mapping[str, Any] = field(default_factory=dict)

    @property
    def inputs(self) -> list[tuple[Any, ...]]:
        return self.spec.all_inputs()

    def encode(self, inputs: Sequence[Sequence[Any]]) -> Tensor:
        """Inputs (values) -> int64 tokens [b, 1 + length] with BOS at position 0."""
        index = {v: i + 1 for i, v in enumerate(self.spec.vocab)}
        return torch.tensor([[0] + [index[v] for v in xs] for xs in inputs], dtype=torch.long)

    def decode(self, logits: Tensor) -> list[list[Any]]:
        """Logits [b, 1 + length, n_out] -> output values at positions 1.. (argmax class)."""
        ids = logits[:, 1:].argmax(-1).tolist()
        return [[self.output_values[i] for i in row] for row in ids]

    def labels(self, outputs: Sequence[Sequence[Any]]) -> Tensor:
        """Output values -> class ids [b, length]."""
        index = {repr(v): i for i, v in enumerate(self.output_values)}
        return torch.tensor([[index[repr(v)] for v in row] for row in outputs], dtype=torch.long)

    def hypothesis(self) -> Any:
        """The ground-truth causal hypothesis (node-level alignment), a
        :class:`~interplab.methods.causal.CausalHypothesis`."""
        from interplab.methods.causal.hypothesis import from_alignment, model_nodes

        align = {v: self.spec.nodes(v) for v in self.spec.alignment}
        return from_alignment(
            f"ground truth ({self.name})",
            self.program,
            align,
            model_nodes(self.model.cfg),
            self.encode,
            self.decode,
            description="the SIIT training alignment",
        )


def true_circuit(spec: SIITSpec, cfg: TransformerConfig | None = None) -> Circuit:
    """The designed circuit of the alignment: each aligned component reads the program's inputs
    of its variable from the components (or embeddings) computing them, in the roles the
    program gives them (:func:`interplab.compile.dataflow_truth.alignment_reads`); the output
    variable's component feeds the logits."""
    reads = alignment_reads(spec.program(), {v: spec.nodes(v) for v in spec.alignment})
    return Circuit.from_edges(reads, name=f"{spec.name} (designed from the alignment)")


# --------------------------------------------------------------------------- training
@dataclass(frozen=True)
class PairTable:
    """(base, source) index pairs with the program's targets: ``targets[var]`` [n, length]
    class ids (-100 where undefined), ``base_labels`` [n, length]."""

    base: Tensor
    source: Tensor
    targets: Mapping[str, Tensor]
    base_labels: Tensor


def _pair_table(
    spec: SIITSpec, prog: rasp.SOp, inputs: list, values: tuple, pairs: list
) -> PairTable:
    from interplab.methods.causal.program import UNDEFINED, output, run_program

    index = {repr(v): i for i, v in enumerate(values)}
    cache = [run_program(prog, xs) for xs in inputs]

    def ids(out: Any) -> list[int]:
        if out == UNDEFINED:
            return [-100] * spec.length
        return [index.get(repr(v), -100) for v in out]

    targets: dict[str, list] = {v: [] for v in spec.alignment}
    memo: dict[tuple, list[int]] = {}
    for b, s in pairs:
        for var in spec.alignment:
            key = (b, var, repr(cache[s][var]))
            if key not in memo:
                memo[key] = ids(output(prog, inputs[b], {var: cache[s][var]}))
            targets[var].append(memo[key])
    return PairTable(
        torch.tensor([b for b, _ in pairs]),
        torch.tensor([s for _, s in pairs]),
        {v: torch.tensor(t) for v, t in targets.items()},
        torch.tensor([ids(cache[b][prog.label]) for b, _ in pairs]),
    )


def _split_pairs(
    n_inputs: int, n_train: int, n_test: int, rng: random.Random, heldout: float = 0.0
) -> tuple[list, list]:
    """Distinct (base, source) index pairs for training and for verification. With
    ``heldout`` > 0 that share of the inputs (drawn by ``rng``) never appears in a training
    pair, and every verification pair's base is one of them (its source may be any input): the
    verification then measures inputs the model never saw. With 0, training and verification
    pairs are disjoint as pairs only."""
    order = list(range(n_inputs))
    n_held = int(round(heldout * n_inputs))
    if n_held:
        rng.shuffle(order)
    held, seen_in = order[:n_held], order[n_held:]
    train = _distinct_pairs(seen_in, seen_in, n_train, rng, set())
    test = _distinct_pairs(held or order, order, n_test, rng, set(train))
    return train, test


def _distinct_pairs(
    bases: list[int], sources: list[int], n: int, rng: random.Random, taken: set
) -> list[tuple[int, int]]:
    """Up to ``n`` distinct pairs from ``bases`` x ``sources`` not in ``taken``."""
    if len(bases) * len(sources) <= 4 * (n + len(taken)):  # small: enumerate, then shuffle
        every = [(b, s) for b in bases for s in sources if (b, s) not in taken]
        rng.shuffle(every)
        return every[:n]
    seen = set(taken)
    out: list[tuple[int, int]] = []
    while len(out) < n:  # terminates: at least 3/4 of the space is free
        pair = (rng.choice(bases), rng.choice(sources))
        if pair not in seen:
            seen.add(pair)
            out.append(pair)
    return out


def _ce(logits: Tensor, labels: Tensor) -> Tensor:
    return F.cross_entropy(
        logits[:, 1:].reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
    )


def train_siit(
    spec: SIITSpec,
    seed: int = 0,
    *,
    steps: int | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[HookedTransformer, dict]:
    """Train a fresh model for ``spec`` with SIIT. Returns (model, verification dict)."""
    from interplab.methods.causal.hypothesis import model_nodes

    torch.manual_seed(seed)
    rng = random.Random(seed)
    prog, inputs, values = spec.program(), spec.all_inputs(), spec.output_values()
    cfg = spec.config(seed)
    model = HookedTransformer(cfg, name=f"{spec.name}-s{seed}")
    enc = _encoder(spec)
    tokens = enc(inputs)
    train_pairs, test_pairs = _split_pairs(
        len(inputs), N_TRAIN_PAIRS, N_TEST_PAIRS, rng, spec.heldout
    )
    train = _pair_table(spec, prog, inputs, values, train_pairs)
    aligned = {n for v in spec.alignment for n in spec.nodes(v)}
    outside = [n for n in model_nodes(cfg) if n not in aligned]
    variables = sorted(spec.alignment)
    opt = torch.optim.Adam(model.model.parameters(), lr=spec.lr)
    n_steps = steps or spec.steps
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=spec.lr, total_steps=n_steps, pct_start=0.1
    )
    gen = torch.Generator().manual_seed(seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    with one_thread():
        _train_loop(model, spec, tokens, train, outside, variables, opt, sched, gen, n_steps, log)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    test = _pair_table(spec, prog, inputs, values, test_pairs)
    report = verify(model, spec, tokens, test, outside)
    report["train_seconds"] = round(seconds, 2)
    report["train_cpu_seconds"] = round(cpu, 2)
    report["steps"] = n_steps
    return model, report


def _rows(src: Tensor, lo: int, hi: int) -> Callable[[Tensor], Tensor]:
    """A Replace function that sets rows ``lo:hi`` of the activation to ``src`` (one row per
    replaced row) and leaves the others as they are, keeping the graph."""
    return lambda cur: torch.cat([cur[:lo], src.to(cur.dtype), cur[hi:]])


def heldout_check(model: HookedTransformer, spec: SIITSpec, seed: int, n_pairs: int) -> dict:
    """:func:`verify` on the first ``n_pairs`` of the held-out pairs that training at ``seed``
    drew (the same split: bases from the held-out inputs when ``spec.heldout`` > 0): a quick
    re-verification of a stored model."""
    from interplab.methods.causal.hypothesis import model_nodes

    rng = random.Random(seed)
    prog, inputs, values = spec.program(), spec.all_inputs(), spec.output_values()
    _, test_pairs = _split_pairs(len(inputs), N_TRAIN_PAIRS, N_TEST_PAIRS, rng, spec.heldout)
    test = _pair_table(spec, prog, inputs, values, test_pairs[:n_pairs])
    aligned = {n for v in spec.alignment for n in spec.nodes(v)}
    outside = [n for n in model_nodes(model.cfg) if n not in aligned]
    return verify(model, spec, _encoder(spec)(inputs), test, outside)


def _train_loop(model, spec, tokens, train, outside, variables, opt, sched, gen, n_steps, log):
    """SIIT steps. Each step runs the source once without gradients (its activations are the
    patched-in values, as constants) and then one forward with the base batch three times over:
    rows [0, b) plain (task loss), [b, 2b) with the variable's aligned components from the
    source (IIT loss), [2b, 3b) with random non-circuit components from the source (strict
    loss). The three losses are the same as three separate runs; one batched run costs about
    half as much on a CPU, where a small model's time goes on per-operation overhead."""
    from interplab.core.interventions import Replace
    from interplab.methods.causal.hypothesis import node_site

    model.model.train()
    b = spec.batch
    for step in range(n_steps):
        idx = torch.randint(0, int(train.base.shape[0]), (b,), generator=gen)
        base, src = tokens[train.base[idx]], tokens[train.source[idx]]
        var = variables[step % len(variables)]
        sites = [node_site(n) for n in spec.nodes(var)]
        strict = [n for n in outside if torch.rand((), generator=gen) < 0.5] or outside[:1]
        strict_sites = [node_site(n) for n in strict]
        _, cache = model.run_with_cache(src, sites + strict_sites)
        patches = [Replace(s, fn=_rows(cache[s], b, 2 * b)) for s in sites]
        patches += [Replace(s, fn=_rows(cache[s], 2 * b, 3 * b)) for s in strict_sites]
        logits = model.run_with(torch.cat([base, base, base]), patches, grad=True)
        loss = _ce(logits[:b], train.base_labels[idx]) + _ce(
            logits[b : 2 * b], train.targets[var][idx]
        )
        if strict_sites:
            loss = loss + _ce(logits[2 * b :], train.base_labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log and step % 200 == 0:
            log(f"{spec.name} step {step} loss {loss.item():.4f}")
    model.model.eval()


def _encoder(spec: SIITSpec) -> Callable[[Sequence[Sequence[Any]]], Tensor]:
    index = {v: i + 1 for i, v in enumerate(spec.vocab)}
    return lambda inputs: torch.tensor(
        [[0] + [index[v] for v in xs] for xs in inputs], dtype=torch.long
    )


def _seq_acc(logits: Tensor, labels: Tensor) -> Tensor:
    """[n] bool: every defined position right."""
    pred = logits[:, 1:].argmax(-1)
    return ((pred == labels) | (labels == -100)).all(-1)


@torch.no_grad()
def verify(
    model: HookedTransformer,
    spec: SIITSpec,
    tokens: Tensor,
    test: PairTable,
    outside: Sequence[Node],
) -> dict:
    """IIA per aligned variable, task accuracy and strict (non-circuit resampled) accuracy on
    held-out pairs; sequence-level exact match."""
    from interplab.methods.causal.hypothesis import node_site

    base, src = tokens[test.base], tokens[test.source]
    iia = {}
    for var in sorted(spec.alignment):
        sites = [node_site(n) for n in spec.nodes(var)]
        _, cache = model.run_with_cache(src, sites)
        out = model.run_with(base, [Patch(s, value=cache[s]) for s in sites])
        defined = (test.targets[var] != -100).any(-1)
        iia[var] = float(_seq_acc(out, test.targets[var])[defined].float().mean())
    task = float(_seq_acc(model.run(base), test.base_labels).float().mean())
    strict = 1.0
    if outside:
        sites = [node_site(n) for n in outside]
        _, cache = model.run_with_cache(src, sites)
        out = model.run_with(base, [Patch(s, value=cache[s]) for s in sites])
        strict = float(_seq_acc(out, test.base_labels).float().mean())
    return {
        "iia": iia,
        "task_accuracy": task,
        "strict_accuracy": strict,
        "n_heldout_pairs": int(test.base.shape[0]),
    }


# --------------------------------------------------------------------------- cache + zoo
def organism_dir(name: str, seed: int) -> Path:
    return cache_dir() / "siit" / f"{name}-s{seed}"


def fingerprint(spec: SIITSpec) -> str:
    """What a cached organism was trained from (everything in the spec but the description and
    the program's Python closure, plus the program's label and the format version): a cached
    organism whose fingerprint differs from its spec's is retrained."""
    fields = {
        k: repr(v)
        for k, v in sorted(vars(spec).items())
        if k not in ("program", "description", "quick")
        and not k.startswith("_")  # caches, not settings
        and not (k == "origin" and not v)
    }
    fields["program"] = spec.program().label
    fields["version"] = repr(FORMAT_VERSION)
    return weights_cache.digest(fields)


def load_or_train(
    name: str,
    seed: int = 0,
    *,
    min_iia: float = 0.95,
    retrain: bool = False,
    log: Callable[[str], None] | None = None,
) -> SIITOrganism:
    """The verified organism ``name`` (a key of :data:`SPECS`), trained on first use and cached.
    Raises :class:`VerificationError` if training does not reach ``min_iia`` on every variable."""
    if name not in SPECS:
        raise unknown_name("SIIT organism", name, tuple(SPECS))
    return load_spec(SPECS[name], seed, min_iia=min_iia, retrain=retrain, log=log)


def load_spec(
    spec: SIITSpec,
    seed: int = 0,
    *,
    min_iia: float = 0.95,
    retrain: bool = False,
    log: Callable[[str], None] | None = None,
    min_task_accuracy: float = 0.0,
) -> SIITOrganism:
    """:func:`load_or_train` for a spec not in :data:`SPECS` (e.g. a generated program's twin,
    :mod:`interplab.zoo.siit_generated`): cached under ``organism_dir(spec.name, seed)``. A
    freshly trained model is also rejected below ``min_task_accuracy`` on the held-out pairs.
    Runs under the entry's lock, so two processes asking for one organism train it once."""
    with weights_cache.entry_lock(organism_dir(spec.name, seed)):
        return _load_entry(spec, seed, min_iia, retrain, log, min_task_accuracy)


def _load_entry(
    spec: SIITSpec,
    seed: int,
    min_iia: float,
    retrain: bool,
    log: Callable[[str], None] | None,
    min_task_accuracy: float,
) -> SIITOrganism:
    name = spec.name
    directory = organism_dir(name, seed)
    gt_path = directory / GT_NAME
    stored = json.loads(gt_path.read_text("utf-8")) if gt_path.is_file() else {}
    model = None
    if stored.get("fingerprint") == fingerprint(spec) and not retrain:
        try:
            model, _ = load_model(directory, name=name)
            report = stored["verification"]
        except WeightsError as exc:
            logging.getLogger("interplab.zoo").warning(
                "rebuilding SIIT organism %s: its cache in %s is unusable (%s)",
                name,
                directory,
                str(exc).splitlines()[0],
            )
            model = None
    if model is None:
        model, report = train_siit(spec, seed, log=log)
        worst = min(report["iia"].values())
        if worst < min_iia or report["task_accuracy"] < min_task_accuracy:
            raise VerificationError(
                f"SIIT organism {name} (seed {seed}) reached IIA {report['iia']} on "
                f"{report['n_heldout_pairs']} held-out pairs (task accuracy "
                f"{report['task_accuracy']:.3f}); every variable needs IIA ≥ {min_iia}"
                f"{f' and the task ≥ {min_task_accuracy}' if min_task_accuracy else ''}. "
                f"Train longer (SIITSpec.steps={spec.steps}) or try another seed."
            )
        write_organism(directory, spec, seed, model, report, min_iia)
    return organism_of(spec, model, report)


def organism_of(
    spec: SIITSpec, model: HookedTransformer, report: Mapping[str, Any]
) -> SIITOrganism:
    """The SIITOrganism of a trained (or loaded) ``model`` for ``spec`` with its verification."""
    return SIITOrganism(
        spec.name,
        spec,
        model,
        spec.program(),
        true_circuit(spec, model.cfg),
        spec.output_values(),
        report,
    )


def write_organism(
    directory: Path,
    spec: SIITSpec,
    seed: int,
    model: HookedTransformer,
    report: dict,
    min_iia: float,
) -> None:
    """Write a verified organism into ``directory``: weights and sidecar (with their SHA-256),
    then the ground-truth JSON (alignment, designed circuit, held-out verification, fingerprint),
    each file atomically; the ground truth last, so a directory with it is complete."""
    save_model(directory, model, extra={"siit": spec.name, "seed": seed})
    truth = {
        "version": FORMAT_VERSION,
        "name": spec.name,
        "seed": seed,
        "program": spec.program().label,
        "vocab": list(spec.vocab),
        "length": spec.length,
        "output_values": list(spec.output_values()),
        "alignment": {v: [list(t) for t in a] for v, a in spec.alignment.items()},
        "circuit": sorted(str(e) for e in true_circuit(spec, model.cfg).edges),
        "verification": report,
        "min_iia": min_iia,
        "fingerprint": fingerprint(spec),
    }
    atomic_write_text(directory / GT_NAME, json.dumps(truth, indent=2, sort_keys=True))


def quick_names() -> list[str]:
    return [n for n, s in SPECS.items() if s.quick and n not in UNVERIFIED]


def entries() -> list[ZooEntry]:
    """Every verified SIIT organism (tags: "siit", "trained", "circuits", "causal")."""
    return [
        ZooEntry(
            name,
            "trained",
            f"SIIT-trained {spec.description}",
            lambda name=name: load_or_train(name),  # type: ignore[misc]
            frozenset(
                {"siit", "trained", "circuits", "causal"} | ({"quick"} if spec.quick else set())
            ),
        )
        for name, spec in SPECS.items()
        if name not in UNVERIFIED
    ]
