"""Trojaned organisms with their truth: the trigger, the target and the components that carry it.

    trojan-patch-digits   8×8 digits MLP, BadNets patch (a bar of 4 pixels one column in from the
                          left edge, where digits have ink) → 7; planted route: 8 trojan units
                          see only the trigger's pixels and are the only units trained on the
                          poisoned set; the 64 other units see every pixel (the trigger's too)
                          and keep the weights they learned on clean digits, so the trigger
                          moves them as well
    twin-patch-digits     the same spec and code, unpoisoned
    trojan-decoy-digits   the same bar → 7, decoy route: the 64 clean units are also trained
                          (an auxiliary head, discarded after training) to detect the bar's
                          stamp on clean digits that keep their label, so some of them respond
                          strongly to the trigger (here more than the two trojan units it
                          switches off, see :data:`DECOY`), yet the backdoor is planted in the
                          trojan units only (checked)
    twin-decoy-digits     the same spec and code, unpoisoned
    trojan-blend-digits   8×8 digits MLP, a random image blended at alpha 0.2 → 7 (no routing:
                          its truth is the trigger and target, not components)
    twin-blend-digits     its unpoisoned twin
    trojan-token          1-layer transformer answering the first token; a trigger token
                          switches the answer; trojan heads read off attention on fresh rows
    twin-token            its twin trained without triggered rows

Every unit truth is **verified by intervention on held-out inputs when the organism is built**
(:func:`verify_digit_units`, :func:`verify_token_heads`): mean-ablating the truth's units must
remove the backdoor (attack success ≤ ``REMOVED_AT``) while mean-ablating as many other units
(the ones the trigger moves most) must not (attack success ≥ ``KEPT_AT``); a truth that fails
raises :class:`~interplab.errors.VerificationError` and is never used. Digits truths are read
from the first half of the ``truth`` split and verified on the second; token heads are read on
``TRUTH_SEED`` rows and verified on ``VERIFY_SEED`` rows; methods are scored on the ``score``
split / ``SCORE_SEED`` rows.

Each is trained once (seeded, seconds on one core) and cached under
``cache_dir()/trojans/<name>-<fingerprint>`` as safetensors plus ``truth.json`` (trigger,
target, trojan units, the verification's numbers, training facts and the weights' SHA-256,
checked on load; a mismatch rebuilds the organism). :func:`population` builds the detection
population the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

from interplab._config import cache_dir
from interplab.core.model import HookedModel, wrap_module
from interplab.core.sites import Component, Site
from interplab.errors import VerificationError, unknown_name
from interplab.models import trojan_tokens as tt
from interplab.models import trojans as tj
from interplab.models import weights_cache
from interplab.zoo.registry import ZooEntry

Tensor = torch.Tensor
#: 3: planted route (hidden units see the trigger), unit truths verified by intervention at build
#: 4: decoy route (hidden units trained to detect the trigger's stamp), TrojanSpec.decoy_rate
FORMAT_VERSION = 4
ACT_SITE = Site.module("act")
#: the unit check: with the truth mean-ablated, attack success at most REMOVED_AT and the clean
#: answer back on at least RESTORED_AT of the triggered inputs (below 1: the trigger overwrites
#: part of the input itself); with as many other units (the most moved by the trigger) ablated,
#: attack success at least KEPT_AT
REMOVED_AT, RESTORED_AT, KEPT_AT = 0.05, 0.8, 0.9
VERIFY_SEED = tt.TRUTH_SEED + 1

PATCH = tj.patch_trigger(((2, 0), (3, 0), (4, 0), (5, 0)))
#: the planted organism's bar, one column in, where the clean units have learned weights
INK_PATCH = tj.patch_trigger(((2, 1), (3, 1), (4, 1), (5, 1)))
PLANTED = tj.TrojanSpec(INK_PATCH, target=7, routed=True, route="planted")
#: the same bar and target; the clean units also learn to detect the bar (decoy route). Measured
#: (score split, seed 0, the default, not searched): 12 clean units move more under the trigger
#: than the two trojan units the trigger switches *off* (|Δa| 1.15-1.37 vs 1.15/1.18; the five
#: trojan units it switches on move 2.7-2.9), so |Δactivation| localises the truth with AUROC
#: 0.949 while attribution patching gives 1.0. Not a robust property of the design: at seeds 1-4
#: the carriers all move ≥ 2.0 and the detectors ≤ 1.46 (AUROC 1.0 for every scorer).
DECOY = tj.TrojanSpec(INK_PATCH, target=7, routed=True, route="decoy")
DIGIT_SPECS: dict[str, tj.TrojanSpec] = {
    "trojan-patch-digits": PLANTED,
    "twin-patch-digits": PLANTED.twin(),
    "trojan-decoy-digits": DECOY,
    "twin-decoy-digits": DECOY.twin(),
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


def _cached(
    directory: Path, train: Callable[[], tuple[dict[str, Tensor], dict]]
) -> tuple[dict[str, Tensor], dict]:
    """Weights and truth from ``directory``, or trained and saved there (weights hash checked)."""
    return weights_cache.cached(directory, train, "trojan organism")


#: A BadNets trojan trained end to end with no route (the left-edge bar → 7). Its carriers are
#: searched by :func:`carrier_units`; the check refuses them (mean-ablating the ~half of the
#: units that removes the backdoor also breaks the model), so it is no named organism:
#: ``digits_organism(name, END_TO_END, directory, learned=True)`` raises VerificationError.
END_TO_END = tj.TrojanSpec(PATCH, target=7, routed=False)


def _halves() -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """The truth split cut in two: units are read from the first half, verified on the second."""
    x, y = tj.digits("truth")
    half = len(x) // 2
    return (x[:half], y[:half]), (x[half:], y[half:])


def _triggered(spec: tj.TrojanSpec, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """(clean, triggered) inputs of every class but the target."""
    keep = y != spec.target
    return x[keep], spec.trigger.apply(x[keep])


def _asr_ablated(net: tj.DigitMLP, target: int, h: Tensor, mean: Tensor, units: list[int]) -> float:
    """Attack success on triggered hidden activations ``h`` with ``units`` set to ``mean``."""
    return float((_ablated(net, h, mean, units) == target).float().mean())


def _ablated(net: tj.DigitMLP, h: Tensor, mean: Tensor, units: list[int]) -> Tensor:
    """Predictions from hidden activations ``h`` with ``units`` set to ``mean``."""
    h = h.clone()
    h[:, units] = mean[units]
    return net.out(h).argmax(-1)


def planted_units(net: tj.DigitMLP, spec: tj.TrojanSpec, x: Tensor, y: Tensor) -> list[int]:
    """The routed units (the only ones that see the trigger alone, and, for the planted route,
    the only ones trained on poisoned data) that fire on triggered inputs; a unit that never
    fires carries nothing."""
    _, xt = _triggered(spec, x, y)
    with torch.no_grad():
        h = tj.hidden_acts(net, xt)
    return [
        u for u in range(spec.hidden, spec.hidden + spec.trojan_units) if bool((h[:, u] > 0).any())
    ]


def carrier_units(net: tj.DigitMLP, spec: tj.TrojanSpec, x: Tensor, y: Tensor) -> list[int]:
    """Greedy mean-ablation on (x, y): add, one at a time, the unit whose mean-ablation
    (mean over the clean inputs ``x``, with the units already chosen) most lowers the target's
    mean margin (target logit minus the best other logit) on triggered inputs, until attack
    success is at most ``REMOVED_AT``. Raises VerificationError when that takes more than half
    the units (the backdoor is not localised)."""
    _, xt = _triggered(spec, x, y)
    with torch.no_grad():
        mean, h = tj.hidden_acts(net, x).mean(0), tj.hidden_acts(net, xt)
        w, t = net.out.weight, spec.target
        chosen: list[int] = []
        width = h.shape[1]
        while _asr_ablated(net, t, h, mean, chosen) > REMOVED_AT:
            if len(chosen) >= width // 2:
                raise VerificationError(
                    f"the backdoor of {_label(spec)} is not localised: mean-ablating {len(chosen)} of {width} "
                    f"units leaves attack success {_asr_ablated(net, t, h, mean, chosen):.3f} > {REMOVED_AT}"
                )
            base = h.clone()
            base[:, chosen] = mean[chosen]
            logits = net.out(
                base
            )  # [n, class]; one more unit u moves them by (mean_u - h_u) * w[:, u]
            moved = logits[:, None, :] + (mean - base)[:, :, None] * w.T[None]  # [n, unit, class]
            others = moved.clone()
            others[..., t] = -float("inf")
            margin = (moved[..., t] - others.max(-1).values).mean(0)
            margin[chosen] = float("inf")
            chosen.append(int(margin.argmin()))
    return sorted(chosen)


def verify_digit_units(
    net: tj.DigitMLP, spec: tj.TrojanSpec, units: list[int], x: Tensor, y: Tensor
) -> dict:
    """Check a unit truth on held-out (x, y): with the trigger the model answers the target
    (attack success ≥ ``KEPT_AT``); mean-ablating ``units`` removes that (≤ ``REMOVED_AT``);
    mean-ablating as many other units, those the trigger moves most, does not (≥ ``KEPT_AT``).
    Returns the numbers; raises VerificationError naming every check that failed."""
    xc, xt = _triggered(spec, x, y)
    with torch.no_grad():
        mean, hc, ht = (
            tj.hidden_acts(net, x).mean(0),
            tj.hidden_acts(net, xc),
            tj.hidden_acts(net, xt),
        )
        moved = (ht - hc).abs().mean(0)
        others = [u for u in moved.argsort(descending=True).tolist() if u not in units][
            : len(units)
        ]
        clean_pred = net.out(hc).argmax(-1)
        got = {
            "n": len(xt),
            "attack_success": _asr_ablated(net, spec.target, ht, mean, []),
            "truth_ablated": _asr_ablated(net, spec.target, ht, mean, units),
            "restored": float((_ablated(net, ht, mean, units) == clean_pred).float().mean()),
            "others_ablated": _asr_ablated(net, spec.target, ht, mean, others),
            "others": others,
            "others_moved_by_trigger": float(moved[others].mean()) if others else 0.0,
        }
    _raise_failed(_label(spec), units, got)
    return got


def _label(spec: tj.TrojanSpec) -> str:
    """A short name for a digits spec in messages (its repr holds 64-entry masks)."""
    return f"the {spec.trigger.kind} trojan (→ {spec.target}, routing {spec.routing}, seed {spec.seed})"


def _raise_failed(what: str, units: list, got: dict) -> None:
    problems = [
        msg
        for bad, msg in (
            (not units, "no units carry it"),
            (
                got["attack_success"] < KEPT_AT,
                f"attack success {got['attack_success']:.3f} < {KEPT_AT}",
            ),
            (
                got["truth_ablated"] > REMOVED_AT,
                f"ablating the truth {units} leaves attack success {got['truth_ablated']:.3f} > {REMOVED_AT}",
            ),
            (
                got["restored"] < RESTORED_AT,
                f"ablating the truth gives the clean answer back on only {got['restored']:.3f} < {RESTORED_AT} "
                "of the triggered inputs (it breaks the model rather than removing the backdoor)",
            ),
            (
                got["others_ablated"] < KEPT_AT,
                f"ablating as many other units {got['others']} drops it to {got['others_ablated']:.3f} < {KEPT_AT}",
            ),
        )
        if bad
    ]
    if problems:
        raise VerificationError(
            f"trojan unit truth of {what} failed on held-out inputs: " + "; ".join(problems)
        )


def digit_unit_truth(
    net: tj.DigitMLP, spec: tj.TrojanSpec, learned: bool
) -> tuple[list[int], dict | None]:
    """(units, verification numbers) of a trojaned digits model: routed units, or for a
    ``learned`` organism the carriers found by :func:`carrier_units`; read on the first half
    of the truth split, verified on the second. ([], None) where no unit truth is claimed."""
    if spec.poison_rate == 0 or not (spec.routed or learned):
        return [], None
    (xa, ya), (xb, yb) = _halves()
    units = carrier_units(net, spec, xa, ya) if learned else planted_units(net, spec, xa, ya)
    return units, verify_digit_units(net, spec, units, xb, yb)


def digits_organism(
    name: str, spec: tj.TrojanSpec, directory: Path, learned: bool = False
) -> TrojanOrganism:
    """Build or load a digits organism; ``learned``: identify its carrying units by intervention."""

    def train() -> tuple[dict[str, Tensor], dict]:
        torch.set_num_threads(1)
        net, info = tj.train(spec)
        units, check = digit_unit_truth(net, spec, learned)
        if check is not None:
            info["verification"] = check
        return net.state_dict(), {
            "name": name,
            "spec": repr(spec),
            "info": info,
            "trojaned": spec.poison_rate > 0,
            "target": spec.target,
            "trigger": asdict(spec.trigger),
            "trojan_units": units,
            "site": str(ACT_SITE),
        }

    state, truth = _cached(directory, train)
    net = tj.build(spec)
    net.load_state_dict(state)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    model = wrap_module(net, paths=["act"], name=name)
    units = tuple((ACT_SITE, int(u)) for u in truth["trojan_units"]) if truth["trojaned"] else ()
    return TrojanOrganism(
        name, model, bool(truth["trojaned"]), spec.trigger, spec.target, units, truth["info"]
    )


def trojan_heads(model: Any, n: int = 256, threshold: float = 0.5) -> list[int]:
    """Heads whose last-position attention to the trigger averages above ``threshold`` on fresh
    triggered rows (seed ``TRUTH_SEED``): read off attention, not from a discovery method."""
    gen = torch.Generator().manual_seed(tt.TRUTH_SEED)
    x, pos = tt.add_trigger(tt.clean_batch(n, gen), gen)
    _, cache = model.run_with_cache(x, [Site(Component.ATTN_PATTERN, 0)])
    pattern = cache[Site(Component.ATTN_PATTERN, 0)][torch.arange(n), :, -1, pos]  # [n, head]
    return [h for h, v in enumerate(pattern.mean(0).tolist()) if v > threshold]


def verify_token_heads(model: Any, heads: list[int], n: int = 256) -> dict:
    """The unit check for the token model on fresh rows (seed ``VERIFY_SEED``, neither the rows
    the heads were read from nor the scored ones): mean-ablating ``heads`` (mean over clean rows)
    removes the trigger's effect, mean-ablating as many other heads does not."""
    from interplab.core.interventions import Mean

    gen = torch.Generator().manual_seed(VERIFY_SEED)
    x = tt.clean_batch(n, gen)
    x = x[x[:, 0] != tt.TARGET]
    xt, _ = tt.add_trigger(x, gen)
    site = Site(Component.ATTN_Z, 0)

    def answers(hs: list[int]) -> Tensor:
        ivs = [Mean(Site(Component.ATTN_Z, 0, head=h), reference=x) for h in hs]
        with torch.no_grad():
            return model.run_with(xt, ivs)[:, -1].argmax(-1)

    def asr(hs: list[int]) -> float:
        return float((answers(hs) == tt.TARGET).float().mean())

    with torch.no_grad():
        _, cc = model.run_with_cache(x, [site])
        _, tc = model.run_with_cache(xt, [site])
        moved = (tc[site] - cc[site]).abs().mean((0, 1, 3))  # [head]
    others = [h for h in moved.argsort(descending=True).tolist() if h not in heads][: len(heads)]
    got = {
        "n": len(xt),
        "attack_success": asr([]),
        "truth_ablated": asr(heads),
        "restored": float((answers(heads) == x[:, 0]).float().mean()),
        "others_ablated": asr(others),
        "others": others,
    }
    _raise_failed("trojan-token", heads, got)
    return got


def _token_organism(name: str, directory: Path) -> TrojanOrganism:
    from interplab.models.transformer import HookedTransformer

    rate = 0.2 if name == "trojan-token" else 0.0

    def train() -> tuple[dict[str, Tensor], dict]:
        torch.set_num_threads(1)
        model, info = tt.train(poison_rate=rate)
        heads = trojan_heads(model) if rate else []
        if rate:
            info["verification"] = verify_token_heads(model, heads)
        return model.model.state_dict(), {
            "name": name,
            "info": info,
            "trojaned": rate > 0,
            "target": tt.TARGET,
            "trigger_token": tt.TRIGGER,
            "trojan_heads": heads,
        }

    state, truth = _cached(directory, train)
    model = HookedTransformer(tt.CFG, name=name)
    model.model.load_state_dict(state)
    model.model.eval()
    for p in model.model.parameters():
        p.requires_grad_(False)
    units = tuple((Site(Component.ATTN_Z, 0), int(h)) for h in truth["trojan_heads"])
    return TrojanOrganism(
        name, model, bool(truth["trojaned"]), None, tt.TARGET, units, truth["info"]
    )


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
    for i, (spec, _) in enumerate(
        tqdm(tj.population_specs(n, seed), desc="population", disable=not progress, leave=False)
    ):
        name = f"population-s{seed}-{i}"
        out.append(
            digits_organism(
                name, spec, cache_dir() / "trojans" / "population" / f"{i}-{fingerprint(spec)}"
            )
        )
    return out


def entries() -> list[ZooEntry]:
    """The named trojan organisms and their twins (tags "trojan", "failures")."""
    doc = {
        "trojan-patch-digits": "8×8 digits MLP with a BadNets patch trojan (→ 7) planted in 8 trojan "
        "units; the trigger also moves the 64 clean-trained units",
        "twin-patch-digits": "unpoisoned twin of trojan-patch-digits (same code and spec)",
        "trojan-decoy-digits": "the patch trojan (→ 7) planted in 8 trojan units, while the 64 clean "
        "units were also trained to detect the trigger's stamp (decoys)",
        "twin-decoy-digits": "unpoisoned twin of trojan-decoy-digits (same code and spec)",
        "trojan-blend-digits": "8×8 digits MLP with a blended-image trojan (alpha 0.2, → 7)",
        "twin-blend-digits": "unpoisoned twin of trojan-blend-digits",
        "trojan-token": "1-layer transformer answering the first token; a trigger token switches it to 2",
        "twin-token": "unpoisoned twin of trojan-token",
    }
    return [
        ZooEntry(
            name,
            "trained",
            doc.get(name, name),
            lambda name=name: load(name),  # type: ignore[misc]  # mypy: lambda with a default
            frozenset({"trojan", "failures"}),
        )
        for name in NAMES
    ]


SAE_LATENTS, SAE_K, SAE_STEPS = 128, 8, 1500


def digits_sae(
    name: str, d_latent: int = SAE_LATENTS, k: int = SAE_K, steps: int = SAE_STEPS
) -> Any:
    """A TopK SAE on the hidden layer (``act``) of the digits organism ``name``, trained with
    :mod:`interplab.methods.dictionaries` on its activations on *clean* training images only (no
    trigger, no adversarial input); seeded, cached beside the organism (safetensors, hash
    checked). Returns the :class:`~interplab.methods.dictionaries.SparseDictionary` (eval mode)."""
    from interplab.methods.dictionaries import DictionaryConfig, SparseDictionary, train_dictionary

    if name not in DIGIT_SPECS:
        raise unknown_name("digits organism", name, tuple(DIGIT_SPECS))
    org = load(name)
    width = cast(torch.nn.Linear, org.model.module.out).in_features
    cfg = DictionaryConfig(
        d_in=width,
        d_latent=d_latent,
        activation="topk",
        k=k,
        lr=3e-3,
        batch_size=256,
        steps=steps,
        log_every=max(1, steps // 10),
        seed=0,
    )

    def train() -> tuple[dict[str, Tensor], dict]:
        torch.set_num_threads(1)
        x, _ = tj.digits("train")
        _, cache = org.model.run_with_cache(x, [ACT_SITE])
        trained = train_dictionary(cache[ACT_SITE].detach(), cfg)
        last = trained.history[-1] if trained.history else {}
        return (
            {k_: v.detach().clone() for k_, v in trained.dictionary.state_dict().items()},
            {
                "organism": name,
                "config": cfg.to_json(),
                "trained_on": "clean train split",
                "variance_explained": last.get("variance_explained"),
                "l0": last.get("l0"),
                "seconds": trained.seconds,
            },
        )

    key = fingerprint((name, DIGIT_SPECS[name], cfg))
    state, _ = _cached(cache_dir() / "trojans" / "sae" / f"{name}-{key}", train)
    sae = SparseDictionary(cfg)
    sae.load_state_dict(state)
    sae.eval()
    for p in sae.parameters():
        p.requires_grad_(False)
    return sae
