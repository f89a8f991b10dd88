"""The organism contract: one loader for every family of ``interplab zoo --json``, a typed truth per
family, verified before it is returned, and independent of the rows methods are scored on."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import interplab as ip
from interplab.cli.main import app
from interplab.errors import ConfigError, UnknownNameError, VerificationError
from interplab.zoo.contract import (
    CircuitTruth,
    Organism,
    PlantedTruth,
    RetrainingTruth,
    UnitTruth,
    recording_inputs,
    row_digests,
    tensor_rows,
)
from interplab.zoo.registry import FAMILIES

TRUTH_TYPES = {
    "circuit": CircuitTruth,
    "planted": PlantedTruth,
    "units": UnitTruth,
    "retraining": RetrainingTruth,
}


def _zoo_rows() -> list[dict]:
    out = CliRunner().invoke(app, ["zoo", "--json", "-"])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def _first_of(family: str) -> str | None:
    """The family's first listed organism with a truth that its checks do not refuse outright."""
    from interplab.zoo.circuit_organisms import refused

    def usable(name: str) -> bool:
        return not all(refused(name, a) for a in ("zero", "mean", "resample"))

    return next(
        (
            r["name"]
            for r in _zoo_rows()
            if r["family"] == family
            and r["truth"] != "none"
            and r["verified"] is not False  # e.g. a shipped twin that failed its verification
            and usable(r["name"])
        ),
        None,
    )


def test_every_listed_organism_names_the_kind_of_truth_it_carries():
    rows = _zoo_rows()
    assert rows and all(r["truth"] in set(TRUTH_TYPES) | {"none"} for r in rows)
    assert [r["name"] for r in rows if r["truth"] == "none"] == ["random-2l"]  # the one control


def test_a_compiled_organism_comes_under_the_contract_verified():
    org = ip.organism("compiled-reverse")
    assert isinstance(org, Organism) and org.family == "interplab.zoo.compiled" and org.seed == 0
    assert isinstance(org.truth, CircuitTruth)
    assert set(org.truth.per_ablation) == {"zero", "mean", "resample"}
    assert org.truth.checks  # the verification that ran, per ablation
    assert set(org.tasks) == {"score", "heldout"}
    assert not tensor_rows(org.tasks["score"].clean) & tensor_rows(org.tasks["heldout"].clean)
    assert org.check_independent()["overlap"] == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    # the families resolved by name that list nothing (the shipped SIIT twins are listed)
    "module",
    [m for m in FAMILIES if m not in ("interplab.zoo.generated", "interplab.zoo.perturbed")],
)
def test_one_organism_of_every_family_loads_through_the_one_loader(module):
    rows = {r["name"]: r for r in _zoo_rows()}
    name = _first_of(module.rsplit(".", 1)[-1])
    assert name is not None, f"{module} lists no organism with a truth"
    org = ip.organism(name)
    assert isinstance(org.truth, TRUTH_TYPES[rows[name]["truth"]])
    assert org.truth.source and org.model is not None
    if org.tasks.get("score") is not None:
        assert org.check_independent()["overlap"] == 0


def test_bad_names_and_seeds_get_one_clear_line():
    with pytest.raises(UnknownNameError, match="compiled-reverse"):
        ip.organism("compiled-revrese")
    with pytest.raises(ConfigError, match="non-negative integer"):
        ip.organism("compiled-reverse", seed=-1)
    with pytest.raises(ConfigError, match="non-negative integer"):
        ip.organism("compiled-reverse", seed=True)


def test_a_truth_that_read_a_scored_row_is_refused():
    """The check compares the digests of the rows actually used, whatever produced them."""
    from interplab.tasks import Task

    clean = torch.tensor([[0, 1, 2], [0, 2, 1]])
    task = Task(clean, clean.flip(0))
    used = CircuitTruth({}, None, "test", row_digests([[0, 2, 1]]))  # a scored row, as a list
    org = Organism("x", "test", 0, None, {"score": task}, used)
    with pytest.raises(VerificationError, match="1 of the 2 rows"):
        org.check_independent()
    apart = Organism(
        "x",
        "test",
        0,
        None,
        {"score": task},
        CircuitTruth({}, None, "test", row_digests([[0, 3, 3]])),
    )
    assert apart.check_independent() == {**apart.check_independent(), "overlap": 0, "truth_rows": 1}


def test_recording_inputs_sees_every_row_the_module_is_run_on():
    net = torch.nn.Embedding(5, 2)
    with recording_inputs(net) as seen:
        net(torch.tensor([[1, 2], [3, 4]]))
        net(torch.tensor([[1, 2]]))
    assert seen.digests == row_digests([[1, 2], [3, 4]])
    net(torch.tensor([[0, 0]]))  # the hook is gone after the block
    assert seen.digests == row_digests([[1, 2], [3, 4]])


def test_a_cue_organism_whose_cue_does_not_decide_is_refused():
    from interplab.zoo.spurious import verify_cue

    verify_cue("ok", 1.0, oracle=False)
    verify_cue("ok oracle", 0.0, oracle=True)
    with pytest.raises(VerificationError, match="changes 0.30 of held-out predictions"):
        verify_cue("weak", 0.30, oracle=False)
    with pytest.raises(VerificationError, match="needs ≤ 0.2"):
        verify_cue("leaky oracle", 0.5, oracle=True)
    with pytest.raises(VerificationError, match="no cue_flip_rate"):
        verify_cue("old cache", None, oracle=False)
