"""The SIIT organisms' specifications: for each, the RASP program (from
:mod:`interplab.compile.programs`), its inputs (fixed length, small vocabulary), the alignment
(variable label -> the heads/MLPs that must compute it) and the training settings. Training and
the cache are in :mod:`interplab.zoo.siit`, which re-exports these names.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch

from interplab.compile import programs as P
from interplab.compile import rasp
from interplab.core.circuit import Node
from interplab.models.config import TransformerConfig

Tensor = torch.Tensor


# --------------------------------------------------------------------------- programs
def program_library(name: str) -> rasp.SOp:
    """The library program ``name``, as is (the twin of organism ``compiled-<name>``)."""
    return P.get_program(name).build()


# --------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class SIITSpec:
    """One SIIT organism. ``alignment``: variable label -> (kind, layer, head) tuples, with
    kind "head" or "mlp" (head None for MLPs). ``distinct``: inputs have distinct tokens."""

    name: str
    program: Callable[[], rasp.SOp]
    vocab: tuple[Any, ...]
    length: int
    alignment: Mapping[str, tuple[tuple[str, int, int | None], ...]]
    n_layers: int = 2
    n_heads: int = 2
    d_model: int = 32
    d_head: int = 16
    d_mlp: int = 64
    distinct: bool = False
    steps: int = 1500
    batch: int = 128
    lr: float = 3e-3
    description: str = ""
    quick: bool = False
    #: where a spec not in :data:`SPECS` comes from (e.g. a generated program's seed, candidate
    #: and behaviour hash); part of the fingerprint when set
    origin: str = ""
    #: share of the inputs kept out of training; verification bases are drawn from them
    #: (0: pairs are held out, inputs are not)
    heldout: float = 0.0

    def nodes(self, variable: str) -> tuple[Node, ...]:
        return tuple(
            Node.attn_head(l, cast(int, h)) if k == "head" else Node.mlp(l)
            for k, l, h in self.alignment[variable]
        )

    def config(self, seed: int) -> TransformerConfig:
        return TransformerConfig(
            n_layers=self.n_layers,
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_head=self.d_head,
            d_mlp=self.d_mlp,
            d_vocab=len(self.vocab) + 1,
            n_ctx=self.length + 1,
            d_vocab_out=len(self.output_values()),
            attention="bidirectional",
            init_std=0.1,
            seed=seed,
        )

    def all_inputs(self) -> list[tuple[Any, ...]]:
        if self.distinct:
            return list(itertools.permutations(self.vocab, self.length))
        return list(itertools.product(self.vocab, repeat=self.length))

    def output_values(self) -> tuple[Any, ...]:
        """Every value the output can take (also under interchanges), sorted by repr; computed
        once per spec (it runs the program a few thousand times)."""
        cached = self.__dict__.get("_output_values")
        if cached is None:
            cached = self._output_values_uncached()
            object.__setattr__(self, "_output_values", cached)  # a cache, not a field
        return cached

    def _output_values_uncached(self) -> tuple[Any, ...]:
        from interplab.methods.causal.program import UNDEFINED, output, run_program

        prog, values = self.program(), set()
        inputs = self.all_inputs()
        runs = {xs: run_program(prog, xs) for xs in inputs}  # each input once
        for xs in inputs:
            values.update(runs[xs][prog.label])
        rng = random.Random(0)
        seen: set[tuple] = set()
        for _ in range(2000):  # interchanges can make new combinations
            base, src = rng.choice(inputs), rng.choice(inputs)
            for var in self.alignment:
                key = (base, var, repr(runs[src][var]))
                if key in seen:  # the same interchange: the same output
                    continue
                seen.add(key)
                out = output(prog, base, {var: runs[src][var]})
                if out != UNDEFINED:
                    values.update(out)
        return tuple(sorted(values, key=repr))


SPECS: dict[str, SIITSpec] = {
    s.name: s
    for s in (
        SIITSpec(
            "siit-shift_by",
            functools.partial(program_library, "shift_by"),
            ("a", "b", "c"),
            5,
            {"shift_by_2": (("head", 0, 0),)},
            n_layers=1,
            steps=800,
            quick=True,
            description="the twin of compiled-shift_by: the library program (shift right by 2, "
            "vocab a b c) on length-5 inputs, one head (L0.H0)",
        ),
        SIITSpec(
            "siit-shift_by_1",
            P.siit_shift_by_1,
            tuple(range(4)),
            5,
            {"prev": (("head", 0, 0),)},
            n_layers=1,
            steps=800,
            description="shift_by(1): one previous-token head (L0.H0)",
        ),
        SIITSpec(
            "siit-shift_by_2",
            P.siit_shift_by_2,
            tuple(range(4)),
            5,
            {"back2": (("head", 0, 1),)},
            n_layers=1,
            steps=800,
            description="shift_by(2): one head two tokens back (L0.H1)",
        ),
        SIITSpec(
            "siit-reverse",
            lambda: P.siit_reverse(5),
            tuple(range(4)),
            5,
            {"reverse": (("head", 0, 0),)},
            n_layers=1,
            steps=800,
            quick=True,
            description="reverse (length 5): one head reading the mirrored position (L0.H0)",
        ),
        SIITSpec(
            "siit-hist",
            P.siit_hist,
            tuple(range(4)),
            5,
            {"hist": (("head", 0, 0), ("mlp", 0, None))},
            n_layers=1,
            steps=1500,
            description="hist: a same-token head plus an MLP counting (L0.H0 + L0.MLP)",
        ),
        SIITSpec(
            "siit-first_token",
            P.siit_first_token,
            tuple(range(4)),
            5,
            {"first_token": (("head", 0, 0),)},
            n_layers=1,
            steps=800,
            description="first_token (mod_sum's first-token head): one head reading position 1 "
            "(L0.H0)",
        ),
        SIITSpec(
            "siit-mod_sum",
            functools.partial(program_library, "mod_sum"),
            tuple(range(5)),
            4,
            {"first_token": (("head", 0, 0),), "mod_sum": (("mlp", 0, None),)},
            n_layers=1,
            steps=1500,
            lr=1e-3,
            description="mod_sum (p=5): first-token head L0.H0 -> modular-sum MLP L0.MLP",
        ),
        SIITSpec(
            "siit-sum_prev",
            P.siit_sum_prev,
            tuple(range(3)),
            5,
            {"prev": (("head", 0, 0),), "sum_prev": (("mlp", 0, None),)},
            n_layers=1,
            steps=1500,
            lr=1e-3,
            description="(tok + prev tok) mod 3: shift head L0.H0 -> modular-sum MLP L0.MLP",
        ),
        SIITSpec(
            "siit-sort_unique",
            P.siit_sort_unique,
            tuple(range(6)),
            4,
            {"smaller": (("head", 0, 0), ("mlp", 0, None)), "sort": (("head", 1, 0),)},
            n_layers=2,
            distinct=True,
            steps=2000,
            description="sort_unique: count-smaller (L0.H0 + L0.MLP) then a placing head L1.H0",
        ),
        SIITSpec(
            "siit-detect_pattern",
            P.siit_detect_pattern,
            tuple(range(3)),
            5,
            {"prev": (("head", 0, 0),), "detect": (("mlp", 0, None),)},
            n_layers=1,
            steps=1500,
            lr=1e-3,
            description="detect_pattern '0 1': shift head L0.H0 -> matching MLP L0.MLP",
        ),
    )
}


#: Specs not accepted into the zoo or the bench. sort_unique: IIA not reached (seed 0, 2 layers,
#: 2000 steps at lr 3e-3: smaller 0.01 / sort 0.81). detect_pattern: IIA verifies (seed 0: prev
#: 0.965 / detect 1.0 at 1500 steps) but no component meets the replacement bar: swapping the MLP
#: for its part keeps 1.0 of task accuracy, yet mean-ablating it still keeps 0.58 (the output is
#: all zeros on most inputs), so mean ablation is not markedly worse. (Two-variable head -> MLP
#: mechanisms verify once the MLP sits in the head's layer of a one-layer model and the peak
#: learning rate is 1e-3 rather than 3e-3–5e-3, at which training diverged: sum_prev and mod_sum
#: reach IIA 1.0.)
UNVERIFIED = frozenset({"siit-sort_unique", "siit-detect_pattern"})


def verified_names() -> list[str]:
    return [n for n in SPECS if n not in UNVERIFIED]


def _interchange_output(prog: rasp.SOp, var: str, base: Sequence, src: Sequence) -> Any:
    from interplab.methods.causal.program import output, run_program

    return output(prog, base, {var: run_program(prog, src)[var]})
