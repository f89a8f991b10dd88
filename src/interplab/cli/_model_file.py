"""The user's own model file as a :class:`~interplab.methods.rationales.DecisionModel`:
what ``interplab explain --model FILE --data rows.csv`` runs on.

Loading, trust rules and the CSV/TOML reading live in :mod:`interplab.models.foreign` (the
models layer may not import methods); this module only builds the decision model from the
checked pieces. Helpers shared by commands live in ``cli/_*`` so commands never import one
another.

Wiring into a command (``explain``)::

    organism: str | None = typer.Argument(None, help=...)   # optional once --model exists
    model_file: Path | None = model_option()
    data: Path | None = data_option()
    label: str | None = label_option()
    features: Path | None = features_option()
    trust: bool = trust_option()
    ...
    if model_file is not None:           # and organism is None, else one error line
        model, rows, background = load_decision(model_file, data, trust, features, label)
        x = check_row(row, rows, data)   # "--row 500 is out of range: rows.csv has 90 rows"
    else:
        ...                              # the zoo organism, as before
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from interplab.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

MODEL_HELP = (
    "Your own model file instead of ORGANISM: a scikit-learn classifier saved with skops "
    "(.skops), a TorchScript module (.pt/.pth, torch.jit.save) or, with --trust, a "
    "pickle/joblib file (.pkl/.joblib). Give --data too."
)
DATA_HELP = (
    "With --model: a CSV of rows (a header line naming the columns, one row per decision); "
    "--row picks one, all of them are the reference population."
)
LABEL_HELP = "With --model: the CSV column holding each row's class (dropped from the features)."
FEATURES_HELP = (
    "With --model: a TOML describing the CSV's columns (kind, range, categories, "
    "immutable/protected) and the class names; columns not in it are inferred."
)
TRUST_HELP = (
    "With --model: load a pickle (.pkl/.joblib, torch.save) or a skops file holding types "
    "scikit-learn does not vouch for. Such files can run code when loaded: only files you made."
)


def model_option() -> Any:
    """``--model FILE``: the user's model file (None: a zoo organism is explained)."""
    return typer.Option(None, "--model", help=MODEL_HELP, show_default=False)


def data_option() -> Any:
    """``--data rows.csv``: the rows for ``--model``."""
    return typer.Option(None, "--data", help=DATA_HELP, show_default=False)


def label_option() -> Any:
    """``--label NAME``: the CSV's label column."""
    return typer.Option(None, "--label", help=LABEL_HELP, show_default=False)


def features_option() -> Any:
    """``--features FILE.toml``: the columns' kinds, ranges, categories and flags."""
    return typer.Option(None, "--features", help=FEATURES_HELP, show_default=False)


def trust_option() -> Any:
    """``--trust``: load files that can run code (pickles)."""
    return typer.Option(False, "--trust", help=TRUST_HELP)


def load_foreign(
    model: Path | str,
    data: Path | str,
    trust: bool = False,
    features: Path | str | None = None,
    label: str | None = None,
) -> Any:
    """:func:`interplab.models.foreign.decision_from_files`, re-exported for commands."""
    from interplab.models.foreign import decision_from_files

    return decision_from_files(model, data, trust=trust, features_path=features, label=label)


def load_decision(
    model: Path | str,
    data: Path | str | None,
    trust: bool = False,
    features: Path | str | None = None,
    label: str | None = None,
) -> tuple[Any, Tensor, Tensor]:
    """(DecisionModel, rows [n, feature], background [n, feature]) for a model file and a CSV.

    The background (the reference population attributions and recourse compare against)
    is every row of the CSV; the model sees the rows in the features' raw units. K ≥ 2
    classes are named by the estimator's ``classes_``, the TOML's ``classes`` or 0..K-1."""
    from interplab.methods.rationales import DecisionModel

    if data is None:
        raise ConfigError(f"--model {model} needs --data ROWS.csv: the rows to explain")
    found = load_foreign(model, data, trust, features, label)
    for note in found.notes:  # e.g. how an ambiguous output was read: said, not hidden
        typer.echo(f"note: {note}", err=True)
    outcomes = tuple(found.classes)
    if found.kind == "sklearn":
        decision = DecisionModel.from_predict_proba(found.model, found.features, outcomes=outcomes)
    else:
        decision = DecisionModel.from_torch(
            found.model, found.features, output=found.output or "logit", outcomes=outcomes
        )
    import torch

    with torch.no_grad():  # fail here, in one line, rather than inside a method
        decision.class_scores(found.rows[:2])
    return decision, found.rows, found.rows


def check_row(row: int, rows: Tensor, data: Path | str) -> Tensor:
    """Row ``row`` of the CSV, or one error line saying which rows exist."""
    n = rows.shape[0]
    if not 0 <= row < n:
        raise ConfigError(f"--row {row} is out of range: {data} has {n} rows (0..{n - 1})")
    return rows[row]
