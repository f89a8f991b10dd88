"""Profession classifiers on template biographies that learned gender, one fresh organism per seed.

    spurious-bios-small   nurse vs engineer bios, gender = profession in training; one-layer
                          transformer (d_model 32) → 32 ReLU → 2, 2 epochs
    spurious-bios         the same data, d_model 48 → 64 ReLU → 2, 3 epochs

``load(name, seed)`` gives the spurious model, ``load(name, seed, oracle=True)`` its oracle: the
same spec trained on the same bios with gender drawn independently of the profession. The truth
is the cue itself (:mod:`interplab.models.bios`: which words carry gender, which gender goes with
which profession in training) plus a fact measured on the ``heldout`` split by intervention:
``cue_flip_rate``, the share of bios whose prediction changes when only the gender words are
swapped (:func:`interplab.models.bios.swap_gender`).

Each (name, seed, oracle) is trained once (seconds on one core) and cached under
``cache_dir()/bios/<name>-<fingerprint>/seed<seed>[-oracle]`` as safetensors plus
``truth.json`` (with the weights' SHA-256, checked on load; a mismatch retrains).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from interplab.core.model import HookedModel, wrap_module
from interplab.models import bios as bm
from interplab.zoo.registry import ZooEntry
from interplab.zoo.spurious import cue_entries, load_cue_organism

Tensor = torch.Tensor
SPECS: dict[str, bm.BiosSpec] = {
    "spurious-bios-small": bm.BiosSpec(d_model=32, hidden=32, epochs=2, batch_size=64),
    "spurious-bios": bm.BiosSpec(d_model=48, hidden=64, epochs=3, batch_size=64),
}
NAMES = tuple(SPECS)


@dataclass(frozen=True, eq=False)
class BiosOrganism:
    """A trained ``BiosNet`` (eval mode, frozen) and its truth.

    Attributes:
        net: the model; ``net.features(tokens)`` is the hidden layer (``act``), ``net.head(h)``
            the linear readout.
        spec: how it was trained (``cue_mode="label"``: spurious; ``"random"``: the oracle).
        truth: the planted cue (gender words, train rule) and ``cue_flip_rate`` on the heldout
            split, plus training facts.
    """

    name: str
    seed: int
    oracle: bool
    net: bm.BiosNet
    spec: bm.BiosSpec
    truth: dict = field(default_factory=dict)

    @property
    def model(self) -> HookedModel:
        """The net as a HookedModel (site ``act`` = the hidden units), for generic tools."""
        return wrap_module(self.net, paths=["act"], name=self.name)


def cue_flip_rate(net: bm.BiosNet, split: str = "heldout") -> float:
    """Share of ``split``'s bios whose prediction changes when only the gender words (name and
    pronouns) are swapped: the planted cue, verified by intervention."""
    tokens = bm.bios(split, "random").tokens
    with torch.no_grad():
        a = net(tokens).argmax(-1)
        b = net(bm.swap_gender(tokens)).argmax(-1)
    return float((a != b).float().mean())


def _cue(spec: bm.BiosSpec, oracle: bool) -> dict:
    return {
        "kind": "gender",
        "words": {
            "names": [list(g) for g in bm.NAMES],
            "pronouns": {k: list(v) for k, v in bm.PRONOUNS.items()},
        },
        "values": list(bm.GENDERS),
        "labels": list(bm.LABELS),
        "train_rule": "gender = profession (nurses female, engineers male)"
        if not oracle
        else "gender independent of profession",
    }


def load(name: str, seed: int, oracle: bool = False) -> BiosOrganism:
    """Train (first use) or load organism ``name`` for ``seed``; ``oracle=True``: its oracle."""
    spec, net, truth = load_cue_organism(
        "bios", SPECS, name, seed, oracle, bm.train, _net, _cue, _flip_rate
    )
    return BiosOrganism(name, seed, oracle, net, spec, truth)


def _net(spec: bm.BiosSpec, seed: int) -> bm.BiosNet:
    return bm.BiosNet(spec.config(seed))


def _flip_rate(net: bm.BiosNet, spec: bm.BiosSpec) -> float:
    return cue_flip_rate(net)


def entries() -> list[ZooEntry]:
    """The bios organisms at seed 0 (tags "spurious", "utility")."""
    doc = {
        "spurious-bios-small": "bios profession transformer (d 32) that learned a gender cue",
        "spurious-bios": "bios profession transformer (d 48) that learned a gender cue",
    }
    return cue_entries(NAMES, doc, load)
