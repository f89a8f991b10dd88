"""``interplab trace-data``: the training examples most responsible for one output, checked.

Mounted by ``cli/main.py`` with ``register(app)``.
"""

from __future__ import annotations

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
from interplab.errors import ConfigError

SPLITS = ("test", "triggered")


def _load(organism: str | None, model_dir: Path | None) -> Any:
    from interplab.zoo.data_attribution import load_or_train, load_organism_dir

    if (organism is None) == (model_dir is None):
        raise ConfigError(
            "give exactly one of ORGANISM (e.g. digits-logreg; see `interplab trace-data "
            "--help`) or --model-dir DIR (a saved data-attribution organism)"
        )
    if organism is not None:
        return load_or_train(organism)
    assert model_dir is not None  # exactly one of the two was given (checked above)
    return load_organism_dir(model_dir)


def trace(org: Any, truth: Any, method: str, index: int, split: str, k: int, seed: int = 0) -> dict:
    """Everything the command prints: the test point, its top-k training examples, the checks."""
    import torch

    from interplab.eval import data_attribution as E
    from interplab.methods.data_attribution import attribute_data

    d = org.data
    x, y = (d.x_test, d.y_test) if split == "test" else (d.x_triggered, d.triggered_labels)
    if not 0 <= index < len(x):
        raise ConfigError(
            f"--index {index} is out of range: the {split} split of {org.name} has "
            f"{len(x)} points (0..{len(x) - 1})"
        )
    if not 1 <= k <= len(d.x_train):
        raise ConfigError(f"--top must be in 1..{len(d.x_train)}, got {k}")
    train = (d.x_train, d.y_train)
    att = attribute_data(org.model, train, (x, y), method=method, self_influence=True, seed=seed)
    with torch.no_grad():
        predicted = int(org.model.logits(x[index : index + 1]).argmax())
    flipped, planted = set(d.flipped.tolist()), set(d.planted.tolist())
    text = org.spec.data == "passages"

    def shown(row: Any) -> dict:
        if text:  # one-hot context -> its token ids
            return {"tokens": row.view(-1, org.spec.classifier.n_classes).argmax(-1).tolist()}
        return {"pixels": [round(float(v), 3) for v in row]}

    top = [
        {
            "train_index": i,
            "score": s,
            "label": int(d.y_train[i]),
            "true_digit": int(d.y_clean[i]),
            "flipped": i in flipped,
            "planted": i in planted,
            **shown(d.x_train[i]),
        }
        for i, s in att.top(index, k)
    ]
    checks: dict[str, Any] = {}
    if truth is not None and split == "test":
        rho, _ = E.spearman_rows(
            (att.scores[index : index + 1].double() @ truth.masks.double().T),
            truth.outputs[:, index : index + 1].double().T,
        )
        loo, _ = E.spearman_rows(
            att.scores[index : index + 1, truth.loo_index].double(),
            truth.loo_effect[:, index : index + 1].double().T,
        )
        checks["lds_this_point"] = float(rho[0])
        checks["loo_correlation_this_point"] = float(loo[0])
        checks["lds_all_test_points"] = E.lds(att.scores, truth.masks, truth.outputs).to_json()
        checks["n_subsets"] = len(truth.masks)
    if split == "triggered":
        mine = d.planted[d.planted_group == d.triggered_group[index]]
        checks["planted_recall_this_point"] = float(
            torch.isin(att.scores[index].topk(len(mine)).indices, mine).double().mean()
        )
    if att.self_influence is not None:
        checks["mislabel_recall_at_10"] = E.mislabel_recall_at(
            att.self_influence, d.flipped
        ).to_json()
    return {
        "organism": org.name,
        "method": method,
        "split": split,
        "index": index,
        "label_attributed": int(y[index]),
        "predicted": predicted,
        "input_kind": "tokens" if text else "digits",
        **shown(x[index]),
        "top": top,
        "checks": checks,
        "seconds": att.seconds,
        "n_train": len(d.x_train),
    }


def trace_data(
    organism: str | None = typer.Argument(
        None,
        help="A data-attribution organism: digits-logreg, "
        "digits-mlp, digits-logreg-1000, digits-mlp-1000, passages-mlp, "
        "passages-transformer.",
    ),
    index: int = typer.Option(0, "--index", "-i", help="Which point of the split to explain."),
    method: str = typer.Option(
        "ekfac",
        "--method",
        "-m",
        help="grad_dot, grad_cos, tracin, if_exact, "
        "if_cg, if_lissa, ekfac, trak, representer, random, nn_input, nn_representation.",
    ),
    split: str = typer.Option(
        "test",
        help="test: held-out digits (checked against retraining); "
        "triggered: inputs that reproduce a planted behaviour (digits with the trigger; the "
        "prompts of a planted passage), checked against the planted examples.",
    ),
    top: int = typer.Option(10, "--top", "-k", help="How many training examples to show."),
    model_dir: Path | None = typer.Option(
        None, help="A saved organism directory instead of ORGANISM."
    ),
    truth_dir: Path | None = typer.Option(
        None,
        help="Where the retraining ground truth lives "
        "(default: beside the organism; built there on first use).",
    ),
    no_truth: bool = typer.Option(
        False, "--no-truth", help="Skip the retraining checks (no ground-truth build)."
    ),
    seed: int = typer.Option(0, help="Seed of random projections / the random baseline."),
    json_out: Path | None = json_file_option("Write the result as JSON"),
    html_out: Path | None = html_file_option("Write a self-contained HTML page here."),
) -> None:
    """Which training examples made the model give this output? Top-k, scored and checked.

    Attributes the label margin of one input to the training examples, then checks the
    method against truth it never saw: the model retrained on 100 random halves of the
    training set (LDS) and without single examples (leave-one-out), the planted examples
    (trigger digits, protected passages) and the 10% flipped labels (self-influence).

    The first run per organism builds that ground truth (30-100 s, with a progress bar;
    an interrupted build resumes) and caches it beside the organism.

    Examples:

        interplab trace-data digits-logreg --index 3 --method if_exact

        interplab trace-data passages-mlp --split triggered --html runs/trace.html

        interplab trace-data digits-mlp --method trak --json trace.json --no-truth
    """
    from interplab.errors import unknown_name
    from interplab.methods.registry import names

    check_outputs(json_out, html_out)
    if method not in names("data_attribution"):
        raise unknown_name("data-attribution method", method, names("data_attribution"))
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {SPLITS}, got {split!r}")
    org = _load(organism, model_dir)
    n = len(org.data.x_test if split == "test" else org.data.x_triggered)
    if not 0 <= index < n:
        raise ConfigError(
            f"--index {index} is out of range: the {split} split of {org.name} has {n} "
            f"points (0..{n - 1})"
        )
    truth = None
    if not no_truth:
        from interplab.zoo.retraining_truth import build_truth

        truth = build_truth(org, truth_dir)
    data = trace(org, truth, method, index, split, top, seed)
    echo = say(json_out)  # with --json -, stdout carries the JSON only
    echo(
        f"{org.name} {split}[{index}]: label {data['label_attributed']}, predicted "
        f"{data['predicted']}; top {top} training examples by {method}:"
    )
    for row in data["top"]:
        tags = " ".join(
            t for t, on in (("FLIPPED", row["flipped"]), ("PLANTED", row["planted"])) if on
        )
        echo(
            f"  train[{row['train_index']:>4}] score {row['score']:+.4g}  label {row['label']} "
            f"(digit {row['true_digit']}) {tags}"
        )
    for name, value in data["checks"].items():
        shown = (
            value
            if not isinstance(value, dict)
            else (f"{value['value']:.3f} [{value['low']:.3f}, {value['high']:.3f}] n={value['n']}")
        )
        echo(f"  {name}: {f'{shown:.3f}' if isinstance(shown, float) else shown}")
    write_json(json_out, data, indent=None if to_stdout(json_out) else 1)
    if html_out is not None:
        from interplab.models.io import atomic_write_text
        from interplab.report.data_attribution import trace_page

        atomic_write_text(html_out, trace_page(data))
        echo(f"wrote {html_out}")


def register(app: typer.Typer) -> None:
    app.command("trace-data")(trace_data)
