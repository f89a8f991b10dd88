"""Content-rule organisms for the auditing game (:mod:`interplab.compile.content_rules`).

An organism is a compiled RASP program: a public base task (reverse, sort, hist) with one secret
content-triggered rule built in ("token a appears", "tokens a and b both appear", "token a appears
at least m times" -> output q becomes c), in one of the compile styles of
:mod:`interplab.compile.content_rules` ("keyed": content-keyed heads; "pooled": uniform heads
over MLP token detectors). :func:`content_rule_organism` compiles it once and caches it under
``cache_dir()/content_rules/<style>-<base>-L<len>-<vocab>-<rule>-v<FORMAT_VERSION>/``
(safetensors + JSON sidecar via :func:`interplab.compile.save_compiled`, beside ``truth.json``
with the planted rule, the recipe fingerprint and what the checks measured). A cache whose truth
does not match the recipe is rebuilt.

Before it is cached, the organism is verified; a failure raises
:class:`~interplab.errors.VerificationError` naming what failed, never a silent organism:

* weights vs family: the compiled model's outputs equal :meth:`ContentRuleFamily.predict` under
  the planted rule on EVERY input (all ``|vocab|^L``; refused above MAX_EXHAUSTIVE inputs);
* program vs family: the RASP evaluator agrees with the same predictions on PROGRAM_SAMPLE seeded
  inputs (half carrying the trigger), so the weights agree with the program too;
* no fixed-position rule head: on every input, no head that computes the rule (the heads writing
  ``cr_count_*`` or, in the pooled style, ``cr_share_*``) puts >= 0.9 of every query's
  attention on one and the same non-BOS key (the criterion of
  :func:`interplab.methods.auditing.fixed_position_heads`). Heads of the base task flagged on
  some input are counted and recorded, not refused (they are public).

:func:`draw_organisms` draws a seeded population (base programs cycled, rules by seed).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interplab._config import cache_dir
from interplab.compile.content_rules import (
    ContentRule,
    ContentRuleFamily,
    compile_content_rule,
    content_rule_program,
)
from interplab.errors import VerificationError, WeightsError
from interplab.models import weights_cache

FORMAT_VERSION = 1
MAX_EXHAUSTIVE = 50_000
PROGRAM_SAMPLE = 200
FIXED_ATTENTION = 0.9
_CHUNK = 8192


@dataclass(frozen=True, eq=False)
class ContentRuleOrganism:
    """A compiled model, its public family, its planted rule (the truth) and the checks."""

    family: ContentRuleFamily
    rule: ContentRule
    model: Any  # CompiledModel
    agreement: float
    checks: dict[str, Any]
    style: str = "keyed"

    @property
    def program(self) -> Any:
        return content_rule_program(self.family, self.rule, self.style)

    @property
    def name(self) -> str:
        r = self.rule
        trig = f"{r.a}&{r.b}" if r.kind == "pair" else f"{r.a}x{r.m}"
        return f"content-{self.style}-{self.family.base}-{r.kind}-{trig}-q{r.q}c{r.c}"


def _fingerprint(family: ContentRuleFamily, rule: ContentRule, style: str) -> str:
    recipe = {
        "style": style,
        "base": family.base,
        "vocab": list(family.vocab),
        "length": family.length,
        "counts": list(family.counts),
        "rule": rule.as_dict(),
        "format_version": FORMAT_VERSION,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def _directory(family: ContentRuleFamily, rule: ContentRule, style: str) -> Path:
    vocab = "-".join(str(v) for v in family.vocab)
    r = rule
    return (
        cache_dir() / "content_rules" / f"{style}-{family.base}-L{family.length}-{vocab}-"
        f"{r.kind}-a{r.a}b{r.b}m{r.m}q{r.q}c{r.c}-v{FORMAT_VERSION}"
    )


def rule_heads(model: Any) -> set[tuple[int, int]]:
    """(layer, head) of every head that computes the rule (writes a ``cr_count_*`` or
    ``cr_share_*`` variable)."""
    out = set()
    for label, var in model.ground_truth.variables.items():
        if label.startswith(("cr_count", "cr_share")):
            out |= {(s.layer, s.head) for s in var.sites if s.head is not None}
    return out


def verify(
    model: Any, family: ContentRuleFamily, rule: ContentRule, style: str = "keyed"
) -> dict[str, Any]:
    """Run the three checks of the module docstring; raise VerificationError on a failure,
    else return what they measured."""
    import torch

    from interplab.compile import rasp
    from interplab.core.sites import Component, Site

    start = time.perf_counter()
    n_all = len(family.vocab) ** family.length
    if n_all > MAX_EXHAUSTIVE:
        raise VerificationError(
            f"content-rule organism {family.base}/{rule}: {n_all} inputs exceed the exhaustive "
            f"check's limit of {MAX_EXHAUSTIVE}; use a smaller vocabulary or length"
        )
    inputs = [list(x) for x in itertools.product(family.vocab, repeat=family.length)]
    out_index = {v: i for i, v in enumerate(model.output_values or ())}  # the model's logit order
    expected = torch.tensor(
        [[out_index.get(v, -1) for v in family.predict(x, rule)] for x in inputs]
    )
    n = family.length
    sites = [Site(Component.ATTN_PATTERN, layer) for layer in range(model.cfg.n_layers)]
    mine = rule_heads(model)
    if not mine:
        raise VerificationError(f"content-rule organism {family.base}/{rule}: no rule head found")
    wrong = 0
    flagged: dict[tuple[int, int], int] = {}
    with torch.no_grad():
        for s in range(0, len(inputs), _CHUNK):
            chunk = inputs[s : s + _CHUNK]
            logits, cache = model.run_with_cache(model.encode(chunk), sites=sites)
            best, idx = logits[:, 1:].max(dim=-1)
            got = torch.where(best > 0.5, idx, torch.full_like(idx, -2))
            wrong += int((got != expected[s : s + _CHUNK]).any(dim=-1).sum())
            for layer, site in enumerate(sites):
                rows = cache[site][:, :, 1 : n + 1, :]  # [batch, head, query, key]
                top, arg = rows.max(dim=-1)
                fixed = (
                    (arg.min(dim=-1).values == arg.max(dim=-1).values)
                    & (arg[..., 0] > 0)
                    & (top.min(dim=-1).values >= FIXED_ATTENTION)
                )
                for head in range(fixed.shape[1]):
                    k = int(fixed[:, head].sum())
                    if k:
                        flagged[(layer, head)] = flagged.get((layer, head), 0) + k
    agreement = 1.0 - wrong / len(inputs)
    if wrong:
        raise VerificationError(
            f"content-rule organism {family.base}/{rule.describe()}: the compiled weights "
            f"disagree with the family's prediction on {wrong} of {len(inputs)} inputs"
        )
    rng = random.Random(f"content-rule-program-check:{rule}")
    sample = [
        family.triggered_input(rng, rule) if i % 2 == 0 else family.random_input(rng)
        for i in range(PROGRAM_SAMPLE)
    ]
    program = content_rule_program(family, rule, style)
    bad = sum(rasp.evaluate(program, x) != family.predict(x, rule) for x in sample)
    if bad:
        raise VerificationError(
            f"content-rule organism {family.base}/{rule.describe()}: the RASP program "
            f"disagrees with the family's prediction on {bad} of {len(sample)} inputs"
        )
    rule_flagged = sorted(h for h in flagged if h in mine)
    if rule_flagged:
        raise VerificationError(
            f"content-rule organism {family.base}/{rule.describe()}: rule heads {rule_flagged} "
            f"read one fixed position (>= {FIXED_ATTENTION} from every query) on some input"
        )
    return {
        "inputs_checked": len(inputs),
        "agreement": agreement,
        "program_inputs_checked": len(sample),
        "rule_heads": sorted(mine),
        "rule_heads_fixed_position_inputs": 0,
        "base_heads_fixed_position_inputs": {
            f"L{l}H{h}": k for (l, h), k in sorted(flagged.items())
        },
        "check_seconds": round(time.perf_counter() - start, 3),
    }


def content_rule_organism(
    family: ContentRuleFamily, rule: ContentRule, style: str = "keyed"
) -> ContentRuleOrganism:
    """The organism for ``rule`` compiled in ``style`` (compiled, verified and cached on first
    use, under the entry's lock so that two processes asking for it at once compile it once)."""
    with weights_cache.entry_lock(_directory(family, rule, style)):
        return _organism_entry(family, rule, style)


def _organism_entry(
    family: ContentRuleFamily, rule: ContentRule, style: str
) -> ContentRuleOrganism:
    from interplab.compile import load_compiled, save_compiled
    from interplab.models.io import atomic_write_text

    directory = _directory(family, rule, style)
    truth_file = directory / "truth.json"
    fingerprint = _fingerprint(family, rule, style)
    if truth_file.exists():
        try:
            truth = json.loads(truth_file.read_text())
            if truth.get("fingerprint") == fingerprint and truth.get("rule") == rule.as_dict():
                return ContentRuleOrganism(
                    family,
                    rule,
                    load_compiled(directory),
                    truth["agreement"],
                    truth["checks"],
                    style,
                )
        except (ValueError, KeyError, WeightsError, OSError):
            pass  # a damaged or stale cache: rebuild below
    start = time.perf_counter()
    model = compile_content_rule(family, rule, style)
    compile_seconds = time.perf_counter() - start
    checks = verify(model, family, rule, style)
    checks["compile_seconds"] = round(compile_seconds, 3)
    save_compiled(directory, model)
    atomic_write_text(
        truth_file,
        json.dumps(
            {
                "style": style,
                "base": family.base,
                "vocab": list(family.vocab),
                "length": family.length,
                "counts": list(family.counts),
                "rule": rule.as_dict(),
                "description": rule.describe(),
                "agreement": checks["agreement"],
                "checks": checks,
                "fingerprint": fingerprint,
                "format_version": FORMAT_VERSION,
            },
            indent=1,
        ),
    )
    return ContentRuleOrganism(family, rule, model, checks["agreement"], checks, style)


def draw_organisms(
    bases: Sequence[str],
    vocab: Sequence[int],
    length: int,
    n: int,
    seed: int,
    style: str = "keyed",
) -> list[ContentRuleOrganism]:
    """``n`` organisms compiled in ``style``: base programs cycled through ``bases``, each rule
    drawn by seed (the same rules for every style)."""
    out = []
    for i in range(n):
        family = ContentRuleFamily(bases[i % len(bases)], tuple(vocab), length)
        out.append(content_rule_organism(family, family.draw(seed * 7919 + i), style))
    return out


__all__ = [
    "ContentRuleOrganism",
    "content_rule_organism",
    "draw_organisms",
    "rule_heads",
    "verify",
]
