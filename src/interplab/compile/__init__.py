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

from interplab.compile import compiling, rasp
from interplab.compile.dataflow_truth import derive_circuit
from interplab.compile.edge_measure import measure_circuit
from interplab.compile.compiled import CompiledModel, load_compiled, save_compiled
from interplab.compile.compiler import compile_program, random_pairs
from interplab.compile.ground_truth import GroundTruth, VariableTruth
from interplab.compile.programs import LIBRARY, ProgramSpec, get_program

__all__ = ["rasp", "compiling", "compile_program", "random_pairs", "CompiledModel", "save_compiled",
           "load_compiled", "measure_circuit", "derive_circuit", "GroundTruth", "VariableTruth", "LIBRARY", "ProgramSpec", "get_program"]
