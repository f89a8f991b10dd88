"""Hidden-rule organisms are compiled once, checked against their program and cached."""

from __future__ import annotations

from interplab.compile.hidden_rules import RuleFamily
from interplab.zoo.hidden_rules import _directory, draw_organisms, hidden_rule_organism


def test_organism_is_cached_and_reloads_identically():
    family = RuleFamily("sort", (0, 1, 2), 4)
    rule = family.draw(1)
    first = hidden_rule_organism(family, rule)
    assert first.agreement == 1.0
    assert (_directory(family, rule) / "truth.json").exists()
    again = hidden_rule_organism(family, rule)
    inputs = [family.random_input(__import__("random").Random(i)) for i in range(50)]
    assert again.model(inputs) == first.model(inputs)
    assert again.rule == rule and again.name.startswith("hidden-sort-")


def test_damaged_truth_file_is_rebuilt():
    family = RuleFamily("reverse", (0, 1, 2), 4)
    rule = family.draw(2)
    hidden_rule_organism(family, rule)
    (_directory(family, rule) / "truth.json").write_text("{not json")
    org = hidden_rule_organism(family, rule)
    assert org.agreement == 1.0


def test_draw_organisms_cycles_bases_and_is_seeded():
    a = draw_organisms(("reverse", "hist"), (0, 1, 2), 4, 4, seed=5)
    b = draw_organisms(("reverse", "hist"), (0, 1, 2), 4, 4, seed=5)
    assert [o.family.base for o in a] == ["reverse", "hist", "reverse", "hist"]
    assert [o.rule for o in a] == [o.rule for o in b]
