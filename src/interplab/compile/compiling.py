"""Tracr's entry point, for ported programs: ``compiling.compile_rasp_to_model``.

    from interplab.compile import compiling, rasp      # was: from tracr.compiler import compiling
    model = compiling.compile_rasp_to_model(program, vocab={"a", "b"}, max_seq_len=5,
                                            compiler_bos="BOS")
    model(["a", "b"])                                  # was: model.apply(["BOS", "a", "b"]).decoded

It calls :func:`interplab.compile.compile_program` and returns a
:class:`~interplab.compile.compiled.CompiledModel` (a HookedTransformer with its ground truth).
What differs from Tracr: BOS is added by the model (``compiler_bos`` only names it in Tracr's
inputs and is not needed here), there is no padding token (``compiler_pad`` is accepted and
unused: inputs of different lengths are run in groups), and MLPs are exact tables or step
functions (``mlp_exactness`` is accepted and unused).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from interplab.compile import rasp
from interplab.compile.compiled import CompiledModel
from interplab.compile.compiler import compile_program


def compile_rasp_to_model(
    program: rasp.SOp,
    vocab: Collection[Any],
    max_seq_len: int,
    *,
    causal: bool = False,
    compiler_bos: str = "BOS",
    compiler_pad: str | None = None,
    mlp_exactness: int = 100,
    **kwargs: Any,
) -> CompiledModel:
    """Compile ``program`` for inputs over ``vocab`` (a set is sorted) of length
    1..``max_seq_len``; ``causal=True`` builds a decoder. Other keyword arguments go to
    :func:`~interplab.compile.compile_program` (``valid``, ``pairs``, ``name``, ...)."""
    del compiler_bos, compiler_pad, mlp_exactness  # Tracr's; see the module docstring
    return compile_program(program, vocab, max_seq_len, causal=causal, **kwargs)


__all__ = ["compile_rasp_to_model"]
