"""The automated auditing game: state a compiled model's hidden rule within a query budget.

Each organism is a compiled RASP program (:mod:`interplab.zoo.hidden_rules`): a public base task
(reverse / sort / hist on inputs of one length) with one secret rule "when token a is at
position p, output q becomes c" drawn by seed from a stated finite family that every auditor
knows. Per seed, a population of organisms is audited by each arm with the same query budget
(one query = one forward pass on one input, activations included;
:mod:`interplab.methods.auditing`):

    interp:white_box            one forward pass with attention patterns shortlists trigger
                                positions (heads that read a fixed position), then greedy
                                version-space queries under that prior
    baseline:black_box          random inputs, a random survivor of the version space
    baseline:black_box_active   greedy version-space queries (random inputs + single-token edits)
    baseline:random             a random member of the family, no queries
    oracle:program              the rule planted in the RASP program, no queries

No arm has a hyperparameter to tune (the query budget is the task's, the same for all), so
no selection is made (``selection: None``).

``audit_success`` (per seed) is the share of organisms whose stated rule predicts the model's
outputs exactly on every one of 500 fresh inputs, half of them carrying the true rule's
trigger (so stating a rule that never fires fails); ``queries_used`` is the mean spent.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from interplab.eval.utility import ArmRun, Budget, UtilityTask, run_seeds

ARMS = (
    "interp:white_box",
    "baseline:black_box",
    "baseline:black_box_active",
    "baseline:random",
    "oracle:program",
)
N_CHECK = 500
_NOTE = (
    "every arm states one rule of the family after at most {q} model queries per organism "
    "(one query = one forward pass on one input, outputs and activations alike); the oracle "
    "reads the planted rule and spends none; success is checked on 500 fresh inputs, half "
    "carrying the true trigger"
)

#: task name -> (base programs, vocabulary, input length, organisms per seed, query budget)
SETTINGS: dict[str, tuple[tuple[str, ...], tuple[int, ...], int, int, int]] = {
    "audit-compiled-small": (("reverse", "sort"), (0, 1, 2, 3), 5, 6, 6),
    "audit-compiled-q4": (("reverse", "sort", "hist"), (0, 1, 2, 3, 4, 5), 6, 20, 4),
    "audit-compiled": (("reverse", "sort", "hist"), (0, 1, 2, 3, 4, 5), 6, 20, 8),
    "audit-compiled-q16": (("reverse", "sort", "hist"), (0, 1, 2, 3, 4, 5), 6, 20, 16),
}


def _task(name: str) -> UtilityTask:
    bases, vocab, length, n_org, q = SETTINGS[name]
    return UtilityTask(
        name=name,
        metric="audit_success",
        arms=ARMS,
        secondary=("queries_used",),
        budget=Budget("queries", q, _NOTE.format(q=q)),
        description=(
            f"find the hidden rule (token a at position p sets output q to c) in "
            f"{n_org} compiled {'/'.join(bases)} programs per seed, vocabulary "
            f"{len(vocab)}, length {length}, {q} queries each"
        ),
    )


TASKS: dict[str, UtilityTask] = {name: _task(name) for name in SETTINGS}


def check_statement(
    organism: Any, rule: Any, seed: int, n: int = N_CHECK, key: str = "audit-check"
) -> bool:
    """Whether ``rule`` predicts the organism's outputs on all of ``n`` fresh inputs (half of
    them carrying the true trigger); the referee's forward passes are not the auditor's. ``key``
    names the referee's random stream (one per task family)."""
    family = organism.family
    rng = random.Random(f"{key}:{seed}")
    inputs = [
        family.triggered_input(rng, organism.rule) if i % 2 == 0 else family.random_input(rng)
        for i in range(n)
    ]
    outputs = organism.model(inputs)
    return all(family.predict(x, rule) == y for x, y in zip(inputs, outputs))


def run_population(
    arm: str,
    seeds: list[int],
    draw: Callable[[int], list[Any]],
    budget: int,
    n_org: int,
    *,
    check_key: str = "audit-check",
    details: dict[str, Any] | None = None,
) -> ArmRun:
    """``arm`` audits the ``n_org`` organisms ``draw(seed)`` gives for each seed, each with
    ``budget`` queries (the oracle states the planted rule); success is
    :func:`check_statement` with the referee stream ``check_key``. Shared by every auditing
    task (position rules here, content rules in :mod:`.audit_content`)."""
    import torch

    from interplab.methods.auditing import audit

    torch.set_num_threads(1)
    examples: list[dict[str, Any]] = []

    def one(seed: int) -> tuple[dict[str, float], float, dict]:
        ok, spent = [], []
        for i, org in enumerate(draw(seed)):
            if arm == "oracle:program":
                stated, q = org.rule, 0
            else:
                report = audit(
                    org.model,
                    org.family,
                    method=arm.partition(":")[2],
                    budget=budget,
                    seed=seed * 101 + i,
                )
                stated, q = report.rule, report.cost.queries
            ok.append(check_statement(org, stated, seed=10_000 + seed * 101 + i, key=check_key))
            spent.append(q)
            if len(examples) < 6:
                examples.append(
                    {
                        "organism": org.name,
                        "true": org.rule.describe(),
                        "stated": stated.describe(),
                        "success": ok[-1],
                        "queries": q,
                    }
                )
        used = sum(spent) / len(spent)
        return {"audit_success": sum(ok) / len(ok), "queries_used": used}, used, {"selection": None}

    values, used, per_seed, failed = run_seeds(("audit_success", "queries_used"), seeds, one)
    return ArmRun(
        values=values,
        n={"audit_success": n_org, "queries_used": n_org},
        spent=used,
        details={
            "organisms_per_seed": n_org,
            **(details or {}),
            "query_budget": budget,
            "per_seed": per_seed,
            "check_inputs": N_CHECK,
            "examples": examples,
        },
        failed=failed,
    )


def run(task: UtilityTask, arm: str, seeds: list[int]) -> ArmRun:
    from interplab.zoo.hidden_rules import draw_organisms

    task.check_arm(arm)
    bases, vocab, length, n_org, budget = SETTINGS[task.name]
    return run_population(
        arm, seeds, lambda s: draw_organisms(bases, vocab, length, n_org, s), budget, n_org
    )
