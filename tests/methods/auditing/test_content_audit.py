"""Auditors on content-triggered rules: the version space, the budget and the white-box shortlists."""

from __future__ import annotations

import random

import numpy as np
import pytest

from interplab.compile.content_rules import ContentRule, ContentRuleFamily, compile_content_rule
from interplab.methods.auditing import (
    QueryProxy,
    VersionSpace,
    audit,
    content_keyed_heads,
    diverse_input,
    fixed_position_heads,
)
from interplab.methods.registry import names

FAMILY = ContentRuleFamily("sort", (0, 1, 2, 3), 5)
RULES = [
    ContentRule("any", 2, None, 1, 1, 3),
    ContentRule("pair", 0, 3, 1, 4, 1),
    ContentRule("count", 1, None, 2, 0, 2),
]


class CountingModel:
    """Wraps a compiled model and counts every input it runs forward, however it is called."""

    def __init__(self, model):
        self._model = model
        self.forwards = 0

    def __call__(self, inputs):
        self.forwards += len(inputs)
        return self._model(inputs)

    def run(self, tokens, *args, **kwargs):
        self.forwards += tokens.shape[0]
        return self._model.run(tokens, *args, **kwargs)

    def run_with_cache(self, tokens, *args, **kwargs):
        self.forwards += tokens.shape[0]
        return self._model.run_with_cache(tokens, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


@pytest.fixture(scope="module")
def models():
    return {r: compile_content_rule(FAMILY, r) for r in RULES}


def test_version_space_keeps_exactly_the_consistent_members(models):
    rule = RULES[1]
    model = models[rule]
    space = VersionSpace(FAMILY)
    rng = random.Random(0)
    seen = []
    for i in range(6):
        x = FAMILY.triggered_input(rng, rule) if i % 2 else FAMILY.random_input(rng)
        y = model([x])[0]
        space.observe(x, y)
        seen.append((x, y))
    brute = np.array([all(FAMILY.predict(x, r) == y for x, y in seen) for r in FAMILY.rules])
    assert np.array_equal(space.alive, brute)
    assert space.alive[FAMILY.rules.index(rule)]
    assert 0 < space.n_alive < len(FAMILY.rules)
    # outcomes: -1 exactly where a member predicts the base outputs
    x = FAMILY.triggered_input(rng, rule)
    base = FAMILY.base_outputs(x)
    expected = [FAMILY.predict(x, r) == base for r in FAMILY.rules]
    assert list(space.outcomes(x) == -1) == expected


@pytest.mark.parametrize("method", names("auditing"))
@pytest.mark.parametrize("budget", [0, 1, 4])
def test_every_auditor_states_a_member_within_budget(models, method, budget):
    counted = CountingModel(models[RULES[0]])
    report = audit(counted, FAMILY, method=method, budget=budget, seed=budget)
    assert counted.forwards <= budget
    assert report.cost.queries == counted.forwards
    assert report.rule in FAMILY.rules


def test_no_fixed_position_head_and_content_heads_name_the_trigger_tokens(models):
    rng = random.Random(3)
    for rule, model in models.items():
        for _ in range(5):
            x = FAMILY.triggered_input(rng, rule)
            _, patterns = QueryProxy(model, 1).inspect(x)
            assert fixed_position_heads(patterns, FAMILY.length) == []
        x = diverse_input(FAMILY, rng)
        assert set(x) == set(FAMILY.vocab)
        _, patterns = QueryProxy(model, 1).inspect(x)
        found = {t for _, _, ts in content_keyed_heads(patterns, x, FAMILY.vocab) for t in ts}
        assert found == set(rule.trigger_tokens)


def test_pooled_rules_leave_no_content_keyed_head():
    rng = random.Random(4)
    for rule in RULES:
        model = compile_content_rule(FAMILY, rule, "pooled")
        x = diverse_input(FAMILY, rng)
        _, patterns = QueryProxy(model, 1).inspect(x)
        assert content_keyed_heads(patterns, x, FAMILY.vocab) == []
        assert fixed_position_heads(patterns, FAMILY.length) == []
        report = audit(model, FAMILY, method="attention_content", budget=2, seed=0)
        assert report.evidence["shortlisted_tokens"] == []


def test_attribution_spends_one_query_and_has_one_row_per_output(models):
    model = CountingModel(models[RULES[0]])
    proxy = QueryProxy(model, 1)
    out, attr = proxy.attribute([2, 0, 1, 3, 3])
    assert model.forwards == 1 and proxy.remaining == 0
    assert out == FAMILY.predict([2, 0, 1, 3, 3], RULES[0])
    assert tuple(attr.shape) == (5, 5) and bool(attr.isfinite().all())


def test_generous_budget_recovers_a_behaviourally_equal_rule(models):
    rng = random.Random(0)
    for rule, model in models.items():
        inputs = [FAMILY.triggered_input(rng, rule) for _ in range(100)]
        inputs += [FAMILY.random_input(rng) for _ in range(100)]
        truth = model(inputs)
        for method in ("attention_content", "black_box_active"):
            stated = audit(model, FAMILY, method=method, budget=24, seed=1).rule
            assert [FAMILY.predict(x, stated) for x in inputs] == truth, (method, rule)
