"""The RASP compiler: programs -> transformer weights that carry their own ground truth.

    from interplab.compile import rasp, compile_program, get_program, LIBRARY
    model = get_program("reverse").compile()        # a CompiledModel (a HookedTransformer)
    model(["a", "b", "c"])                           # ['c', 'b', 'a'] (or a batch of lists)
    model.ground_truth.circuit                       # the true Circuit, per-ablation flags
    get_program("frac_prevs").compile(causal=True)   # a decoder: causal-frac_prevs
    get_program("sort").compile(vocab=(1, 3, 5), max_len=8)

    program = rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ),
                             rasp.numerical(rasp.tokens == "x"), default=0)   # Tracr style
    compile_program(rasp.numerical(program), vocab=["a", "x"], max_len=6, causal=True)

Modules: ``rasp`` (language, evaluator), ``compiler`` (the driver), ``compilability`` (what
cannot become weights), ``causality`` (forward-looking selects), ``residual_basis`` (value sets
and residual directions), ``agreement`` (model vs evaluator), ``compiling`` (Tracr's entry point);
porting from Tracr: docs/porting-tracr.md.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the submodule that defines it; imported on first use (PEP 562), so listing
#: the library (``interplab zoo``) does not pay for torch
_EXPORTS = {
    "derive_circuit": "dataflow_truth",
    "measure_circuit": "edge_measure",
    "check_truth": "truth_check",
    "verify_truth": "truth_check",
    "unverified_ablations": "truth_check",
    "CompiledModel": "compiled",
    "load_compiled": "compiled",
    "save_compiled": "compiled",
    "compile_program": "compiler",
    "random_pairs": "compiler",
    "GroundTruth": "ground_truth",
    "VariableTruth": "ground_truth",
    "LIBRARY": "programs",
    "ProgramSpec": "programs",
    "get_program": "programs",
}
_SUBMODULES = ("rasp", "compiling")

__all__ = [
    "LIBRARY",
    "CompiledModel",
    "GroundTruth",
    "ProgramSpec",
    "VariableTruth",
    "check_truth",
    "compile_program",
    "compiling",
    "derive_circuit",
    "get_program",
    "load_compiled",
    "measure_circuit",
    "random_pairs",
    "rasp",
    "save_compiled",
    "unverified_ablations",
    "verify_truth",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"interplab.compile.{name}")
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"interplab.compile.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'interplab.compile' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
