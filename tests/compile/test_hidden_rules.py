"""Hidden-rule programs: the planted rule is in the compiled weights (checked by intervention)."""

from __future__ import annotations

import itertools
import random

import pytest

from interplab.compile import rasp
from interplab.compile.agreement import check_agreement
from interplab.compile.hidden_rules import (
    BASES,
    HiddenRule,
    RuleFamily,
    compile_hidden_rule,
    hidden_rule_program,
)
from interplab.errors import ConfigError, UnknownNameError

FAMILIES = [
    RuleFamily("reverse", (0, 1, 2), 4),
    RuleFamily("sort", (0, 1, 2), 4),
    RuleFamily("hist", (0, 1, 2), 4),
]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.base)
def test_reference_base_matches_the_rasp_base(family):
    program = BASES[family.base][0](family.vocab, family.length)
    for x in itertools.product(family.vocab, repeat=family.length):
        assert family.base_outputs(list(x)) == rasp.evaluate(program, list(x))


@pytest.fixture(scope="module", params=FAMILIES, ids=lambda f: f.base)
def compiled(request):
    family = request.param
    rule = family.draw(3)
    return family, rule, compile_hidden_rule(family, rule)


def test_compiled_model_agrees_with_program_and_prediction(compiled):
    family, rule, model = compiled
    program = hidden_rule_program(family, rule)
    inputs = [list(x) for x in itertools.product(family.vocab, repeat=family.length)]
    assert check_agreement(model, program, inputs).agreement == 1.0
    outputs = model(inputs)
    assert all(family.predict(x, rule) == y for x, y in zip(inputs, outputs))


def test_rule_fires_by_intervention(compiled):
    """Setting the trigger makes output q equal c; removing it restores the base task."""
    family, rule, model = compiled
    rng = random.Random(0)
    changed = 0
    for _ in range(60):
        x = family.random_input(rng)
        on = list(x)
        on[rule.p] = rule.a
        off = list(x)
        off[rule.p] = next(v for v in family.vocab if v != rule.a)
        y_on, y_off = model([on, off])
        assert y_on[rule.q] == rule.c
        assert y_off == family.base_outputs(off)
        base_on = family.base_outputs(on)
        assert [v for i, v in enumerate(y_on) if i != rule.q] == [
            v for i, v in enumerate(base_on) if i != rule.q
        ]
        changed += base_on[rule.q] != rule.c
    assert changed > 0  # the rule is visible, not a no-op


def test_draw_is_seeded_and_never_degenerate():
    family = RuleFamily("reverse", (0, 1, 2, 3), 5)
    assert family.draw(7) == family.draw(7)
    drawn = {family.draw(s) for s in range(40)}
    assert len(drawn) > 20
    assert all(family.changes_output(r) for r in drawn)
    # reverse: q = L-1-p with c = a never changes anything
    assert not family.changes_output(HiddenRule(2, 1, 3, 2))
    assert len(family.rules) == 4 * 5 * 5 * 4


def test_bad_family_and_rule_are_clear_errors():
    with pytest.raises(UnknownNameError):
        RuleFamily("nope", (0, 1), 3)
    with pytest.raises(ConfigError, match="distinct integer"):
        RuleFamily("reverse", ("a", "b"), 3)
    with pytest.raises(ConfigError, match="length"):
        RuleFamily("reverse", (0, 1), 1)
    with pytest.raises(ConfigError, match="not a member"):
        hidden_rule_program(RuleFamily("reverse", (0, 1), 3), HiddenRule(0, 5, 0, 1))
