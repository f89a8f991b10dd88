"""Spurious-cue digit classifiers with their truth, one fresh organism per seed.

    spurious-digits-small   MNIST 14×14, digit ≥ 5, striped background cue = label in training;
                            196 → 64 ReLU → 2, 10 epochs
    spurious-digits         the same data, 196 → 128 ReLU → 2, 20 epochs

``load(name, seed)`` gives the spurious model, ``load(name, seed, oracle=True)`` its oracle:
the same spec trained on the same images with the cue drawn independently of the label. The
truth is the cue itself (:mod:`interplab.models.spurious`: the texture, its strength, which
cue value goes with which label) plus facts measured on the ``heldout`` split by intervention:
``cue_flip_rate``, the share of images whose prediction changes when only the cue is flipped.

Each (name, seed, oracle) is trained once (seconds on one core) and cached under
``cache_dir()/spurious/<name>-<fingerprint>/seed<seed>[-oracle]`` as safetensors plus
``truth.json`` (with the weights' SHA-256, checked on load; a mismatch retrains).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from interplab._config import cache_dir
from interplab.core.model import HookedModel, wrap_module
from interplab.errors import ConfigError, VerificationError, unknown_name
from interplab.models import spurious as sp
from interplab.models import weights_cache
from interplab.zoo.registry import ZooEntry

Tensor = torch.Tensor
FORMAT_VERSION = 1
SPECS: dict[str, sp.SpuriousSpec] = {
    "spurious-digits-small": sp.SpuriousSpec(hidden=64, epochs=10),
    "spurious-digits": sp.SpuriousSpec(hidden=128, epochs=20),
}
NAMES = tuple(SPECS)


@dataclass(frozen=True, eq=False)
class SpuriousOrganism:
    """A trained ``CueMLP`` (eval mode, frozen) and its truth.

    Attributes:
        net: the model; ``net.features(x)`` is the hidden layer (``act``), ``net.head(h)`` the readout.
        spec: how it was trained (``cue_mode="label"``: spurious; ``"random"``: the oracle).
        truth: the planted cue (texture per label, strength) and intervention facts
            (``cue_flip_rate`` on the heldout split), plus training facts.
    """

    name: str
    seed: int
    oracle: bool
    net: sp.CueMLP
    spec: sp.SpuriousSpec
    truth: dict = field(default_factory=dict)

    @property
    def model(self) -> HookedModel:
        """The net as a HookedModel (site ``act`` = the hidden units), for generic tools."""
        return wrap_module(self.net, paths=["act"], name=self.name)


def fingerprint(obj: Any) -> str:
    return weights_cache.fingerprint(obj, FORMAT_VERSION)


def load_cue_organism(
    family: str,
    specs: Mapping[str, Any],
    name: str,
    seed: int,
    oracle: bool,
    train_net: Callable[[Any, int], tuple[torch.nn.Module, dict]],
    make_net: Callable[[Any, int], torch.nn.Module],
    cue: Callable[[Any, bool], dict],
    flip_rate: Callable[[Any, Any], float],
) -> tuple[Any, Any, dict]:
    """``(spec, net, truth)`` of cue organism ``name`` of ``family`` (here and in
    :mod:`interplab.zoo.bios`): the frozen, eval-mode net from
    ``cache_dir()/<family>/<name>-<fingerprint>/seed<seed>[-oracle]``, or trained first with
    ``train_net(spec, seed)`` (the oracle: ``cue_mode="random"``) and saved there with its truth,
    the ``cue(spec, oracle)`` description plus ``flip_rate(net, spec)``, checked on every load.
    ``make_net(spec, seed)``: an untrained net to load the weights into."""
    if name not in specs:
        raise unknown_name(f"{family} organism", name, tuple(specs))
    spec = replace(specs[name], cue_mode="random") if oracle else specs[name]

    def train() -> tuple[dict[str, Tensor], dict]:
        torch.set_num_threads(1)
        net, info = train_net(spec, seed)
        return net.state_dict(), {
            "name": name,
            "seed": seed,
            "oracle": oracle,
            "spec": asdict(spec),
            "info": info,
            "cue": cue(spec, oracle),
            "cue_flip_rate": flip_rate(net, spec),
        }

    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed must be a non-negative int, got {seed!r}")
    directory = (
        cache_dir()
        / family
        / f"{name}-{fingerprint(spec)}"
        / f"seed{seed}{'-oracle' if oracle else ''}"
    )
    state, truth = weights_cache.cached(directory, train, f"{family} organism")
    net = make_net(spec, seed)
    net.load_state_dict(state)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    verify_cue(
        f"{name} (seed {seed}{', oracle' if oracle else ''})", truth.get("cue_flip_rate"), oracle
    )
    return spec, net, truth


#: the planted cue is the organism's reason when flipping it alone flips at least this share of
#: held-out predictions; an oracle (trained with the cue independent of the label) must flip at
#: most MAX_ORACLE_FLIP. Fixed as claims about the organisms, not fitted to them.
MIN_CUE_FLIP, MAX_ORACLE_FLIP = 0.5, 0.2


def verify_cue(label: str, rate: float | None, oracle: bool) -> None:
    """Raise VerificationError unless the cue organism's measured ``cue_flip_rate`` (flipping only
    the cue on held-out rows, in the weights) supports its truth: the spurious organism relies on
    the cue, its oracle does not."""
    if rate is None:
        raise VerificationError(
            f"{label}: no cue_flip_rate recorded; delete its cache to rebuild it"
        )
    if (not oracle and rate < MIN_CUE_FLIP) or (oracle and rate > MAX_ORACLE_FLIP):
        want = f"≤ {MAX_ORACLE_FLIP}" if oracle else f"≥ {MIN_CUE_FLIP}"
        raise VerificationError(
            f"{label}: flipping only the planted cue changes {rate:.2f} of held-out "
            f"predictions; its truth needs {want}. Retrain with another seed or spec."
        )


def cue_flip_rate(net: sp.CueMLP, strength: float, split: str = "heldout") -> float:
    """Share of ``split``'s images whose prediction changes when only the cue is flipped
    (same digit image, the other texture): the planted cue, verified by intervention."""
    x, _ = sp.digits(split)
    cue = sp.cued(split, "random", strength).cue
    with torch.no_grad():
        a = net(sp.apply_cue(x, cue, strength)).argmax(-1)
        b = net(sp.apply_cue(x, 1 - cue, strength)).argmax(-1)
    return float((a != b).float().mean())


def _cue(spec: sp.SpuriousSpec, oracle: bool) -> dict:
    return {
        "texture": {"0": "horizontal stripes", "1": "vertical stripes"},
        "train_rule": "cue = label" if not oracle else "cue independent of label",
        "strength": spec.strength,
        "label": "digit >= 5",
    }


def load(name: str, seed: int, oracle: bool = False) -> SpuriousOrganism:
    """Train (first use) or load organism ``name`` for ``seed``; ``oracle=True``: its oracle."""
    spec, net, truth = load_cue_organism(
        "spurious", SPECS, name, seed, oracle, sp.train, _net, _cue, _flip_rate
    )
    return SpuriousOrganism(name, seed, oracle, net, spec, truth)


def _net(spec: sp.SpuriousSpec, seed: int) -> sp.CueMLP:
    return sp.CueMLP(spec.hidden)


def _flip_rate(net: sp.CueMLP, spec: sp.SpuriousSpec) -> float:
    return cue_flip_rate(net, spec.strength)


def entries() -> list[ZooEntry]:
    """The spurious organisms at seed 0 (tags "spurious", "utility")."""
    doc = {
        "spurious-digits-small": "MNIST 14×14 MLP (64 units) that learned a striped-background cue",
        "spurious-digits": "MNIST 14×14 MLP (128 units) that learned a striped-background cue",
    }
    return cue_entries(NAMES, doc, load)


def cue_entries(
    names: Sequence[str], doc: Mapping[str, str], load: Callable[[str, int], Any]
) -> list[ZooEntry]:
    """The zoo entries of cue organisms ``names`` (``doc``: a line on each), ``load(name, 0)``
    at seed 0 (tags "spurious", "utility"); here and in :mod:`interplab.zoo.bios`."""
    return [
        ZooEntry(
            n,
            "trained",
            doc[n],
            lambda n=n: load(n, 0),  # type: ignore[misc]  # mypy: lambda with a default
            frozenset({"spurious", "utility"}),
        )
        for n in names
    ]
