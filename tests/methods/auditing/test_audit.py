"""Auditors: the query budget cannot be exceeded, and the white-box shortlist finds the trigger."""

from __future__ import annotations

import random

import pytest

from interplab.compile.hidden_rules import RuleFamily, compile_hidden_rule
from interplab.errors import ConfigError, UnknownNameError
from interplab.methods.auditing import (
    QueryBudgetExceeded,
    QueryProxy,
    audit,
    fixed_position_heads,
)
from interplab.methods.registry import names

FAMILY = RuleFamily("reverse", (0, 1, 2, 3), 5)


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
def organism():
    rule = FAMILY.draw(11)
    return rule, compile_hidden_rule(FAMILY, rule)


@pytest.mark.parametrize("method", names("auditing"))
@pytest.mark.parametrize("budget", [0, 1, 3, 7])
def test_budget_is_never_exceeded(organism, method, budget):
    rule, model = organism
    counted = CountingModel(model)
    report = audit(counted, FAMILY, method=method, budget=budget, seed=budget)
    assert counted.forwards <= budget
    assert report.cost.queries == counted.forwards
    assert report.rule in FAMILY.rules


def test_proxy_refuses_before_running(organism):
    _, model = organism
    counted = CountingModel(model)
    proxy = QueryProxy(counted, 2)
    proxy.query([[0, 1, 2, 3, 0]])
    with pytest.raises(QueryBudgetExceeded, match="over the budget of 2"):
        proxy.query([[0, 1, 2, 3, 0], [1, 1, 1, 1, 1]])
    assert counted.forwards == 1 and proxy.remaining == 1
    proxy.inspect([0, 0, 0, 0, 0])
    with pytest.raises(QueryBudgetExceeded):
        proxy.inspect([0, 0, 0, 0, 0])
    assert counted.forwards == 2
    with pytest.raises(ConfigError):
        QueryProxy(model, -1)


def test_attention_shortlist_names_the_trigger_position():
    for seed in range(4):
        rule = FAMILY.draw(100 + seed)
        model = compile_hidden_rule(FAMILY, rule)
        _, patterns = QueryProxy(model, 1).inspect(FAMILY.random_input(random.Random(seed)))
        assert {p for _, _, p in fixed_position_heads(patterns, FAMILY.length)} == {rule.p}


def test_generous_budget_recovers_a_behaviourally_equal_rule(organism):
    rule, model = organism
    rng = random.Random(0)
    inputs = [FAMILY.triggered_input(rng, rule) for _ in range(100)]
    truth = model(inputs)
    for method in ("white_box", "black_box_active"):
        stated = audit(model, FAMILY, method=method, budget=24, seed=1).rule
        assert [FAMILY.predict(x, stated) for x in inputs] == truth


def test_unknown_method_lists_the_valid_ones(organism):
    with pytest.raises(UnknownNameError, match="white_box"):
        audit(organism[1], FAMILY, method="telepathy", budget=4)
