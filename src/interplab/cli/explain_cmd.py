"""``interplab explain ORGANISM --row N``: one decision, its checked rationale, as text/JSON/HTML.

Mounted by ``cli/main.py`` with ``register(app)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from interplab.errors import ConfigError


def explain(
    organism: str = typer.Argument(
        ...,
        help="A decision organism: credit-rule, credit-linear, "
        "credit-mlp, cancer-mlp or digits-rule.",
    ),
    row: int = typer.Option(0, "--row", help="Which test-set decision to explain (0-based)."),
    method: str = typer.Option(
        "kernel_shap",
        help="Attribution method behind the factors: "
        "kernel_shap, oracle:linear_shap, integrated_gradients, occlusion, "
        "permutation or random.",
    ),
    seed: int = typer.Option(0, help="Seed of the sampling and of the claims' checks."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the rationale as JSON here."),
    html_out: Path | None = typer.Option(
        None, "--html", help="Write a one-page HTML explanation a non-specialist can read here."
    ),
) -> None:
    """Explain one decision with claims that are each tested against the model before shown.

    Prints the outcome, the factors that counted, the smallest changes that would flip it
    (never touching age, sex or nationality) and each plain-language claim with its check;
    claims that fail their check are not stated as facts and are counted as dropped.

    Examples:
      interplab explain credit-rule --row 3
      interplab explain credit-mlp --row 0 --html runs/why.html --json runs/why.json
    """
    from interplab.methods.rationales import DecisionModel
    from interplab.methods.rationales import explain as run_explain
    from interplab.models.io import atomic_write_text
    from interplab.zoo.tabular import get

    org = get(organism, seed)
    n = org.test_rows.shape[0]
    if not 0 <= row < n:
        raise ConfigError(
            f"--row {row} is out of range: {organism} has {n} test decisions (0..{n - 1})"
        )
    model = DecisionModel.from_torch(org.model, org.features, outcomes=org.data.outcomes)
    rat = run_explain(model, org.test_rows[row], baseline=org.background, method=method, seed=seed)
    data = {"organism": organism, "row_index": row, **rat.to_dict()}
    typer.echo(
        f"{organism} test row {row}: {rat.outcome} (probability of '{rat.outcomes[1]}' "
        f"{rat.probability:.0%})"
    )
    for c in rat.claims:
        typer.echo(f"  ✓ {c.text}  [{c.evidence}]")
    typer.echo(
        f"  {len(rat.dropped)} of {len(rat.claims) + len(rat.dropped)} candidate claims failed "
        "their check and are not shown as facts"
    )
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(data, indent=1))
        typer.echo(f"wrote {json_out}")
    if html_out is not None:
        from interplab.report.rationales import decision_page

        atomic_write_text(
            html_out,
            decision_page(data, f"Why {organism} decided '{rat.outcome}' (test row {row})"),
        )
        typer.echo(f"wrote {html_out}")


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)
