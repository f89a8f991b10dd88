"""The rationale: claims are tested; a false claim fails its test; the surrogate is scored."""

import torch

from interplab.methods.rationales import DecisionModel, explain, fit_surrogate
from interplab.methods.rationales.rationale import Claim, check_claim
from interplab.zoo.tabular import get


def _setup(name):
    org = get(name)
    return org, DecisionModel.from_torch(org.model, org.features, outcomes=org.data.outcomes)


def test_rationale_shows_only_claims_that_passed_and_counts_the_rest():
    org, model = _setup("credit-rule")
    r = explain(model, org.test_rows[3], baseline=org.background)
    assert r.claims and all(c.passed for c in r.claims) and all(not c.passed for c in r.dropped)
    kinds = {c.kind for c in r.claims + r.dropped}
    assert {"counterfactual", "irrelevant"} <= kinds
    protected = {f.name for f in org.features if f.protected}
    stated = {c.params.get("feature") for c in r.claims + r.dropped if c.kind == "irrelevant"}
    assert protected <= stated  # every protected feature is checked
    data = r.to_dict()
    assert data["n_claims_tested"] == len(r.claims) + len(r.dropped)


def test_a_false_claim_fails_its_test():
    """On credit-rule the duration decides: "duration did not matter" must fail on a row where
    crossing 18 months flips the decision; "age did not matter" must hold."""
    org, model = _setup("credit-rule")
    gen = torch.Generator().manual_seed(0)
    names = org.data.names
    for x in org.test_rows:
        probe = x.repeat(2, 1)
        probe[0, names.index("duration")], probe[1, names.index("duration")] = 6, 60
        if bool(model.decide(probe[:1])[0]) != bool(model.decide(probe[1:])[0]):
            break
    false = check_claim(
        Claim("irrelevant", "duration did not matter", {"feature": "duration"}, ""),
        model,
        x,
        org.background,
        gen,
    )
    true = check_claim(
        Claim("irrelevant", "age did not matter", {"feature": "age"}, ""),
        model,
        x,
        org.background,
        gen,
    )
    assert not false.passed and true.passed


def test_surrogate_beats_the_majority_floor_on_the_rule_organism():
    org, model = _setup("credit-rule")
    s = fit_surrogate(model, org.test_rows, baseline=org.background)
    assert s.fidelity > s.majority_fidelity + 0.1
    assert any("duration" in rule for rule in s.rules(org.data.outcomes))
