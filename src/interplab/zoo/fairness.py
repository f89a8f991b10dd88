"""Credit models that do or do not rely on a protected attribute through a planted proxy.

Each organism is an MLP (:class:`~interplab.models.tabular.TabularNet`) deciding refuse/approve
on German credit applicants by a planted points rule. Its inputs EXCLUDE every protected feature of the data (age, sex
and marital status, foreign worker): 17 real features plus two synthetic binary columns that
both carry the organism's protected attribute equally well (:data:`FIDELITY`):

    postcode_zone, branch_zone   each = the applicant's protected group with probability
                                 FIDELITY, else a fair coin (independent noise per column)

One of the two is the PROXY, the other the DECOY (which is which: a seeded coin per population,
so a column's name or position says nothing). Labels: refuse when the points reach
:data:`CUTOFF`; the points are the legitimate scorecard :data:`POINTS` (categorical features
only, so the rule is linear in the one-hot encoding and a small MLP learns it exactly in well
under a second; :data:`interplab.models.tabular.SCORECARD` thresholds two numeric features, which
an MLP needs several seconds to fit to 0.95) plus penalty points for applicants whose proxy says
"protected group", by level:

    none     no penalty: the twin of weak/strong (same data, same proxy and decoy columns, same
             training seed) that does not rely on the proxy
    weak     +1 point when the proxy says protected and the purpose is a new car (a subtle use:
             few decisions change)
    strong   +2 points when the proxy says protected

so the protected attribute enters the labels only through the proxy, and the decoy is never
read. Protected attributes: ``age`` (group: under :data:`AGE_CUT` years) and ``sex`` (group:
personal_status_sex = female). The training rows are the real training split plus
``n_synthetic`` product-of-marginals rows (as credit-rule), all labelled by the planted rule.

Truth, verified by intervention on the held-out rows (never trained on) when built and again on
every load; any check outside its tolerance (fixed here before any organism was trained) refuses
the organism with :class:`~interplab.errors.VerificationError`:

    agrees_with_rule               share of held-out rows decided as the planted rule does ≥ 0.95
    agrees_with_rule_proxy_flipped the same with the proxy column flipped                ≥ 0.95
    proxy_flip_rate                share of decisions that change when only the proxy is
                                   flipped; within ±0.05 of the rule's own flip rate on the
                                   same rows (``rule_flip_rate``); for a ``none`` twin ≤ 0.02
    proxy_flip_recall              weak/strong: of the rows whose planted decision changes with
                                   the proxy (at least 5), the share whose model decision
                                   changes too                                            ≥ 0.9
    decoy_flip_rate                the same for the decoy, in every organism               ≤ 0.02

Rows are split once per seed (60 % train, 40 % held out). A trained organism is cached under
``cache_dir()/fairness/<name>-<fingerprint>/seed<seed>/`` (safetensors + ``truth.json`` with the
weights' SHA-256); a stale recipe gets a new fingerprint, a corrupt file is rebuilt.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from interplab._config import cache_dir
from interplab.core.threads import one_thread
from interplab.data import tabular as D
from interplab.errors import ConfigError, VerificationError, unknown_name
from interplab.models import tabular as T
from interplab.models import weights_cache
from interplab.zoo.registry import ZooEntry

Tensor = torch.Tensor
FORMAT_VERSION = 1
#: protected features of German credit, never an input of these organisms
EXCLUDED = ("age", "personal_status_sex", "foreign_worker")
ATTRIBUTES = ("age", "sex")
AGE_CUT = 30.0  # the age group: applicants younger than this
FEMALE = 1  # personal_status_sex code "female : divorced/separated/married"
LEVELS = ("none", "weak", "strong")
SYNTHETIC = ("postcode_zone", "branch_zone")
FIDELITY = 0.85  # P(column = protected group); else a fair coin
#: the legitimate scorecard: feature -> (codes that score, points); refuse at CUTOFF points
POINTS: dict[str, tuple[tuple[int, ...], int]] = {
    "checking_account": ((0, 1), 2),  # balance below 200 DM, or overdrawn
    "savings": ((0,), 1),  # below 100 DM
    "credit_history": ((3,), 2),  # delay in paying off in the past
    "property": ((3,), 1),  # unknown / no property
    "other_installment_plans": ((0, 1), 1),  # instalment plans at a bank or at stores
    "purpose": ((0,), 1),  # a new car
}
CUTOFF = 4
#: weak level: the proxy's point applies to this purpose code only (a new car)
WEAK_PURPOSE = 0
# ---- truth tolerances, fixed before any organism was trained (see the module docstring)
MIN_AGREEMENT = 0.95
FLIP_TOLERANCE = 0.05
MAX_UNUSED_FLIP = 0.02
MIN_FLIP_RECALL = 0.9
MIN_RULE_FLIPS = 5

TRAIN = T.TrainConfig(hidden=(16,), steps=200, lr=0.03, weight_decay=1e-4, batch_size=256)
N_SYNTHETIC = 2000


@dataclass(frozen=True)
class FairSpec:
    """One organism's recipe: protected ``attribute``, penalty ``level``, ``variant`` (a
    different draw of the synthetic columns and training seed), training config."""

    attribute: str
    level: str
    variant: int = 0
    train: T.TrainConfig = TRAIN
    n_synthetic: int = N_SYNTHETIC

    @property
    def name(self) -> str:
        return organism_name(self.attribute, self.level, self.variant)

    @property
    def reliant(self) -> bool:
        return self.level != "none"


def organism_name(attribute: str, level: str, variant: int = 0) -> str:
    return f"fair-credit-{attribute}-{level}-v{variant}"


VARIANTS = 4
SPECS: dict[str, FairSpec] = {
    s.name: s
    for s in (FairSpec(a, lv, v) for a in ATTRIBUTES for v in range(VARIANTS) for lv in LEVELS)
}
NAMES = tuple(SPECS)


@dataclass
class FairOrganism:
    """A trained credit model, its applicants and its truth (see the module docstring).

    ``data.x`` holds the model's inputs for every real applicant (17 real features and the two
    synthetic columns), ``data.y`` the real outcome (1 = good credit); ``protected`` [n] is each
    applicant's protected group (1 = in it), known to an auditor on the rows it is given."""

    name: str
    seed: int
    spec: FairSpec
    model: T.TabularNet
    data: D.TabularData
    protected: Tensor
    train_idx: Tensor
    test_idx: Tensor
    truth: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> tuple[D.Feature, ...]:
        return self.data.features

    @property
    def names(self) -> list[str]:
        return self.data.names

    @property
    def background(self) -> Tensor:
        """The real training rows [n_train, feature] (the truth's inputs, never scored on)."""
        return self.data.x[self.train_idx]

    @property
    def test_rows(self) -> Tensor:
        """The held-out rows [n_test, feature]: the truth is checked and methods are scored here."""
        return self.data.x[self.test_idx]

    def decide(self, x: Tensor) -> Tensor:
        """[n] 1 = approve."""
        with torch.no_grad():
            return (self.model(x.double()) > 0).long()


# ----------------------------------------------------------------------------- data
def _zone_feature(name: str) -> D.Feature:
    return D.Feature(name, "categorical", ("zone A", "zone B"), label=name.replace("_", " "))


def protected_group(credit: D.TabularData, attribute: str) -> Tensor:
    """[n] 1 for applicants in the protected group of ``attribute`` (age: younger than AGE_CUT;
    sex: female), from the raw German credit rows."""
    if attribute == "age":
        return (credit.x[:, credit.names.index("age")] < AGE_CUT).long()
    if attribute == "sex":
        return (credit.x[:, credit.names.index("personal_status_sex")].round() == FEMALE).long()
    raise unknown_name("protected attribute", attribute, ATTRIBUTES)


@functools.lru_cache(maxsize=1)
def _credit() -> D.TabularData:
    """German credit, parsed once per process (its rows are never modified here)."""
    return D.german_credit()


def population_data(attribute: str, variant: int, seed: int) -> tuple[D.TabularData, Tensor, str]:
    """(inputs of every applicant with the two synthetic columns, protected group [n], the
    name of the proxy column) for one (attribute, variant, seed): shared by the twins."""
    credit = _credit()
    group = protected_group(credit, attribute)
    keep = [j for j, n in enumerate(credit.names) if n not in EXCLUDED]
    gen = torch.Generator().manual_seed(
        int(hashlib.sha256(f"fair:{attribute}:{variant}:{seed}".encode()).hexdigest()[:8], 16)
    )
    n = credit.x.shape[0]
    cols = []
    for _ in SYNTHETIC:
        faithful = torch.rand(n, generator=gen) < FIDELITY
        coin = (torch.rand(n, generator=gen) < 0.5).long()
        cols.append(torch.where(faithful, group, coin).double())
    proxy = SYNTHETIC[int(torch.randint(0, 2, (1,), generator=gen))]
    x = torch.cat([credit.x[:, keep], torch.stack(cols, 1)], 1)
    features = tuple(credit.features[j] for j in keep) + tuple(_zone_feature(s) for s in SYNTHETIC)
    data = D.TabularData(
        f"german_credit_fair_{attribute}",
        features,
        x,
        credit.y,
        credit.outcomes,
        credit.source + "; protected features removed, two synthetic zone columns added",
        weights_cache.digest([credit.digest, attribute, variant, seed, FIDELITY, AGE_CUT]),
    )
    return data, group, proxy


def scorecard_points(x: Tensor, names: list[str]) -> Tensor:
    """[n] the legitimate points (:data:`POINTS`)."""
    pts = torch.zeros(x.shape[0], dtype=torch.float64)
    for feat, (codes, p) in POINTS.items():
        v = x[:, names.index(feat)].round().long()
        pts = pts + p * torch.isin(v, torch.tensor(codes)).double()
    return pts


def planted_points(x: Tensor, names: list[str], level: str, proxy: str) -> Tensor:
    """[n] the planted rule's points: the scorecard's plus the proxy's penalty (refuse at
    :data:`CUTOFF`)."""
    pts = scorecard_points(x, names)
    flagged = x[:, names.index(proxy)].round() == 1
    if level == "weak":
        pts = pts + (flagged & (x[:, names.index("purpose")].round() == WEAK_PURPOSE)).double()
    elif level == "strong":
        pts = pts + 2.0 * flagged.double()
    elif level != "none":
        raise unknown_name("level", level, LEVELS)
    return pts


def planted_approves(x: Tensor, names: list[str], level: str, proxy: str) -> Tensor:
    """[n] 1 = approve under the planted rule."""
    return (planted_points(x, names, level, proxy) < CUTOFF).long()


def flipped(x: Tensor, names: list[str], column: str) -> Tensor:
    """``x`` with the binary ``column`` set to the other zone (the other group's value)."""
    out = x.clone()
    j = names.index(column)
    out[:, j] = 1.0 - out[:, j].round()
    return out


def _split(n: int, seed: int) -> tuple[Tensor, Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1000 + seed))
    cut = n * 6 // 10
    return perm[:cut].sort().values, perm[cut:].sort().values


# ----------------------------------------------------------------------------- training
def _fit(x: Tensor, y: Tensor, features: tuple[D.Feature, ...], cfg: T.TrainConfig) -> T.TabularNet:
    """A TabularNet trained on rows encoded once (the same model as
    :func:`interplab.models.tabular.fit` builds, several times faster to train)."""
    with one_thread():
        torch.manual_seed(cfg.seed)
        mean, std = x.mean(0), x.std(0).clamp_min(1e-9)
        model = T.TabularNet(features, cfg.hidden, mean=mean, std=std, seed=cfg.seed)
        with torch.no_grad():
            z = model.encode(x)
        target = y.double() * (1 - 2 * cfg.smoothing) + cfg.smoothing
        adam = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(adam, cfg.steps)
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        for _ in range(cfg.steps):
            batch = torch.randint(0, len(z), (cfg.batch_size or len(z),), generator=gen)
            adam.zero_grad()
            nn.functional.binary_cross_entropy_with_logits(
                model.head(z[batch]), target[batch]
            ).backward()
            adam.step()
            sched.step()
    return model.eval()


def verify(
    model: nn.Module, x: Tensor, names: list[str], level: str, proxy: str, decoy: str
) -> dict[str, Any]:
    """The truth checked by intervention on held-out rows ``x`` (see the module docstring):
    the measured shares, with n."""

    def decide(rows: Tensor) -> Tensor:
        with torch.no_grad():
            return (model(rows.double()) > 0).long()

    px, dx = flipped(x, names, proxy), flipped(x, names, decoy)
    before = decide(x)
    rule, rule_px = (planted_approves(r, names, level, proxy) for r in (x, px))
    return {
        "agrees_with_rule": float((before == rule).double().mean()),
        "agrees_with_rule_proxy_flipped": float((decide(px) == rule_px).double().mean()),
        "proxy_flip_rate": float((decide(px) != before).double().mean()),
        "rule_flip_rate": float((rule_px != rule).double().mean()),
        "rule_flips": int((rule_px != rule).sum()),
        "proxy_flip_recall": float(
            (decide(px) != before)[rule_px != rule].double().mean()
            if bool((rule_px != rule).any())
            else float("nan")
        ),
        "decoy_flip_rate": float((decide(dx) != before).double().mean()),
        "n": int(x.shape[0]),
    }


def failed_checks(checks: dict[str, Any], reliant: bool) -> list[str]:
    """The checks outside their tolerance (empty: the truth holds)."""
    bad = []
    for key in ("agrees_with_rule", "agrees_with_rule_proxy_flipped"):
        if checks[key] < MIN_AGREEMENT:
            bad.append(f"{key} {checks[key]:.3f} < {MIN_AGREEMENT}")
    gap = abs(checks["proxy_flip_rate"] - checks["rule_flip_rate"])
    if gap > FLIP_TOLERANCE:
        bad.append(
            f"proxy_flip_rate {checks['proxy_flip_rate']:.3f} is {gap:.3f} from the rule's "
            f"{checks['rule_flip_rate']:.3f} (tolerance {FLIP_TOLERANCE})"
        )
    if reliant and checks["rule_flips"] < MIN_RULE_FLIPS:
        bad.append(
            f"only {checks['rule_flips']} held-out rows change with the proxy under the rule"
        )
    elif reliant and not checks["proxy_flip_recall"] >= MIN_FLIP_RECALL:
        bad.append(f"proxy_flip_recall {checks['proxy_flip_recall']:.3f} < {MIN_FLIP_RECALL}")
    if not reliant and checks["proxy_flip_rate"] > MAX_UNUSED_FLIP:
        bad.append(f"twin proxy_flip_rate {checks['proxy_flip_rate']:.3f} > {MAX_UNUSED_FLIP}")
    if checks["decoy_flip_rate"] > MAX_UNUSED_FLIP:
        bad.append(f"decoy_flip_rate {checks['decoy_flip_rate']:.3f} > {MAX_UNUSED_FLIP}")
    return bad


def _train(spec: FairSpec, seed: int) -> tuple[dict[str, Tensor], dict[str, Any]]:
    data, _group, proxy = population_data(spec.attribute, spec.variant, seed)
    decoy = next(s for s in SYNTHETIC if s != proxy)
    train_idx, test_idx = _split(data.x.shape[0], seed)
    x = data.x[train_idx]
    x = torch.cat([x, T.product_sample(x, spec.n_synthetic, seed * 31 + spec.variant + 7)])
    y = planted_approves(x, data.names, spec.level, proxy)
    cfg = T.TrainConfig(**{**vars(spec.train), "seed": seed * 100 + spec.variant})
    model = _fit(x, y, data.features, cfg)
    checks = verify(model, data.x[test_idx], data.names, spec.level, proxy, decoy)
    truth = {
        "kind": "proxy_reliance",
        "name": spec.name,
        "seed": seed,
        "attribute": spec.attribute,
        "protected_group": f"age < {AGE_CUT:g}" if spec.attribute == "age" else "female",
        "level": spec.level,
        "reliant": spec.reliant,
        "proxy": proxy,
        "decoy": decoy,
        "fidelity": FIDELITY,
        "rule": {
            "points": {k: [list(c), p] for k, (c, p) in POINTS.items()},
            "cutoff": CUTOFF,
            "penalty": {
                "none": "0",
                "weak": f"+1 if proxy and purpose code {WEAK_PURPOSE}",
                "strong": "+2 if proxy",
            }[spec.level],
        },
        "checks": checks,
        "n_train": int(x.shape[0]),
        "data_digest": data.digest,
    }
    _refuse_if_failed(spec, seed, checks)
    return model.state_dict(), truth


def _refuse_if_failed(spec: FairSpec, seed: int, checks: dict[str, Any]) -> None:
    bad = failed_checks(checks, spec.reliant)
    if bad:
        raise VerificationError(
            f"{spec.name} (seed {seed}) fails its truth check on {checks['n']} held-out rows: "
            + "; ".join(bad)
        )


def fingerprint(spec: FairSpec) -> str:
    return weights_cache.fingerprint(
        (spec, POINTS, CUTOFF, FIDELITY, AGE_CUT, WEAK_PURPOSE, EXCLUDED, MIN_FLIP_RECALL),
        FORMAT_VERSION,
    )


def load(name: str, seed: int = 0) -> FairOrganism:
    """The organism ``name`` for ``seed`` (trained on first use, then read from the cache); its
    truth is re-verified on the held-out rows on every load."""
    if name not in SPECS:
        raise unknown_name("fairness organism", name, NAMES)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed must be a non-negative int, got {seed!r}")
    spec = SPECS[name]
    directory = cache_dir() / "fairness" / f"{name}-{fingerprint(spec)}" / f"seed{seed}"
    state, truth = weights_cache.cached(directory, lambda: _train(spec, seed), "fairness organism")
    data, group, proxy = population_data(spec.attribute, spec.variant, seed)
    train_idx, test_idx = _split(data.x.shape[0], seed)
    model = T.TabularNet(data.features, spec.train.hidden)
    model.load_state_dict(state)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if truth.get("proxy") != proxy:
        raise VerificationError(f"{name} (seed {seed}): cached truth names another proxy column")
    checks = verify(model, data.x[test_idx], data.names, spec.level, proxy, truth["decoy"])
    _refuse_if_failed(spec, seed, checks)
    truth = {**truth, "checks": checks}
    return FairOrganism(name, seed, spec, model, data, group, train_idx, test_idx, truth)


@functools.lru_cache(maxsize=64)
def get(name: str, seed: int = 0) -> FairOrganism:
    """Like :func:`load`, memoised in this process."""
    return load(name, seed)


def entries() -> list[ZooEntry]:
    """Every fairness organism (tags: "trained", "fairness"; not "tabular": these are not the
    :mod:`interplab.zoo.tabular` organisms that ``interplab explain`` reads)."""
    return [
        ZooEntry(
            name,
            "trained",
            f"credit MLP without protected inputs; {spec.attribute} proxy, penalty {spec.level}"
            f" (variant {spec.variant})",
            lambda name=name: get(name),  # type: ignore[misc]  # mypy: lambda with a default
            frozenset({"trained", "fairness"}),
        )
        for name, spec in SPECS.items()
    ]
