"""Hidden-rule organisms for the auditing game (:mod:`interplab.compile.hidden_rules`).

An organism is a compiled RASP program: a public base task (reverse, sort, hist) with one
secret rule of a stated family built in. :func:`hidden_rule_organism` compiles it once and caches
it under ``cache_dir()/hidden_rules/<base>-v<len>-<vocab>-<rule>-v<FORMAT_VERSION>/`` (safetensors
+ JSON sidecar via :func:`interplab.compile.save_compiled`, beside ``truth.json`` with the
planted rule and the measured agreement of weights and program); a cache whose truth file does
not name the same rule is rebuilt. Before it is cached, the compiled model is checked against the
RASP evaluator on every input (or a seeded sample of 3,000 when there are more): an organism
whose weights disagree with its program is an error, never a silent organism.
:func:`draw_organisms` draws a seeded population (base programs cycled, rules by seed).
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interplab._config import cache_dir
from interplab.compile.hidden_rules import (
    HiddenRule,
    RuleFamily,
    compile_hidden_rule,
    hidden_rule_program,
)
from interplab.errors import WeightsError
from interplab.models import weights_cache

FORMAT_VERSION = 1
AGREEMENT_SAMPLE = 3000


@dataclass(frozen=True, eq=False)
class HiddenRuleOrganism:
    """A compiled model, its public family and its planted rule (the truth)."""

    family: RuleFamily
    rule: HiddenRule
    model: Any  # CompiledModel
    agreement: float

    @property
    def program(self) -> Any:
        return hidden_rule_program(self.family, self.rule)

    @property
    def name(self) -> str:
        r = self.rule
        return f"hidden-{self.family.base}-a{r.a}p{r.p}q{r.q}c{r.c}"


def _directory(family: RuleFamily, rule: HiddenRule) -> Path:
    vocab = "-".join(str(v) for v in family.vocab)
    return (
        cache_dir() / "hidden_rules" / f"{family.base}-L{family.length}-{vocab}-"
        f"a{rule.a}p{rule.p}q{rule.q}c{rule.c}-v{FORMAT_VERSION}"
    )


def _check_inputs(family: RuleFamily) -> list[list[int]]:
    n_all = len(family.vocab) ** family.length
    if n_all <= AGREEMENT_SAMPLE:
        return [list(x) for x in itertools.product(family.vocab, repeat=family.length)]
    rng = random.Random(0)
    return [family.random_input(rng) for _ in range(AGREEMENT_SAMPLE)]


def hidden_rule_organism(family: RuleFamily, rule: HiddenRule) -> HiddenRuleOrganism:
    """The organism for ``rule`` (compiled, checked and cached on first use, under the entry's
    lock so that two processes asking for it at once compile it once)."""
    with weights_cache.entry_lock(_directory(family, rule)):
        return _organism_entry(family, rule)


def _organism_entry(family: RuleFamily, rule: HiddenRule) -> HiddenRuleOrganism:
    from interplab.compile import load_compiled, save_compiled
    from interplab.compile.agreement import check_agreement
    from interplab.models.io import atomic_write_text

    directory = _directory(family, rule)
    truth_file = directory / "truth.json"
    if truth_file.exists():
        try:
            truth = json.loads(truth_file.read_text())
            if truth.get("rule") == rule.as_dict() and truth.get("base") == family.base:
                return HiddenRuleOrganism(
                    family, rule, load_compiled(directory), truth["agreement"]
                )
        except (ValueError, KeyError, WeightsError, OSError):
            pass  # a damaged cache: rebuild below
    model = compile_hidden_rule(family, rule)
    inputs = _check_inputs(family)
    agreement = check_agreement(model, hidden_rule_program(family, rule), inputs).agreement
    if agreement < 1.0:
        raise WeightsError(
            f"the compiled hidden-rule organism {family.base} / {rule} agrees with "
            f"its RASP program on only {agreement:.4f} of {len(inputs)} inputs"
        )
    save_compiled(directory, model)
    atomic_write_text(
        truth_file,
        json.dumps(
            {
                "base": family.base,
                "vocab": list(family.vocab),
                "length": family.length,
                "rule": rule.as_dict(),
                "agreement": agreement,
                "inputs_checked": len(inputs),
                "format_version": FORMAT_VERSION,
            },
            indent=1,
        ),
    )
    return HiddenRuleOrganism(family, rule, model, agreement)


def draw_organisms(
    bases: Sequence[str], vocab: Sequence[int], length: int, n: int, seed: int
) -> list[HiddenRuleOrganism]:
    """``n`` organisms: base programs cycled through ``bases``, each rule drawn by seed."""
    out = []
    for i in range(n):
        family = RuleFamily(bases[i % len(bases)], tuple(vocab), length)
        out.append(hidden_rule_organism(family, family.draw(seed * 7919 + i)))
    return out


__all__ = ["HiddenRuleOrganism", "draw_organisms", "hidden_rule_organism"]
