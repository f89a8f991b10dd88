"""``interplab explain ORGANISM --row N``: one decision, its checked rationale, as text/JSON/HTML.

Several classes (e.g. ``credit-tiers``): ``--target`` (default: the predicted class) is explained
against ``--versus`` (``runner-up``, the default: the best other class at the row; ``rest``:
one-vs-rest; ``any``; or a class), and recourse goes to ``--recourse-to`` (default: the runner-up);
classes by name or index, an unknown one is a one-line error listing the classes.

The command is two steps so that other sources of a decision can be added beside the organism:
:func:`organism_decision` (what to explain: model, row, background) and :func:`report` (run
and print). Mounted by ``cli/main.py`` with ``register(app)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from interplab.cli._common import (
    check_outputs,
    html_file_option,
    json_file_option,
    say,
    to_stdout,
    write_json,
)
from interplab.cli._model_file import (
    check_row,
    data_option,
    features_option,
    label_option,
    load_decision,
    model_option,
    trust_option,
)
from interplab.errors import ConfigError


@dataclass(frozen=True)
class Decision:
    """What ``explain`` explains: a DecisionModel, the row, the background rows, and how the
    output names it (``label``: e.g. "credit-rule test row 3"; ``title``: the HTML page's, with
    ``{outcome}`` in it; ``info``: JSON fields)."""

    model: Any
    x: Any
    background: Any
    label: str
    title: str
    info: dict[str, Any]


def organism_decision(organism: str, row: int, seed: int) -> Decision:
    """Test row ``row`` of the zoo's decision organism ``organism``."""
    from interplab.methods.rationales import DecisionModel
    from interplab.zoo.tabular import get

    org = get(organism, seed)
    n = org.test_rows.shape[0]
    if not 0 <= row < n:
        raise ConfigError(
            f"--row {row} is out of range: {organism} has {n} test decisions (0..{n - 1})"
        )
    model = DecisionModel.from_torch(org.model, org.features, outcomes=org.classes)
    return Decision(
        model,
        org.test_rows[row],
        org.background,
        f"{organism} test row {row}",
        f"Why {organism} decided '{{outcome}}' (test row {row})",
        {"organism": organism, "row_index": row},
    )


def model_file_decision(
    model_file: Path,
    data: Path | None,
    row: int,
    *,
    trust: bool = False,
    features: Path | None = None,
    label: str | None = None,
) -> Decision:
    """Row ``row`` of the user's CSV ``data``, decided by their model file; every CSV row is
    the background."""
    model, rows, background = load_decision(model_file, data, trust, features, label)
    x = check_row(row, rows, data if data is not None else "")
    return Decision(
        model,
        x,
        background,
        f"{model_file.name} row {row}",
        f"Why {model_file.name} decided '{{outcome}}' (row {row} of {Path(str(data)).name})",
        {"model_file": str(model_file), "data": str(data), "row_index": row},
    )


def explain(
    organism: str | None = typer.Argument(
        None,
        help="A decision organism: credit-rule, credit-linear, "
        "credit-mlp, cancer-mlp, digits-rule or credit-tiers (three classes). "
        "Leave it out with --model.",
        show_default=False,
    ),
    row: int = typer.Option(
        0, "--row", help="Which decision to explain (0-based): a test row, or a --data row."
    ),
    method: str = typer.Option(
        "kernel_shap",
        help="Attribution method behind the factors: "
        "kernel_shap, oracle:linear_shap, integrated_gradients, occlusion, "
        "permutation or random.",
    ),
    seed: int = typer.Option(0, help="Seed of the sampling and of the claims' checks."),
    target: str | None = typer.Option(
        None,
        "--target",
        help="The class to explain, by name or index (default: the predicted class).",
    ),
    versus: str = typer.Option(
        "runner-up",
        "--versus",
        help="What the target is explained against: runner-up (the best other class at this "
        "row), rest (one-vs-rest), any, or a class name or index.",
    ),
    recourse_to: str | None = typer.Option(
        None,
        "--recourse-to",
        help="The class the recourse options must make the model predict (default: the "
        "runner-up; the target when it is not the predicted class).",
    ),
    model_file: Path | None = model_option(),
    data: Path | None = data_option(),
    label: str | None = label_option(),
    features: Path | None = features_option(),
    trust: bool = trust_option(),
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
    With several classes it says which contrast it explains ("class c rather than r") and
    which class the recourse leads to.

    Examples:
      interplab explain credit-rule --row 3
      interplab explain credit-mlp --row 0 --html runs/why.html --json runs/why.json
      interplab explain credit-tiers --row 2 --versus rest --recourse-to approve
      interplab explain --model clf.skops --data rows.csv --label outcome --row 5

    Your own model: --model takes a scikit-learn classifier saved with skops, a TorchScript
    module, or (with --trust, only for files you made) a pickle; --data is a CSV with a header
    whose rows are the decisions and the reference population. Column kinds are inferred
    (text: categories; whole numbers 0-9: ordinal levels; else numeric) unless a --features
    TOML declares them (kind, range, categories, immutable, protected, class names).
    """
    check_outputs(json_out, html_out)
    if (organism is None) == (model_file is None):
        raise ConfigError(
            "name a decision organism (e.g. `interplab explain credit-rule`) or give "
            "--model FILE --data ROWS.csv, not both"
            if organism is not None
            else "name a decision organism (e.g. `interplab explain credit-rule`) or give "
            "--model FILE --data ROWS.csv"
        )
    if model_file is None and (data, label, features) != (None, None, None):
        raise ConfigError("--data, --label and --features go with --model FILE")
    if model_file is not None:
        decision = model_file_decision(
            model_file, data, row, trust=trust, features=features, label=label
        )
    else:
        assert organism is not None
        decision = organism_decision(organism, row, seed)
    report(
        decision,
        method=method,
        seed=seed,
        target=target,
        versus=versus,
        recourse_to=recourse_to,
        json_out=json_out,
        html_out=html_out,
    )


def _check_classes(model: Any, target: str | None, versus: str, recourse_to: str | None) -> None:
    """Fail before any work when a class option names no class (one line listing them)."""
    for value in (target, recourse_to):
        if value is not None:
            model.class_index(value)
    if versus not in ("runner-up", "rest", "any"):
        model.class_index(versus)


def report(
    decision: Decision,
    *,
    method: str,
    seed: int,
    target: str | None = None,
    versus: str = "runner-up",
    recourse_to: str | None = None,
    json_out: Path | None = None,
    html_out: Path | None = None,
) -> None:
    """Explain ``decision`` and print it (text; JSON and HTML where asked)."""
    from interplab.methods.rationales import explain as run_explain
    from interplab.models.io import atomic_write_text
    from interplab.report.rationales import factor_checks

    echo = say(json_out)
    model = decision.model
    _check_classes(model, target, versus, recourse_to)
    rat = run_explain(
        model,
        decision.x,
        baseline=decision.background,
        method=method,
        seed=seed,
        target=target,
        versus=versus,
        recourse_to=recourse_to,
    )
    data = {**decision.info, **rat.to_dict()}
    checks = factor_checks(data)
    vals = data["attributions"]["values"]
    names = [f.name for f in model.features]
    order = sorted(range(len(vals)), key=lambda j: -abs(vals[j]))[:5]
    data["factor_checks"] = {
        names[j]: checks.get(names[j], {"status": "unchecked"})["status"]
        for j in sorted(range(len(vals)), key=lambda j: -abs(vals[j]))
    }
    classes = model.n_classes > 2 or (target, versus, recourse_to) != (None, "runner-up", None)
    if classes:
        probs = ", ".join(f"{c} {p:.0%}" for c, p in zip(rat.classes, rat.probabilities))
        echo(f"{decision.label}: {rat.outcome} (class probabilities: {probs})")
        echo(f"  explaining class {rat.contrast}")
    else:
        echo(
            f"{decision.label}: {rat.outcome} (probability of '{rat.outcomes[1]}' "
            f"{rat.probability:.0%})"
        )
    echo(f"  top factors by {data['attributions']['method']} (estimates, each with its check):")
    for j in order:
        echo(f"    {names[j]:<28} {vals[j]:+.3f}  [{data['factor_checks'][names[j]]}]")
    if classes:
        n_valid = sum(o.valid for o in rat.recourse.options)
        echo(
            f"  recourse to '{rat.recourse_to}': {n_valid} option(s), each checked to make the "
            f"model predict '{rat.recourse_to}'"
        )
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
            html_out, decision_page(data, decision.title.replace("{outcome}", rat.outcome))
        )
        echo(f"wrote {html_out}")


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)
