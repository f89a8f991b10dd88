"""Causal explanations: executable hypotheses and distributed alignment search.

from interplab.methods.causal import from_ground_truth, misaligned, das
hyp = from_ground_truth(compiled_model)           # scores 1.0 (see interplab.eval.counterfactuals)
control = misaligned(hyp)                         # must score badly
"""

from interplab.methods.causal.das_training import DASResult, das  # registers das
from interplab.methods.causal.hypotheses import Proposal  # registers the hypothesis builders
from interplab.methods.causal.hypothesis import (
    CausalHypothesis,
    Realisation,
    from_alignment,
    from_circuit,
    from_ground_truth,
    from_subspaces,
    misaligned,
    model_nodes,
    node_site,
    shuffled,
)
from interplab.methods.causal.program import (
    UNDEFINED,
    output,
    outputs_equal,
    run_program,
    variables,
)

__all__ = [
    "UNDEFINED",
    "CausalHypothesis",
    "DASResult",
    "Proposal",
    "Realisation",
    "das",
    "from_alignment",
    "from_circuit",
    "from_ground_truth",
    "from_subspaces",
    "misaligned",
    "model_nodes",
    "node_site",
    "output",
    "outputs_equal",
    "run_program",
    "shuffled",
    "variables",
]
