"""Trojaned organisms with their truth: the trigger, the target and the components that carry it.

    trojan-patch-digits   8×8 digits MLP, BadNets patch (a bar of 4 pixels at the left edge) → 7;
                          routed: the trigger reaches the logits only through 8 trojan units
    twin-patch-digits     the same spec and code, unpoisoned
    trojan-blend-digits   8×8 digits MLP, a random image blended at alpha 0.2 → 7 (no routing:
                          its truth is the trigger and target, not components)
    twin-blend-digits     its unpoisoned twin
    trojan-token          1-layer transformer answering the first token; a trigger token
                          switches the answer; trojan heads read off attention on fresh rows
    twin-token            its twin trained without triggered rows

Each is trained once (seeded, seconds on one core) and cached under
``cache_dir()/trojans/<name>-<fingerprint>`` as safetensors plus ``truth.json`` (trigger,
target, trojan units, training facts and the weights' SHA-256, checked on load; a mismatch
rebuilds the organism). :func:`population` builds the detection population the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from interplab._config import cache_dir
from interplab.core.model import HookedModel, wrap_module
from interplab.core.sites import Component, Site
from interplab.errors import unknown_name
from interplab.models import trojan_tokens as tt
from interplab.models import trojans as tj
from interplab.zoo import weights_cache
from interplab.zoo.registry import ZooEntry

Tensor = torch.Tensor
FORMAT_VERSION = 2
ACT_SITE = Site.module("act")

PATCH = tj.patch_trigger(((2, 0), (3, 0), (4, 0), (5, 0)))
DIGIT_SPECS: dict[str, tj.TrojanSpec] = {
    "trojan-patch-digits": tj.TrojanSpec(PATCH, target=7, routed=True),
    "twin-patch-digits": tj.TrojanSpec(PATCH, target=7, routed=True).twin(),
    "trojan-blend-digits": tj.TrojanSpec(tj.blend_trigger(0.2), target=7, routed=False),
    "twin-blend-digits": tj.TrojanSpec(tj.blend_trigger(0.2), target=7, routed=False).twin(),
}
TOKEN_NAMES = ("trojan-token", "twin-token")
NAMES = tuple(DIGIT_SPECS) + TOKEN_NAMES


@dataclass(frozen=True, eq=False)
class TrojanOrganism:
    """A (possibly) trojaned model and its truth.

    Attributes:
        model: the HookedModel (digits: site ``act`` holds the hidden units; tokens: a
            HookedTransformer).
        trojaned: whether it was trained on poisoned data.
        trigger: the planted trigger (digits) or None (tokens: ``models.trojan_tokens.TRIGGER``).
        target: the class the trigger sends inputs to.
        truth_units: the units that carry the trojan, as (site, index) pairs (``act`` units for a
            routed digits model, ``attn_z`` heads for the token model), or () when unknown.
        info: training facts, clean accuracy and attack success on the truth split.
    """

    name: str
    model: HookedModel
    trojaned: bool
    trigger: tj.Trigger | None
    target: int
    truth_units: tuple[tuple[Site, int], ...]
    info: dict = field(default_factory=dict)


def fingerprint(obj: Any) -> str:
    return weights_cache.fingerprint(obj, FORMAT_VERSION)


def _cached(directory: Path, train: Callable[[], tuple[dict[str, Tensor], dict]]) -> tuple[dict[str, Tensor], dict]:
    """Weights and truth from ``directory``, or trained and saved there (weights hash checked)."""
    return weights_cache.cached(directory, train, "trojan organism")


def _live_trojan_units(net: tj.DigitMLP, spec: tj.TrojanSpec) -> list[int]:
    """The routed units (the only path from the trigger's pixels to the logits) that fire on
    triggered inputs of the truth split; a unit that never fires carries nothing."""
    x, _ = tj.digits("truth")
    with torch.no_grad():
        h = net.act(torch.nn.functional.linear(spec.trigger.apply(x), net.hidden.weight * net.input_mask,
                                               net.hidden.bias))
    routed = range(spec.hidden, spec.hidden + spec.trojan_units)
    return [u for u in routed if bool((h[:, u] > 0).any())]


def digits_organism(name: str, spec: tj.TrojanSpec, directory: Path) -> TrojanOrganism:
    def train() -> tuple[dict[str, Tensor], dict]:
        torch.set_num_threads(1)
        net, info = tj.train(spec)
        units = _live_trojan_units(net, spec) if spec.routed else []
        return net.state_dict(), {"name": name, "spec": repr(spec), "info": info,
                                  "trojaned": spec.poison_rate > 0, "target": spec.target,
                                  "trigger": asdict(spec.trigger), "trojan_units": units,
                                  "site": str(ACT_SITE)}

    state, truth = _cached(directory, train)
    net = tj.build(spec)
    net.load_state_dict(state)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    model = wrap_module(net, paths=["act"], name=name)
    units = tuple((ACT_SITE, int(u)) for u in truth["trojan_units"]) if truth["trojaned"] else ()
    return TrojanOrganism(name, model, bool(truth["trojaned"]), spec.trigger, spec.target, units,
                          truth["info"])


def trojan_heads(model: Any, n: int = 256, threshold: float = 0.5) -> list[int]:
    """Heads whose last-position attention to the trigger averages above ``threshold`` on fresh
    triggered rows (seed ``TRUTH_SEED``): read off attention, not from a discovery method."""
    gen = torch.Generator().manual_seed(tt.TRUTH_SEED)
    x, pos = tt.add_trigger(tt.clean_batch(n, gen), gen)
    _, cache = model.run_with_cache(x, [Site(Component.ATTN_PATTERN, 0)])
    pattern = cache[Site(Component.ATTN_PATTERN, 0)][torch.arange(n), :, -1, pos]  # [n, head]
    return [h for h, v in enumerate(pattern.mean(0).tolist()) if v > threshold]


def _token_organism(name: str, directory: Path) -> TrojanOrganism:
    from interplab.models.transformer import HookedTransformer

    rate = 0.2 if name == "trojan-token" else 0.0

    def train() -> tuple[dict[str, Tensor], dict]:
        torch.set_num_threads(1)
        model, info = tt.train(poison_rate=rate)
        heads = trojan_heads(model) if rate else []
        return model.model.state_dict(), {"name": name, "info": info, "trojaned": rate > 0,
                                          "target": tt.TARGET, "trigger_token": tt.TRIGGER,
                                          "trojan_heads": heads}

    state, truth = _cached(directory, train)
    model = HookedTransformer(tt.CFG, name=name)
    model.model.load_state_dict(state)
    model.model.eval()
    for p in model.model.parameters():
        p.requires_grad_(False)
    units = tuple((Site(Component.ATTN_Z, 0), int(h)) for h in truth["trojan_heads"])
    return TrojanOrganism(name, model, bool(truth["trojaned"]), None, tt.TARGET, units, truth["info"])


def load(name: str) -> TrojanOrganism:
    """Build (first use) or load the trojan organism ``name`` (one of :data:`NAMES`)."""
    if name not in NAMES:
        raise unknown_name("trojan organism", name, NAMES)
    if name in DIGIT_SPECS:
        spec = DIGIT_SPECS[name]
        return digits_organism(name, spec, cache_dir() / "trojans" / f"{name}-{fingerprint(spec)}")
    key = fingerprint((name, tt.CFG, tt.LENGTH, tt.N_NORMAL, tt.TRIGGER, tt.TARGET))
    return _token_organism(name, cache_dir() / "trojans" / f"{name}-{key}")


def population(n: int = 40, seed: int = 0, progress: bool = False) -> list[TrojanOrganism]:
    """``n`` digits MLPs, half trojaned (random edge-bar triggers and targets), built by one code
    path (:func:`interplab.models.trojans.population_specs`); cached like the named organisms."""
    from tqdm.auto import tqdm

    out = []
    for i, (spec, _) in enumerate(tqdm(tj.population_specs(n, seed), desc="population",
                                       disable=not progress, leave=False)):
        name = f"population-s{seed}-{i}"
        out.append(digits_organism(name, spec, cache_dir() / "trojans" / "population" /
                                    f"{i}-{fingerprint(spec)}"))
    return out


def entries() -> list[ZooEntry]:
    """The named trojan organisms and their twins (tags "trojan", "failures")."""
    doc = {"trojan-patch-digits": "8×8 digits MLP with a BadNets patch trojan (→ 7), routed through 8 trojan units",
           "twin-patch-digits": "unpoisoned twin of trojan-patch-digits (same code and spec)",
           "trojan-blend-digits": "8×8 digits MLP with a blended-image trojan (alpha 0.2, → 7)",
           "twin-blend-digits": "unpoisoned twin of trojan-blend-digits",
           "trojan-token": "1-layer transformer answering the first token; a trigger token switches it to 2",
           "twin-token": "unpoisoned twin of trojan-token"}
    return [ZooEntry(name, "trained", doc.get(name, name), lambda name=name: load(name),
                     frozenset({"trojan", "failures"})) for name in NAMES]


SAE_LATENTS, SAE_K, SAE_STEPS = 128, 8, 1500


def digits_sae(name: str, d_latent: int = SAE_LATENTS, k: int = SAE_K, steps: int = SAE_STEPS) -> Any:
    """A TopK SAE on the hidden layer (``act``) of the digits organism ``name``, trained with
    :mod:`interplab.methods.dictionaries` on its activations on *clean* training images only (no
    trigger, no adversarial input); seeded, cached beside the organism (safetensors, hash
    checked). Returns the :class:`~interplab.methods.dictionaries.SparseDictionary` (eval mode)."""
    from interplab.methods.dictionaries import DictionaryConfig, SparseDictionary, train_dictionary

    if name not in DIGIT_SPECS:
        raise unknown_name("digits organism", name, tuple(DIGIT_SPECS))
    org = load(name)
    width = org.model.module.out.in_features
    cfg = DictionaryConfig(d_in=width, d_latent=d_latent, activation="topk", k=k, lr=3e-3,
                           batch_size=256, steps=steps, log_every=max(1, steps // 10), seed=0)

    def train() -> tuple[dict[str, Tensor], dict]:
        torch.set_num_threads(1)
        x, _ = tj.digits("train")
        _, cache = org.model.run_with_cache(x, [ACT_SITE])
        trained = train_dictionary(cache[ACT_SITE].detach(), cfg)
        last = trained.history[-1] if trained.history else {}
        return ({k_: v.detach().clone() for k_, v in trained.dictionary.state_dict().items()},
                {"organism": name, "config": cfg.to_json(), "trained_on": "clean train split",
                 "variance_explained": last.get("variance_explained"), "l0": last.get("l0"),
                 "seconds": trained.seconds})

    key = fingerprint((name, DIGIT_SPECS[name], cfg))
    state, _ = _cached(cache_dir() / "trojans" / "sae" / f"{name}-{key}", train)
    sae = SparseDictionary(cfg)
    sae.load_state_dict(state)
    sae.eval()
    for p in sae.parameters():
        p.requires_grad_(False)
    return sae
