"""Adding an organism family is one zoo module: tests/zoo/toy_family.py registers itself, and
the zoo listing, the CLI and `interplab.organism` know it, its truth verified in the weights."""

from __future__ import annotations

import importlib
import json
import sys

import pytest
from typer.testing import CliRunner

import interplab as ip
from interplab.cli.main import app
from interplab.errors import VerificationError
from interplab.zoo import registry

MODULE = "tests.zoo.toy_family"


@pytest.fixture
def toy_family():
    module = importlib.import_module(MODULE)
    registry.add_family(MODULE, truth="planted", organism=module.organism)
    yield module
    registry.remove_family(MODULE)
    sys.modules.pop(MODULE, None)


def test_a_new_family_is_listed_by_the_zoo_and_the_cli(toy_family):
    assert {"toy-reason", "toy-broken"} <= set(registry.names())
    rows = json.loads(CliRunner().invoke(app, ["zoo", "--json", "-"]).stdout)
    toy = {r["name"]: r for r in rows if r["name"].startswith("toy-")}
    assert set(toy) == {"toy-reason", "toy-broken"}
    assert toy["toy-reason"]["truth"] == "planted"
    assert toy["toy-reason"]["family"] == "toy_family"


def test_its_organisms_load_through_the_contract_with_a_verified_truth(toy_family):
    org = ip.organism("toy-reason", seed=1)
    assert org.family == MODULE and org.truth.kind == "planted"
    assert org.truth.checks["flip_rate"] >= toy_family.MIN_FLIP_RATE
    assert org.check_independent()["overlap"] == 0  # truth rows are not the scoring rows


def test_a_family_whose_truth_is_not_in_the_weights_is_refused(toy_family):
    with pytest.raises(VerificationError, match="not in the weights"):
        ip.organism("toy-broken")


def test_removing_the_family_removes_its_organisms(toy_family):
    registry.remove_family(MODULE)
    assert not any(n.startswith("toy-") for n in registry.names())
    registry.add_family(MODULE, truth="planted", organism=toy_family.organism)
