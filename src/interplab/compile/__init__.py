"""The RASP compiler: programs -> transformer weights that carry their own ground truth.

    from interplab.compile import rasp, compile_program, get_program, LIBRARY
    model = get_program("reverse").compile()        # a CompiledModel (a HookedTransformer)
    model([["a", "b", "c"]])                         # [['c', 'b', 'a']]
    model.ground_truth.circuit                       # the true Circuit, per-ablation flags
"""

from __future__ import annotations

from interplab.compile import rasp
from interplab.compile.dataflow_truth import derive_circuit
from interplab.compile.edge_measure import measure_circuit
from interplab.compile.compiled import CompiledModel, load_compiled, save_compiled
from interplab.compile.compiler import compile_program, random_pairs
from interplab.compile.ground_truth import GroundTruth, VariableTruth
from interplab.compile.programs import LIBRARY, ProgramSpec, get_program

__all__ = ["rasp", "compile_program", "random_pairs", "CompiledModel", "save_compiled",
           "load_compiled", "measure_circuit", "derive_circuit", "GroundTruth", "VariableTruth", "LIBRARY", "ProgramSpec", "get_program"]
