"""The method contract, for every registered method of the families below: its registration is
consistent (name, kind, cost unit, metric), and run on a tiny input of its family it returns a
:class:`~interplab.methods.base.Result` whose cost, in the unit it is registered with, is > 0
when it uses the model (a "none" method may spend 0).

``CASES`` maps a family to a factory of ``(args, kwargs)`` for the family's call shape;
``OVERRIDES`` holds the few registered names whose call shape differs within their family.
Circuits and the causal hypothesis builders are checked by their own packages' tests.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from interplab.core.model import wrap_module
from interplab.core.sites import Site
from interplab.methods import registry
from interplab.methods.base import COST_UNITS, Result

FAMILIES = (
    "dictionaries",
    "attribution",
    "rationales",
    "data_attribution",
    "failures",
    "attacks",
    "poisoning",
    "auditing",
    "probing",
    "erasure",
    "steering",
    "causal",
)
#: the causal family's hypothesis builders have their own tests; DAS is checked here
SKIP_MODULES = ("interplab.methods.causal.hypotheses",)
#: (family, name): run only with -m slow (each needs a compiled or trained organism)
SLOW = {("attacks", "gcg"), ("causal", "das"), ("auditing", "white_box")}
ACT = Site.module("act")


class _MLP(nn.Module):
    def __init__(self, d_in: int = 16, width: int = 8, n_classes: int = 3):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.fc = nn.Linear(d_in, width)
        self.act = nn.ReLU()
        self.out = nn.Linear(width, n_classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))

    def forward(self, x):
        return self.out(self.act(self.fc(x.flatten(1))))


@functools.cache
def _tiny_mlp():
    return wrap_module(_MLP(), ["act"])


def _images(n: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 4, 4, generator=torch.Generator().manual_seed(seed))


def _labels(model, x):
    with torch.no_grad():
        return model.run(x).argmax(-1)


def _dictionaries():
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    return (x,), {"d_latent": 16, "steps": 4, "batch_size": 16, "seed": 0}


def _attribution():
    return (lambda v: (v**2).sum(1), torch.randn(2, 3)), {}


@functools.cache
def _rationales():
    from interplab.methods.rationales import DecisionModel
    from interplab.zoo.tabular import get

    org = get("credit-linear", 0)
    model = DecisionModel.from_torch(org.model, org.features, outcomes=org.data.outcomes)
    return (model, org.test_rows[0]), {"baseline": org.background[:32], "seed": 0}


def _shap_rationales():
    pytest.importorskip("shap")
    return _rationales()


def _shap_tree():
    """shap's TreeExplainer needs a tree ensemble with log-odds output: a small seeded one."""
    pytest.importorskip("shap")
    ensemble = pytest.importorskip("sklearn.ensemble")
    from interplab.data.tabular import Feature
    from interplab.methods.rationales import DecisionModel

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=gen, dtype=torch.float64)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    est = ensemble.GradientBoostingClassifier(n_estimators=20, random_state=0)
    est.fit(x.numpy(), y.numpy())
    lo, hi = float(x.min()) - 1, float(x.max()) + 1
    feats = [Feature(f"x{j}", "numeric", low=lo, high=hi) for j in range(6)]
    return (DecisionModel.from_predict_proba(est, feats), x[0]), {"baseline": x[:16], "seed": 0}


@functools.cache
def _data_attribution():
    from interplab.models.classifiers import ClassifierSpec, train_classifier

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(30, 5, generator=gen, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    spec = ClassifierSpec("logreg", n_in=5, n_classes=2, steps=20, lr=0.5, n_checkpoints=2)
    model = train_classifier(spec, x, y)
    return (model, (x, y), (x[:4], y[:4])), {"self_influence": True, "batch_size": 8}


def _failures():
    model = _tiny_mlp()
    units = [(ACT, i) for i in range(8)]
    return (model, _images(6, 1), _images(6, 2)), {"units": units, "seed": 0}


def _trigger_scan():
    return (_tiny_mlp(), _images(8)), {"steps": 3, "seed": 0}


def _attacks():
    model = _tiny_mlp()
    x = _images()
    return (model, x, _labels(model, x)), {"eps": 0.1, "seed": 0}


@functools.cache
def _token_attack():
    from interplab.models import trojan_tokens as tt
    from interplab.zoo import trojans

    model = trojans.load("trojan-token").model
    x = tt.clean_batch(4, torch.Generator().manual_seed(0))
    return (model, x), {"labels": x[:, 0], "positions": [1, 2], "steps": 2}


def _poisoning():
    model = _tiny_mlp()
    x = _images(40)
    return (model, x, _labels(model, x)), {"site": ACT, "seed": 0}


@functools.cache
def _auditing():
    from interplab.compile.hidden_rules import RuleFamily, compile_hidden_rule

    family = RuleFamily("reverse", (0, 1, 2, 3), 5)
    return (compile_hidden_rule(family, family.draw(11)), family), {"budget": 6, "seed": 0}


def _probing():
    gen = torch.Generator().manual_seed(0)
    y = [i % 2 for i in range(40)]
    x = torch.randn(40, 6, generator=gen) + torch.tensor(y)[:, None].float()
    return (x, y), {"seed": 0}


def _erasure():
    gen = torch.Generator().manual_seed(0)
    z = torch.tensor([i % 2 for i in range(40)])
    return (torch.randn(40, 6, generator=gen) + z[:, None].float(), z), {"seed": 0}


def _steering():
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(10, 6, generator=gen) + 1, torch.randn(12, 6, generator=gen)), {}


@functools.cache
def _das():
    import random

    from interplab.methods.causal import output, run_program
    from tests.eval.causal_cases import compiled

    model, inputs = compiled("hist")
    prog, var = model.program, "hist"
    rng = random.Random(0)
    pairs = [(rng.choice(inputs), rng.choice(inputs)) for _ in range(32)]
    outs = [output(prog, b, {var: run_program(prog, s)[var]}) for b, s in pairs]
    index = {repr(v): i for i, v in enumerate(model.output_values)}
    labels = torch.tensor([[index[repr(v)] for v in o] for o in outs])
    site = model.ground_truth.variables[var].resid_site
    base = model.encode([b for b, _ in pairs])
    source = model.encode([s for _, s in pairs])
    return (model, site, base, source, labels), {"k": 1, "steps": 3, "seed": 0}


CASES = {
    "dictionaries": _dictionaries,
    "attribution": _attribution,
    "rationales": _rationales,
    "data_attribution": _data_attribution,
    "failures": _failures,
    "attacks": _attacks,
    "poisoning": _poisoning,
    "auditing": _auditing,
    "probing": _probing,
    "erasure": _erasure,
    "steering": _steering,
}


@functools.cache
def _token_task():
    from interplab.models.pretrained.llama import LlamaConfig
    from interplab.tasks.ioi import ioi_task
    from tests.llama_helpers import random_llama
    from tests.methods.attribution.test_real_model_methods import WordTokenizer

    cfg = LlamaConfig(
        d_vocab=128, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, d_mlp=16, n_ctx=64
    )
    return (random_llama(cfg), ioi_task(WordTokenizer(), n=4)), {}


def _surrogate():
    (model, _), kwargs = _rationales()
    from interplab.zoo.tabular import get

    return (model, get("credit-linear", 0).test_rows[:40]), kwargs


OVERRIDES = {
    ("attribution", "activation_patching"): _token_task,
    ("attribution", "attribution_patching"): _token_task,
    ("attribution", "logit_lens_and_dla"): _token_task,
    ("rationales", "surrogate"): _surrogate,
    ("rationales", "shap_kernel"): _shap_rationales,
    ("rationales", "shap_permutation"): _shap_rationales,
    ("rationales", "shap_tree"): _shap_tree,
    ("failures", "neural_cleanse"): _trigger_scan,
    ("failures", "feature_synthesis"): _trigger_scan,
    ("failures", "weight_norm"): lambda: ((_tiny_mlp(),), {}),
    ("attacks", "gcg"): _token_attack,
    ("causal", "das"): _das,
}


def _specs():
    out = []
    for family in FAMILIES:
        for spec in registry.specs(family):
            if spec.fn.__module__ in SKIP_MODULES:
                continue
            marks = [pytest.mark.slow] if (family, spec.name) in SLOW else []
            out.append(pytest.param(spec, id=spec.key, marks=marks))
    return out


SPECS = _specs()


def test_every_family_of_the_contract_has_methods_and_a_case():
    seen = {s.values[0].family for s in SPECS}
    assert seen == set(FAMILIES)
    for p in SPECS:
        spec = p.values[0]
        assert (spec.family, spec.name) in OVERRIDES or spec.family in CASES, spec.key


@pytest.mark.parametrize("spec", SPECS)
def test_registration_is_consistent(spec):
    assert registry.get(spec.family, spec.name) is spec
    assert spec.kind in registry.KINDS and spec.cost_unit in registry.COST_UNITS
    assert (spec.kind == "oracle") == spec.name.startswith("oracle:")
    assert spec.metric and spec.summary, f"{spec.key} needs a metric and a docstring"
    assert callable(spec.fn)


@pytest.mark.parametrize("spec", SPECS)
def test_runs_on_a_tiny_case_and_returns_a_result_with_its_cost(spec):
    factory = OVERRIDES.get((spec.family, spec.name)) or CASES[spec.family]
    args, kwargs = factory()
    torch.manual_seed(0)
    fn = spec.fn
    if isinstance(fn, type):  # an estimator class: run it through its family's verb
        from interplab.methods.poisoning import detect_poison

        kw = dict(kwargs)
        if spec.name == "oracle:trigger":
            kw["trigger"] = (torch.ones(16), torch.ones(16))
        if spec.name == "sae_features":
            kw.update(steps=5, d_latent=8, k=2)
        result = detect_poison(*args, method=spec.name, **kw)
    else:
        result = fn(*args, **kwargs)
    assert isinstance(result, Result), f"{spec.key} returned {type(result).__name__}"
    cost = result.cost
    assert all(getattr(cost, u) >= 0 for u in COST_UNITS)
    if spec.cost_unit != "none":
        assert cost.of(spec.cost_unit) > 0, f"{spec.key}: no {spec.cost_unit} counted"
    assert result.seconds >= 0
