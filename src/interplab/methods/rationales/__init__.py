"""Decision rationales whose every claim is checked against the model.

DecisionModel            a torch module or a predict_proba classifier over raw rows, K ≥ 2
                         classes; model.versus(target, against) -> the binary contrast
                         (against: a class, "rest" or "any") every method below works on
attribute(model, x, method=..., baseline=background)
                         -> Attributions   (linear/kernel SHAP, IG, occlusion, permutation, random)
find_recourse(...)       -> Recourse       (smallest actionable changes that flip the decision)
fit_surrogate(...)       -> Surrogate      (a shallow tree and its held-out fidelity)
explain(model, x, baseline=background, target=None, versus="runner-up", recourse_to=None)
                         -> Rationale      (plain-language claims, each tested; failures dropped;
                                            several classes: "class t rather than a")
"""

from interplab.methods.rationales import shap_reference  # noqa: F401  (registers shap_*)
from interplab.methods.rationales.attribution import (
    Attributions,
    attribute,
    attribution_methods,
)
from interplab.methods.rationales.model import DecisionModel
from interplab.methods.rationales.rationale import Claim, Rationale, explain
from interplab.methods.rationales.recourse import (
    Counterfactual,
    Recourse,
    find_recourse,
    nearest_neighbour,
    random_recourse,
)
from interplab.methods.rationales.surrogate import Surrogate, fit_surrogate

__all__ = [
    "Attributions",
    "Claim",
    "Counterfactual",
    "DecisionModel",
    "Rationale",
    "Recourse",
    "Surrogate",
    "attribute",
    "attribution_methods",
    "explain",
    "find_recourse",
    "fit_surrogate",
    "nearest_neighbour",
    "random_recourse",
]
