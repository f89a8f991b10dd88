"""Tabular data sets for the decision organisms: feature metadata plus raw rows.

A row is a float64 vector with one entry per feature, in the feature's own units:

    numeric      the value (months, DM, years, pixel intensity), within [low, high]
    ordinal      the level's index 0..k-1 into ``values`` (ordered, e.g. years employed)
    categorical  the category's index 0..k-1 into ``values`` (unordered)

``immutable`` features (age, sex, nationality) are never changed by recourse; ``protected``
ones are those a decision must not rest on (checked, not assumed). Data sets:

    german_credit()   Statlog (German Credit Data), Hofmann (1994), UCI, CC BY 4.0; shipped in
                      ``interplab/data/german_credit.csv`` (see ATTRIBUTION.md there); 1,000 × 20
    breast_cancer()   scikit-learn's bundled Wisconsin diagnostic data, 569 × 30
    digits()          scikit-learn's bundled 8×8 handwritten digits, 1,797 × 64
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import torch

from interplab.errors import ConfigError, MissingExtraError

Tensor = torch.Tensor
KINDS = ("numeric", "ordinal", "categorical")
SKLEARN_HINT = "pip install 'interplab[rationales]' (or scikit-learn>=1.3)"


@dataclass(frozen=True)
class Feature:
    """One input feature of a decision: its name, kind, allowed values and standing."""

    name: str
    kind: str
    values: tuple[str, ...] = ()
    low: float = 0.0
    high: float = 1.0
    integer: bool = False
    immutable: bool = False
    protected: bool = False
    label: str = ""
    unit: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"feature {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind != "numeric" and not self.values:
            raise ConfigError(f"feature {self.name!r}: a {self.kind} feature needs its values")

    @property
    def discrete(self) -> bool:
        return self.kind != "numeric"

    @property
    def span(self) -> tuple[float, float]:
        """The allowed raw range (codes for ordinal/categorical)."""
        return (0.0, float(len(self.values) - 1)) if self.discrete else (self.low, self.high)

    def show(self, value: float) -> str:
        """A raw value in words: the category, or the number with its unit."""
        if self.discrete:
            return self.values[int(round(value))]
        text = f"{value:.0f}" if self.integer or float(value).is_integer() else f"{value:.3g}"
        return f"{text} {self.unit}".strip()

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "values": list(self.values),
            "low": self.low,
            "high": self.high,
            "integer": self.integer,
            "immutable": self.immutable,
            "protected": self.protected,
            "label": self.label,
            "unit": self.unit,
        }


@dataclass(frozen=True)
class TabularData:
    """Rows ``x`` [n, feature] (float64, raw units), labels ``y`` [n] (1 = ``outcomes[1]``)."""

    name: str
    features: tuple[Feature, ...]
    x: Tensor
    y: Tensor
    outcomes: tuple[str, str]
    source: str
    digest: str = field(default="")

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]


def _credit_features() -> tuple[list[Feature], list[str]]:
    """(features, csv columns) of the German credit data, in the CSV's column order."""
    emp = (
        "unemployed",
        "... < 1 year",
        "1 <= ... < 4 years",
        "4 <= ... < 7 years",
        "... >= 7 years",
    )
    spec = [
        (
            "status_of_existing_checking_account",
            Feature(
                "checking_account",
                "categorical",
                (
                    "... < 0 DM",
                    "0 <= ... < 200 DM",
                    "... >= 200 DM / salary assignments for at least 1 year",
                    "no checking account",
                ),
                label="checking account balance",
            ),
        ),
        (
            "duration_in_month",
            Feature(
                "duration",
                "numeric",
                low=4,
                high=72,
                integer=True,
                label="loan duration",
                unit="months",
            ),
        ),
        (
            "credit_history",
            Feature(
                "credit_history",
                "categorical",
                (
                    "no credits taken/ all credits paid back duly",
                    "all credits at this bank paid back duly",
                    "existing credits paid back duly till now",
                    "delay in paying off in the past",
                    "critical account/ other credits existing (not at this bank)",
                ),
                label="credit history",
            ),
        ),
        (
            "purpose",
            Feature(
                "purpose",
                "categorical",
                (
                    "car (new)",
                    "car (used)",
                    "furniture/equipment",
                    "radio/television",
                    "domestic appliances",
                    "repairs",
                    "education",
                    "retraining",
                    "business",
                    "others",
                ),
                label="purpose of the loan",
            ),
        ),
        (
            "credit_amount",
            Feature(
                "credit_amount",
                "numeric",
                low=250,
                high=18424,
                integer=True,
                label="credit amount",
                unit="DM",
            ),
        ),
        (
            "savings_account_and_bonds",
            Feature(
                "savings",
                "categorical",
                (
                    "... < 100 DM",
                    "100 <= ... < 500 DM",
                    "500 <= ... < 1000 DM",
                    "... >= 1000 DM",
                    "unknown/ no savings account",
                ),
                label="savings",
            ),
        ),
        (
            "present_employment_since",
            Feature("employment_since", "ordinal", emp, label="employed for"),
        ),
        (
            "installment_rate_in_percentage_of_disposable_income",
            Feature(
                "installment_rate",
                "numeric",
                low=1,
                high=4,
                integer=True,
                label="instalment as % of income (1-4)",
            ),
        ),
        (
            "personal_status_and_sex",
            Feature(
                "personal_status_sex",
                "categorical",
                (
                    "male : divorced/separated",
                    "female : divorced/separated/married",
                    "male : single",
                    "male : married/widowed",
                ),
                immutable=True,
                protected=True,
                label="sex and marital status",
            ),
        ),
        (
            "other_debtors_or_guarantors",
            Feature(
                "other_debtors",
                "categorical",
                ("none", "co-applicant", "guarantor"),
                label="other debtors / guarantors",
            ),
        ),
        (
            "present_residence_since",
            Feature(
                "residence_since",
                "numeric",
                low=1,
                high=4,
                integer=True,
                label="years at residence (1-4)",
            ),
        ),
        (
            "property",
            Feature(
                "property",
                "categorical",
                (
                    "real estate",
                    "building society savings agreement/ life insurance",
                    "car or other, not in attribute Savings account/bonds",
                    "unknown / no property",
                ),
            ),
        ),
        (
            "age_in_years",
            Feature(
                "age",
                "numeric",
                low=19,
                high=75,
                integer=True,
                immutable=True,
                protected=True,
                unit="years",
            ),
        ),
        (
            "other_installment_plans",
            Feature(
                "other_installment_plans",
                "categorical",
                ("bank", "stores", "none"),
                label="other instalment plans",
            ),
        ),
        ("housing", Feature("housing", "categorical", ("rent", "own", "for free"))),
        (
            "number_of_existing_credits_at_this_bank",
            Feature(
                "existing_credits",
                "numeric",
                low=1,
                high=4,
                integer=True,
                label="existing credits at this bank",
            ),
        ),
        (
            "job",
            Feature(
                "job",
                "categorical",
                (
                    "unemployed/ unskilled - non-resident",
                    "unskilled - resident",
                    "skilled employee / official",
                    "management/ self-employed/ highly qualified employee/ officer",
                ),
            ),
        ),
        (
            "number_of_people_being_liable_to_provide_maintenance_for",
            Feature(
                "dependents", "numeric", low=1, high=2, integer=True, label="people maintained"
            ),
        ),
        (
            "telephone",
            Feature(
                "telephone", "categorical", ("none", "yes, registered under the customers name")
            ),
        ),
        (
            "foreign_worker",
            Feature(
                "foreign_worker",
                "categorical",
                ("no", "yes"),
                immutable=True,
                protected=True,
                label="foreign worker",
            ),
        ),
    ]
    return [f for _, f in spec], [c for c, _ in spec]


def german_credit() -> TabularData:
    """The German credit data; label 1 = good credit (``approve``)."""
    raw = resources.files("interplab").joinpath("data/german_credit.csv").read_bytes()
    features, columns = _credit_features()
    rows = list(csv.DictReader(raw.decode("utf-8").splitlines()))
    x = torch.zeros(len(rows), len(features), dtype=torch.float64)
    for i, row in enumerate(rows):
        for j, (col, feat) in enumerate(zip(columns, features)):
            x[i, j] = feat.values.index(row[col]) if feat.discrete else float(row[col])
    y = torch.tensor([r["creditability"] == "good" for r in rows], dtype=torch.long)
    return TabularData(
        "german_credit",
        tuple(features),
        x,
        y,
        ("refuse", "approve"),
        "Statlog (German Credit Data), Hofmann (1994), UCI ML Repository, CC BY 4.0",
        hashlib.sha256(raw).hexdigest()[:16],
    )


def _from_sklearn(
    name: str, features: tuple[Feature, ...], x: Tensor, bunch: Any, classes: tuple[str, str]
) -> TabularData:
    """The scikit-learn table ``load_<name>()`` (``bunch``) with features ``x`` (float64); its
    fingerprint: the first 16 hex digits of the SHA-256 of ``x``."""
    return TabularData(
        name,
        features,
        x,
        torch.tensor(bunch.target, dtype=torch.long),
        classes,
        f"scikit-learn load_{name} (UCI, CC BY 4.0)",
        hashlib.sha256(x.numpy().tobytes()).hexdigest()[:16],
    )


def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError:
        raise MissingExtraError(
            f"this organism's data ships with scikit-learn, which is not installed: {SKLEARN_HINT}"
        ) from None
    return datasets


def breast_cancer() -> TabularData:
    """Wisconsin diagnostic breast cancer; label 1 = benign."""
    bunch = _sklearn_datasets().load_breast_cancer()
    x = torch.tensor(bunch.data, dtype=torch.float64)
    lo, hi = x.min(0).values, x.max(0).values
    features = tuple(
        Feature(
            str(n).replace(" ", "_"), "numeric", low=float(lo[j]), high=float(hi[j]), label=str(n)
        )
        for j, n in enumerate(bunch.feature_names)
    )
    return _from_sklearn("breast_cancer", features, x, bunch, ("malignant", "benign"))


def digits() -> TabularData:
    """8×8 digits as 64 numeric pixel features (0..16); ``y`` holds the digit (0..9)."""
    bunch = _sklearn_datasets().load_digits()
    x = torch.tensor(bunch.data, dtype=torch.float64)
    features = tuple(
        Feature(
            f"pixel_{r}_{c}",
            "numeric",
            low=0,
            high=16,
            integer=True,
            label=f"pixel (row {r}, column {c})",
        )
        for r in range(8)
        for c in range(8)
    )
    return _from_sklearn("digits", features, x, bunch, ("other", "digit"))
