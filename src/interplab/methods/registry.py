"""The one list of methods: every method, baseline and oracle registers here once.

A method's module registers it where it is defined::

    @register("circuits", "eap", kind="method", cost_unit="passes", metric="edge_auroc",
              needs_gradients=True)
    def eap(model, task, *, ablation="mean", ...): ...

and everything above ``methods/`` (the bench's tracks and spec checking, the report's
baseline columns and metric directions, the CLI's choices) reads names and kinds from here::

    names("circuits")                     # every registered circuit method, sorted
    names("circuits", kind="baseline")    # its controls
    get("circuits", "eap").fn             # the function
    run("circuits", "eap", model, task)   # one call shape for every family

Families are imported lazily: the first lookup of a family imports its package
(:data:`FAMILY_PACKAGES`), whose modules run their ``@register`` lines. Listing names therefore
costs one import per family asked about, never all of them.

``kind`` is ``"method"`` (an interpretability method, ranked), ``"baseline"`` (a control or a
non-interpretability baseline: shown apart, never ranked best) or ``"oracle"`` (exact values,
the headroom: shown as ``oracle:`` rows, never ranked). An oracle's name starts with
``oracle:``; nothing else's does.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from interplab.errors import ConfigError, unknown_name

Kind = Literal["method", "baseline", "oracle"]
KINDS: tuple[str, ...] = ("method", "baseline", "oracle")
#: How a method's cost is judged: model passes (forward + backward), black-box evaluations of a
#: score function, queries to a model it may only ask, or none (a baseline that reads weights).
COST_UNITS: tuple[str, ...] = ("passes", "evaluations", "queries", "none")

#: family -> the package whose import registers that family's methods.
FAMILY_PACKAGES: dict[str, str] = {
    "circuits": "interplab.methods.circuits",
    "dictionaries": "interplab.methods.dictionaries",
    "causal": "interplab.methods.causal",
    "attribution": "interplab.methods.attribution",
    "rationales": "interplab.methods.rationales",
    "data_attribution": "interplab.methods.data_attribution",
    "failures": "interplab.methods.failures",
    "attacks": "interplab.methods.attacks",
    "poisoning": "interplab.methods.poisoning",
    "auditing": "interplab.methods.auditing",
    "probing": "interplab.methods.probing",
    "erasure": "interplab.methods.erasure",
    "steering": "interplab.methods.steering",
}


@dataclass(frozen=True)
class MethodSpec:
    """One registered method.

    Attributes:
        family: the method family (a key of :data:`FAMILY_PACKAGES`).
        name: its name within the family (``oracle:…`` for oracles).
        kind: ``method`` / ``baseline`` / ``oracle``.
        fn: the callable (a function or an estimator class) that runs it.
        cost_unit: what its cost is judged by (one of :data:`COST_UNITS`).
        metric: the default metric it is scored by.
        needs_gradients: whether it backpropagates through the model.
        summary: one line for listings (defaults to the first line of ``fn``'s docstring).
    """

    family: str
    name: str
    kind: str
    fn: Callable[..., Any]
    cost_unit: str
    metric: str
    needs_gradients: bool
    summary: str = ""

    @property
    def key(self) -> str:
        return f"{self.family}/{self.name}"


_REGISTRY: dict[tuple[str, str], MethodSpec] = {}
_LOADED: set[str] = set()


def _check(family: str, name: str, kind: str, cost_unit: str) -> None:
    problems = []
    if kind not in KINDS:
        problems.append(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if cost_unit not in COST_UNITS:
        problems.append(f"cost_unit {cost_unit!r} is not one of {', '.join(COST_UNITS)}")
    if (kind == "oracle") != name.startswith("oracle:"):
        problems.append("an oracle's name starts with 'oracle:', and only an oracle's does")
    if not name or name != name.strip():
        problems.append("the name must be non-empty with no surrounding spaces")
    if problems:
        raise ConfigError(f"cannot register {family}/{name}: " + "; ".join(problems))


def register(
    family: str,
    name: str,
    *,
    kind: Kind = "method",
    cost_unit: str = "passes",
    metric: str,
    needs_gradients: bool = False,
    summary: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``fn`` as ``family/name``; returns ``fn`` unchanged. Registering the
    same name twice with another function is an error (a second copy of a method is a bug)."""
    _check(family, name, kind, cost_unit)

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        doc = (fn.__doc__ or "").strip().splitlines()
        spec = MethodSpec(
            family,
            name,
            kind,
            fn,
            cost_unit,
            metric,
            needs_gradients,
            summary or (doc[0] if doc else ""),
        )
        old = _REGISTRY.get((family, name))
        if old is not None and old.fn is not fn:
            raise ConfigError(
                f"{family}/{name} is registered twice ({_where(old.fn)} and {_where(fn)}); "
                "give one of them another name"
            )
        _REGISTRY[(family, name)] = spec
        return fn

    return deco


def unregister(family: str, name: str) -> None:
    """Remove a registration (for tests that register a toy method)."""
    _REGISTRY.pop((family, name), None)


def _where(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"


def _load(family: str) -> None:
    if family in _LOADED:
        return
    if family not in FAMILY_PACKAGES and not any(f == family for f, _ in _REGISTRY):
        raise unknown_name("method family", family, sorted(FAMILY_PACKAGES))
    if family in FAMILY_PACKAGES:
        importlib.import_module(FAMILY_PACKAGES[family])
    _LOADED.add(family)


def families() -> list[str]:
    """Every method family, those of :data:`FAMILY_PACKAGES` and any registered at run time."""
    return sorted(set(FAMILY_PACKAGES) | {f for f, _ in _REGISTRY})


def specs(family: str | None = None, kind: str | None = None) -> Iterator[MethodSpec]:
    """Registered methods of one family (or of all), optionally of one kind, sorted by name."""
    for fam in [family] if family is not None else families():
        _load(fam)
    if kind is not None and kind not in KINDS:
        raise unknown_name("method kind", kind, KINDS)
    for (fam, _name), spec in sorted(_REGISTRY.items()):
        if (family is None or fam == family) and (kind is None or spec.kind == kind):
            yield spec


def names(family: str, kind: str | None = None) -> list[str]:
    """The names registered in ``family`` (of one ``kind`` if given), sorted."""
    return [s.name for s in specs(family, kind)]


def get(family: str, name: str) -> MethodSpec:
    """The registration of ``family/name``; an unknown name lists the family's names."""
    _load(family)
    spec = _REGISTRY.get((family, name))
    if spec is None:
        raise unknown_name(f"{family} method", name, names(family))
    return spec


def kind_of(family: str, name: str) -> str:
    """``method`` / ``baseline`` / ``oracle`` for a registered name."""
    return get(family, name).kind


def run(family: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """Run ``family/name`` with the family's call shape (see the family package's docstring)."""
    return get(family, name).fn(*args, **kwargs)
