"""Seeded random RASP programs: as many verified organisms as a study needs.

    candidate(seed, j) ─draw─▶ rasp.SOp ─compile_program─▶ CompiledModel
        ─check_agreement (every input, or ≥ 2,000 sampled)─▶ 1.0 or rejected
        ─behaviour (outputs on a fixed input set)─▶ new or a duplicate (rejected)
        ─task_pairs (from the program's semantics: outputs differ)─▶ GeneratedProgram
        ─truth check (the per-ablation truth on the zoo's truth pairs agrees with single-edge
         ablation in the weights under zero, mean and resample)─▶ accepted, or rejected ("truth")

A candidate is drawn from a small grammar over the constructs the compiler supports: ``Map``
(categorical and to numerical), ``SequenceMap``, ``LinearSequenceMap``, ``Select`` with every
:class:`~interplab.compile.rasp.Comparison`, categorical and numerical ``Aggregate``,
``SelectorWidth`` and selector ``&``/``|``. Its depth (the longest chain of operations from the
input to the output) and its number of operations are bounded by :class:`Grammar`. Candidate
``j`` of ``seed`` depends on nothing but ``(seed, j)``, so ``generated-<seed>-<i>`` — the ``i``-th
accepted candidate — is rebuilt in any process without replaying the others' compilation (the
accepted candidate numbers are cached, keyed by seed and :data:`GENERATOR_VERSION`).

A candidate is rejected when it does not compile (e.g. a categorical Aggregate that would average
different values), when its compiled model disagrees with the RASP evaluator on a single checked
input (counted: a compiler bug, never expected), when its output does not depend on the tokens
(no task pair), when another accepted program has the same behaviour (its outputs on every
input, or on a fixed seeded sample of 2,000 when the input space is larger), or when its
per-ablation circuit truth (:func:`interplab.compile.derive_circuit`, from the RASP program) on
the pairs the zoo track derives it on (:func:`scoring_and_truth_pairs`, seed
:data:`TRUTH_SEED`) disagrees with single-edge ablation in its weights under any of the three
ablations (:func:`interplab.compile.check_truth`): such a truth would be refused when scored, so
the program is dropped and counted (``truth``).

Task pairs come from the semantics: for each clean input, a corrupted input of the same length
whose program output differs, the nearest such input in Hamming distance (ties broken by the seed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import random
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from interplab.compile import rasp
from interplab.compile.draw import (
    CONSTRUCTS,
    DRAW_VERSION,
    Candidate,
    Grammar,
    draw,
    shape,
)
from interplab.errors import CompileError, ConfigError, InterplabError

#: bump when which candidates are accepted changes (v2: the per-ablation truth must verify in the
#: weights): cached candidate lists and so organism names depend on it
GENERATOR_VERSION = 2
#: agreement is checked on every input up to this many, else on this many seeded samples
MAX_CHECKED_INPUTS = 2_000


# ----------------------------------------------------------------------- verification


@dataclass(frozen=True, eq=False)
class GeneratedProgram:
    """An accepted program: its candidate, behaviour fingerprint, agreement with the evaluator
    (``checked`` inputs, all matching) and the duck-typed :class:`ProgramSpec` interface the
    bench uses (``name``, ``vocab``, ``max_len``, ``program()``, ``task_pairs``, ``compile``)."""

    name: str
    candidate: Candidate = field(repr=False)
    behaviour: str
    checked: int
    exhaustive: bool
    _outputs: dict = field(default_factory=dict, repr=False)
    #: the record of the truth check in the weights (:func:`check_generated_truth`), when run
    truth_check: dict | None = field(default=None, repr=False)

    @property
    def vocab(self) -> tuple[int, ...]:
        return self.candidate.vocab

    @property
    def max_len(self) -> int:
        return self.candidate.max_len

    def program(self) -> rasp.SOp:
        return self.candidate.program

    def describe(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "name": self.name,
            "seed": c.seed,
            "candidate": c.index,
            "vocab": list(c.vocab),
            "max_len": c.max_len,
            "depth": c.depth,
            "width": c.width,
            "n_ops": c.n_ops,
            "constructs": list(c.constructs),
            "behaviour": self.behaviour,
            "agreement": 1.0,
            "inputs_checked": self.checked,
            "exhaustive": self.exhaustive,
            "truth_check": self.truth_check,
        }

    def task_pairs(
        self,
        n: int,
        seed: int = 0,
        length: int | None = None,
        within: Collection[tuple] | None = None,
    ) -> list[tuple[list, list]]:
        """``n`` (clean, corrupted) pairs whose outputs differ (see :func:`task_pairs`)."""
        return task_pairs(
            self.candidate.program,
            self.vocab,
            self.max_len,
            n,
            seed=seed,
            length=length,
            outputs=self._outputs,
            within=within,
        )

    def compile(self, **kwargs: Any) -> Any:
        """The compiled model; its per-ablation truth is left to
        :func:`interplab.compile.derive_circuit` on pairs the caller holds out (default)."""
        from interplab.compile.compiler import compile_program

        kwargs.setdefault("measure_circuit", False)
        return compile_program(
            self.candidate.program, self.vocab, self.max_len, name=self.name, **kwargs
        )


def checked_inputs(vocab: Sequence[Any], max_len: int, seed: int = 0) -> tuple[list[tuple], bool]:
    """Every input of length 1..max_len when there are at most :data:`MAX_CHECKED_INPUTS`, else a
    seeded sample of that many; and whether it is every input."""
    total = sum(len(vocab) ** n for n in range(1, max_len + 1))
    if total <= MAX_CHECKED_INPUTS:
        return [x for n in range(1, max_len + 1) for x in itertools.product(vocab, repeat=n)], True
    rng = random.Random(seed)
    return [
        tuple(rng.choice(vocab) for _ in range(rng.randint(1, max_len)))
        for _ in range(MAX_CHECKED_INPUTS)
    ], False


def _canonical(out: Sequence[Any]) -> tuple:
    return tuple(round(v, 6) if isinstance(v, float) else v for v in out)


def behaviour(outputs: dict[tuple, tuple]) -> str:
    """A fingerprint of a program's outputs on its checked inputs (numbers rounded to 1e-6)."""
    h = hashlib.sha256()
    for x in sorted(outputs, key=lambda x: (len(x), repr(x))):
        h.update(repr((x, outputs[x])).encode())
    return h.hexdigest()[:16]


def task_pairs(
    program: rasp.SOp,
    vocab: Sequence[Any],
    max_len: int,
    n: int,
    *,
    seed: int = 0,
    length: int | None = None,
    outputs: dict | None = None,
    within: Collection[tuple] | None = None,
) -> list[tuple[list, list]]:
    """``n`` (clean, corrupted) pairs of equal length whose program outputs differ; the corrupted
    input is a nearest such input in Hamming distance (random among the nearest), found by
    changing one token, then two, .... Lengths: ``length``, else drawn from those where the output
    varies. ``outputs`` caches evaluator outputs. ``within``: both inputs of every pair come from
    this set (e.g. one half of the inputs, so that another set of pairs can avoid them).
    Raises ConfigError when no pair has outputs that differ."""
    rng = random.Random(seed)
    allowed = None if within is None else {tuple(x) for x in within}
    cache = outputs if outputs is not None else {}

    def out(x: tuple) -> tuple:
        if x not in cache:
            cache[x] = _canonical(rasp.evaluate(program, list(x)))
        return cache[x]

    lengths = [length] if length is not None else list(range(1, max_len + 1))
    pools = {
        L: [x for x in _inputs_of_length(vocab, L) if allowed is None or x in allowed]
        for L in lengths
    }
    pools = {L: xs for L, xs in pools.items() if len({out(x) for x in xs}) > 1}
    if not pools:
        raise ConfigError(
            f"program {program.label!r}: its output is the same on every "
            f"{'allowed ' if allowed is not None else ''}input of length {lengths}, "
            "so no task pair has outputs that differ"
        )
    pairs: list[tuple[list[Any], list[Any]]] = []
    for _ in range(100 * n):
        if len(pairs) == n:
            break
        L = rng.choice(sorted(pools))
        clean = rng.choice(pools[L])
        corrupted = _nearest_different(clean, out, vocab, rng, allowed)
        if corrupted is not None:
            pairs.append((list(clean), list(corrupted)))
    if len(pairs) < n:  # pragma: no cover - every pool has two outputs, so draws succeed
        raise ConfigError(f"program {program.label!r}: found only {len(pairs)} of {n} task pairs")
    return pairs


#: scoring and truth pairs per generated organism (the zoo track and the generator's truth check)
ZOO_PAIRS = 32
ZOO_TRUTH_PAIRS = 64


def split_inputs(spec: Any, seed: int) -> tuple[list[tuple], list[tuple]]:
    """Every input of length ``max_len``, shuffled with ``seed`` and cut in two halves (scoring,
    truth); where the program's output is the same on every input of a half (no task pair
    there), the shuffled inputs are dealt alternately within each output value instead, so that
    both halves hold every output that two or more inputs give."""
    xs = list(itertools.product(spec.vocab, repeat=spec.max_len))
    random.Random(f"zoo-split-{seed}").shuffle(xs)
    halves = xs[: len(xs) // 2], xs[len(xs) // 2 :]
    program = spec.program()
    out = {x: repr(rasp.evaluate(program, list(x))) for x in xs}
    if all(len({out[x] for x in h}) > 1 for h in halves):
        return halves
    by_output: dict[str, list[tuple]] = {}
    for x in xs:
        by_output.setdefault(out[x], []).append(x)
    dealt = [x for group in by_output.values() for x in group]
    return dealt[0::2], dealt[1::2]


def scoring_and_truth_pairs(
    spec: Any, seed: int = 0, n_pairs: int = ZOO_PAIRS, n_truth: int = ZOO_TRUTH_PAIRS
) -> tuple[list, list]:
    """The pairs a generated organism is scored on and the pairs its truth is derived and
    verified on, all of length ``max_len``: ``n_pairs`` inside one half of the inputs
    (:func:`split_inputs`, seed ``seed``), ``n_truth`` inside the other (seed ``seed + 1``), so
    no input of a scoring pair is ever used by the truth. The one definition the generator's
    truth check and the zoo track share."""
    half_score, half_truth = split_inputs(spec, seed)
    pairs = spec.task_pairs(n_pairs, seed=seed, length=spec.max_len, within=half_score)
    held = spec.task_pairs(n_truth, seed=seed + 1, length=spec.max_len, within=half_truth)
    return pairs, held


#: the pair seed the generator checks the truth at (the zoo track's default job seed)
TRUTH_SEED = 0


def check_generated_truth(spec: Any, model: Any, seed: int = TRUTH_SEED) -> dict | str:
    """Derive the per-ablation truth on the zoo track's truth pairs (:func:`scoring_and_truth_pairs`)
    and check it in the weights under zero, mean and resample ablation. Returns the check's
    record, or why the truth fails (``"truth: ..."``, the first disagreements)."""
    from interplab.compile.dataflow_truth import derive_circuit
    from interplab.compile.truth_check import check_truth
    from interplab.core.circuit import ABLATIONS

    try:
        _, held = scoring_and_truth_pairs(spec, seed)
    except ConfigError as exc:
        return f"truth: no truth pairs ({str(exc)[:120]})"
    derived = derive_circuit(model, held)
    per_ablation = {a: derived.for_ablation(a) for a in ABLATIONS}
    problems = check_truth(model, per_ablation, held)
    if problems:
        return f"truth: {len(problems)} disagreement(s) with the weights, e.g. {problems[0]}"
    return {
        "pairs": len(held),
        "seed": seed,
        "length": spec.max_len,
        "edges": {a: len(c.edges) for a, c in per_ablation.items()},
        "agrees": True,
    }


def _nearest_different(
    x: tuple,
    out: Callable[[tuple], tuple],
    vocab: Sequence[Any],
    rng: random.Random,
    allowed: set | None = None,
) -> tuple | None:
    want = out(x)
    for distance in range(1, len(x) + 1):
        found = []
        for where in itertools.combinations(range(len(x)), distance):
            options = [[v for v in vocab if v != x[i]] for i in where]
            for values in itertools.product(*options):
                y = list(x)
                for i, v in zip(where, values):
                    y[i] = v
                t = tuple(y)
                if (allowed is None or t in allowed) and out(t) != want:
                    found.append(t)
        if found:
            return rng.choice(found)
    return None


def _inputs_of_length(vocab: Sequence[Any], length: int) -> list[tuple]:
    if len(vocab) ** length <= MAX_CHECKED_INPUTS:
        return list(itertools.product(vocab, repeat=length))
    rng = random.Random(length)
    return [tuple(rng.choice(vocab) for _ in range(length)) for _ in range(MAX_CHECKED_INPUTS)]


@dataclass
class Rejections:
    """Why candidates were rejected (counts), for the generation report."""

    trivial: int = 0
    constant: int = 0
    compile: int = 0
    disagree: int = 0
    duplicate: int = 0
    #: the per-ablation truth disagrees with single-edge ablation in the weights
    truth: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, index: int, reason: str) -> None:
        kind = reason.split(":")[0]
        setattr(self, kind, getattr(self, kind) + 1)
        if kind in ("compile", "disagree", "truth") and len(self.examples) < 8:
            self.examples.append(f"candidate {index}: {reason}")

    def to_json(self) -> dict[str, Any]:
        return {
            "trivial": self.trivial,
            "constant": self.constant,
            "compile": self.compile,
            "disagree": self.disagree,
            "duplicate": self.duplicate,
            "truth": self.truth,
        }


def verify(
    candidate: Candidate, name: str, grammar: Grammar = Grammar()
) -> tuple[GeneratedProgram, Any] | str:
    """Compile ``candidate`` and check it (see the module docstring). Returns the accepted
    program and its compiled model, or why it was rejected (``"trivial"``: fewer than
    ``grammar.min_ops`` operations; ``"constant"``; ``"compile: ..."``; ``"disagree: ..."``)."""
    from interplab.compile.compiler import compile_program
    from interplab.compile.ground_truth import values_equal

    program = candidate.program
    if candidate.n_ops < grammar.min_ops or not isinstance(program, rasp.SOp):
        return "trivial"
    inputs, exhaustive = checked_inputs(candidate.vocab, candidate.max_len, seed=candidate.index)
    outputs: dict[tuple, tuple] = {}
    try:
        for x in inputs:
            outputs[x] = _canonical(rasp.evaluate(program, list(x)))
    except InterplabError as exc:  # undefined on some input (the compiler would reject it too)
        return f"compile: {str(exc).splitlines()[0][:200]}"
    full = [o for x, o in outputs.items() if len(x) == candidate.max_len]
    if len(set(full)) < 2:
        return "constant"
    try:
        model = compile_program(
            program, candidate.vocab, candidate.max_len, name=name, measure_circuit=False
        )
    except InterplabError as exc:
        lines = str(exc).splitlines()
        return "compile: " + " ".join(lines[1:2] or lines[:1]).strip()[:200]
    bad = 0
    with _no_grad():
        for n in range(1, candidate.max_len + 1):
            group = [x for x in inputs if len(x) == n]
            if group:
                for x, got in zip(group, model([list(x) for x in group])):
                    bad += not values_equal(list(outputs[x]), got, 1e-4)
    if bad:
        return f"disagree: {bad} of {len(inputs)} inputs"
    spec = GeneratedProgram(name, candidate, behaviour(outputs), len(inputs), exhaustive, outputs)
    return spec, model


def _no_grad() -> Any:
    import torch

    return torch.no_grad()


def generate(
    count: int,
    seed: int = 0,
    grammar: Grammar = Grammar(),
    *,
    max_candidates: int | None = None,
    rejections: Rejections | None = None,
) -> Iterator[tuple[GeneratedProgram, Any]]:
    """Yield ``count`` accepted (program, compiled model) pairs for ``seed``, in order, named
    ``generated-<seed>-<i>``. Raises CompileError if ``max_candidates`` (default 50 × count)
    draws do not give ``count`` programs."""
    if count < 0:
        raise ConfigError(f"count must be >= 0, got {count}")
    limit = max_candidates if max_candidates is not None else 50 * max(count, 1)
    seen: set[str] = set()
    rej = rejections if rejections is not None else Rejections()
    accepted = 0
    for j in range(limit):
        if accepted == count:
            return
        outcome = verify(draw(seed, j, grammar), f"generated-{seed}-{accepted}", grammar)
        if isinstance(outcome, str):
            rej.add(j, outcome)
            continue
        spec, model = outcome
        if spec.behaviour in seen:
            rej.duplicate += 1
            continue
        checked = check_generated_truth(spec, model)
        if isinstance(checked, str):
            rej.add(j, checked)
            continue
        seen.add(spec.behaviour)  # duplicates are of accepted programs only
        accepted += 1
        yield dataclasses.replace(spec, truth_check=checked), model
    if accepted < count:
        raise CompileError(
            f"only {accepted} of {count} programs accepted after {limit} candidates "
            f"for seed {seed} (rejected: {json.dumps(rej.to_json())})"
        )


__all__ = [
    "CONSTRUCTS",
    "DRAW_VERSION",
    "GENERATOR_VERSION",
    "TRUTH_SEED",
    "ZOO_PAIRS",
    "ZOO_TRUTH_PAIRS",
    "Candidate",
    "GeneratedProgram",
    "Grammar",
    "Rejections",
    "behaviour",
    "check_generated_truth",
    "checked_inputs",
    "draw",
    "generate",
    "scoring_and_truth_pairs",
    "shape",
    "split_inputs",
    "task_pairs",
    "verify",
]
