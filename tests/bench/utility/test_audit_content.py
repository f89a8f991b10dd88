"""The content-rule auditing task: its check separates right from wrong rules; every arm runs."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from interplab.bench.utility.audit_content import SETTINGS, TASKS, check_statement, run
from interplab.eval.utility import arm_kind
from interplab.zoo.content_rules import draw_organisms

SMALL = TASKS["audit-content-small"]


@pytest.fixture(scope="module")
def organisms():
    bases, vocab, length, _, _, _ = SETTINGS[SMALL.name]
    return draw_organisms(bases, vocab, length, 4, seed=3)


def test_oracle_rule_passes_and_wrong_rules_fail(organisms):
    for org in organisms:
        r = org.rule
        assert org.agreement == 1.0 and org.checks["inputs_checked"] == 4**5
        assert check_statement(org, r, seed=1)
        other_c = next(c for c in org.family.outputs if c != r.c)
        other_a = next(a for a in org.family.vocab if a not in r.trigger_tokens)
        assert not check_statement(org, replace(r, c=other_c), seed=1)
        assert not check_statement(org, replace(r, a=other_a), seed=1)
        assert not check_statement(org, None, seed=1)  # "no rule": the base task alone


def test_tasks_are_well_formed():
    for task in TASKS.values():
        assert task.metric == "audit_success" and task.budget.kind == "queries"
        assert {arm_kind(a) for a in task.arms} == {"interp", "baseline", "oracle"}
        assert "baseline:random" in task.arms
    assert [
        TASKS[n].budget.amount for n in ("audit-content-q4", "audit-content", "audit-content-q16")
    ] == [4, 8, 16]


@pytest.mark.parametrize("arm", SMALL.arms)
def test_each_arm_runs_on_the_small_task(arm):
    out = run(SMALL, arm, SMALL.seeds(0))
    assert list(out.values) == ["audit_success", "queries_used"]
    for vals in out.values.values():
        assert len(vals) == 3 and all(math.isfinite(v) for v in vals)
    assert all(0 <= v <= 1 for v in out.values["audit_success"])
    assert all(q <= SMALL.budget.amount for q in out.values["queries_used"])
    if arm == "oracle:program":
        assert out.values["audit_success"] == [1.0, 1.0, 1.0]
