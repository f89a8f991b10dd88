"""``interplab explain ORGANISM --row N``: one decision, its checked rationale, as text/JSON/HTML.

Mounted by ``cli/main.py`` with ``register(app)``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from interplab.cli._common import (
    check_outputs,
    html_file_option,
    json_file_option,
    say,
    to_stdout,
    write_json,
)
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
    json_out: Path | None = json_file_option("Write the rationale as JSON"),
    html_out: Path | None = html_file_option(
        "Write a one-page HTML explanation a non-specialist can read here."
    ),
) -> None:
    """Explain one decision with claims that are each tested against the model before shown.

    Prints the outcome, the attribution's top factors (each marked checked, failed or
    unchecked by the claim tested about it), the smallest changes that would flip it
    (never touching age, sex or nationality) and each plain-language claim with its check;
    claims that fail their check are not stated as facts and are counted as dropped.

    Examples:
      interplab explain credit-rule --row 3
      interplab explain credit-mlp --row 0 --html runs/why.html --json runs/why.json
    """
    from interplab.methods.rationales import DecisionModel
    from interplab.methods.rationales import explain as run_explain
    from interplab.models.io import atomic_write_text
    from interplab.report.rationales import factor_checks
    from interplab.zoo.tabular import get

    check_outputs(json_out, html_out)
    echo = say(json_out)
    org = get(organism, seed)
    n = org.test_rows.shape[0]
    if not 0 <= row < n:
        raise ConfigError(
            f"--row {row} is out of range: {organism} has {n} test decisions (0..{n - 1})"
        )
    model = DecisionModel.from_torch(org.model, org.features, outcomes=org.data.outcomes)
    rat = run_explain(model, org.test_rows[row], baseline=org.background, method=method, seed=seed)
    data = {"organism": organism, "row_index": row, **rat.to_dict()}
    checks = factor_checks(data)
    vals = data["attributions"]["values"]
    order = sorted(range(len(vals)), key=lambda j: -abs(vals[j]))[:5]
    data["factor_checks"] = {
        org.features[j].name: checks.get(org.features[j].name, {"status": "unchecked"})["status"]
        for j in sorted(range(len(vals)), key=lambda j: -abs(vals[j]))
    }
    echo(
        f"{organism} test row {row}: {rat.outcome} (probability of '{rat.outcomes[1]}' "
        f"{rat.probability:.0%})"
    )
    echo(f"  top factors by {data['attributions']['method']} (estimates, each with its check):")
    for j in order:
        name = org.features[j].name
        echo(f"    {name:<28} {vals[j]:+.3f}  [{data['factor_checks'][name]}]")
    for c in rat.claims:
        echo(f"  ✓ {c.text}  [{c.evidence}]")
    echo(
        f"  {len(rat.dropped)} of {len(rat.claims) + len(rat.dropped)} candidate claims failed "
        "their check and are not shown as facts"
    )
    write_json(json_out, data, indent=None if to_stdout(json_out) else 1)
    if html_out is not None:
        from interplab.report.rationales import decision_page

        atomic_write_text(
            html_out,
            decision_page(data, f"Why {organism} decided '{rat.outcome}' (test row {row})"),
        )
        echo(f"wrote {html_out}")


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)
