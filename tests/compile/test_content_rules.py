"""Content-triggered hidden rules: the family, its vectorised members and the compiled weights."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from interplab.compile.content_rules import (
    KINDS,
    ContentRule,
    ContentRuleFamily,
    compile_content_rule,
    content_rule_program,
)
from interplab.errors import ConfigError, UnknownNameError, VerificationError
from interplab.methods.auditing import fixed_position_heads
from interplab.zoo.content_rules import rule_heads, verify

FAMILY = ContentRuleFamily("reverse", (0, 1, 2), 4)


def test_members_are_enumerated_once_per_kind():
    rules = FAMILY.rules
    nv, n, no = 3, 4, 3
    assert len(rules) == len(set(rules))
    assert len(rules) == (nv + nv * (nv - 1) // 2 + nv * len(FAMILY.counts)) * n * no
    assert {r.kind for r in rules} == set(KINDS)
    assert all(r.a < r.b for r in rules if r.kind == "pair")


def test_vectorised_fires_matches_each_rule():
    arrays = FAMILY.member_arrays()
    tok = {v: i for i, v in enumerate(FAMILY.vocab)}
    rng = random.Random(0)
    for _ in range(30):
        xs = FAMILY.random_input(rng)
        fires = FAMILY.fires(np.array([tok[v] for v in xs]), arrays)
        assert list(fires) == [r.triggered(xs) for r in FAMILY.rules]


def test_draw_gives_rules_that_change_an_output_and_triggered_inputs_trigger():
    rng = random.Random(1)
    kinds = set()
    for seed in range(12):
        rule = FAMILY.draw(seed)
        kinds.add(rule.kind)
        assert rule in FAMILY.rules and FAMILY.changes_output(rule)
        assert all(FAMILY.triggered_input(rng, rule).count(rule.a) >= rule.m for _ in range(20))
        x = FAMILY.triggered_input(rng, rule)
        assert rule.triggered(x) and FAMILY.predict(x, rule)[rule.q] == rule.c
    assert kinds == set(KINDS)


@pytest.mark.parametrize(
    "rule",
    [
        ContentRule("any", 1, None, 1, 0, 2),
        ContentRule("pair", 0, 2, 1, 3, 1),
        ContentRule("count", 2, None, 2, 1, 0),
    ],
)
@pytest.mark.parametrize(
    "base,style", [("reverse", "keyed"), ("sort", "keyed"), ("sort", "pooled")]
)
def test_compiled_weights_agree_with_the_family_on_every_input(base, style, rule):
    family = ContentRuleFamily(base, FAMILY.vocab, FAMILY.length)
    model = compile_content_rule(family, rule, style)
    inputs = [list(x) for x in itertools.product(family.vocab, repeat=family.length)]
    assert model(inputs) == [family.predict(x, rule) for x in inputs]
    assert any(family.predict(x, rule) != family.base_outputs(x) for x in inputs)
    # no head that computes the rule reads one fixed position, on any input
    mine = rule_heads(model)
    assert mine
    import torch

    from interplab.core.sites import Component, Site

    sites = [Site(Component.ATTN_PATTERN, layer) for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(model.encode(inputs), sites=sites)
    for b in range(len(inputs)):
        patterns = {layer: cache[s][b] for layer, s in enumerate(sites)}
        flagged = {(lay, h) for lay, h, _ in fixed_position_heads(patterns, family.length)}
        assert not flagged & mine
    checks = verify(model, family, rule, style)
    assert checks["agreement"] == 1.0 and checks["inputs_checked"] == len(inputs)
    assert checks["rule_heads"] == sorted(mine)


def test_verify_refuses_an_organism_whose_weights_hold_another_rule():
    rule = ContentRule("any", 1, None, 1, 0, 2)
    model = compile_content_rule(FAMILY, rule)
    with pytest.raises(VerificationError, match="disagree"):
        verify(model, FAMILY, ContentRule("any", 2, None, 1, 0, 2))


def test_bad_families_and_rules_are_refused():
    with pytest.raises(UnknownNameError):
        ContentRuleFamily("rot13", (0, 1), 3)
    with pytest.raises(ConfigError):
        ContentRuleFamily("reverse", (0, 1), 3, counts=(5,))
    with pytest.raises(ConfigError, match="not a member"):
        content_rule_program(FAMILY, ContentRule("pair", 2, 1, 1, 0, 0))
    with pytest.raises(ConfigError, match="not a member"):
        content_rule_program(FAMILY, ContentRule("count", 1, None, 9, 0, 0))
    with pytest.raises(UnknownNameError, match="pooled"):
        content_rule_program(FAMILY, ContentRule("any", 1, None, 1, 0, 0), style="hidden")


def test_pooled_heads_attend_uniformly_whatever_the_input():
    """In the pooled style the rule's heads put 1/L on every input position on every input, so
    their attention carries nothing about the trigger token."""
    import torch

    from interplab.core.sites import Component, Site

    rule = ContentRule("pair", 0, 2, 1, 3, 1)
    model = compile_content_rule(FAMILY, rule, "pooled")
    inputs = [list(x) for x in itertools.product(FAMILY.vocab, repeat=FAMILY.length)]
    mine = rule_heads(model)
    assert len(mine) == 2
    n = FAMILY.length
    for layer, head in mine:
        site = Site(Component.ATTN_PATTERN, layer)
        with torch.no_grad():
            _, cache = model.run_with_cache(model.encode(inputs), sites=[site])
        pat = cache[site][:, head, 1 : n + 1, 1 : n + 1]
        assert torch.allclose(pat, torch.full_like(pat, 1 / n), atol=1e-3)
