"""Shared case table: small compiled programs with their full input sets (module-cached).

``compiled(name)``: the SIIT program builders compiled at a fixed length (historical cases of
the hypothesis and DAS tests). ``library(name)``: the program library's model, exactly as the
bench's ``compiled-<name>`` organisms build it, with every valid input of length ``max_len``.
"""

from __future__ import annotations

import functools
import itertools

from interplab.compile import programs
from interplab.compile.compiler import compile_program
from interplab.compile.programs import get_program

CASES = {
    # name: (program builder, vocab, length, distinct tokens)
    "hist": (programs.siit_hist, tuple(range(4)), 5, False),
    "sort_unique": (programs.siit_sort_unique, tuple(range(6)), 4, True),
    "sum_prev": (programs.siit_sum_prev, tuple(range(3)), 5, False),
}


@functools.cache
def compiled(name: str):
    """(compiled model, every input of the case)."""
    build, vocab, length, distinct = CASES[name]
    model = compile_program(build(), list(vocab), length, name=name)
    inputs = (
        list(itertools.permutations(vocab, length))
        if distinct
        else list(itertools.product(vocab, repeat=length))
    )
    return model, inputs


@functools.cache
def library(name: str):
    """(the library program's compiled model, every valid input of length max_len)."""
    spec = get_program(name)
    return spec.compile(), [x for x in spec.inputs() if len(x) == spec.max_len]
