"""Causal hypotheses: explanations that predict what a model does under interventions.

A :class:`CausalHypothesis` says (1) which high-level program the model computes (a RASP
program: its SOps are the high-level variables), (2) where each variable it names lives in the
model (:class:`Realisation`: sites, optionally a subspace of them) and (3) which components
matter at all (``circuit``; every other head/MLP is claimed irrelevant). From that it predicts
the model's output

    under an interchange of variable v from a source input   -> program(base, v := v(source))
    under an ablation of a component it calls irrelevant     -> program(base)
    on a new input                                           -> program(input)

and turns the same interventions into low-level ones (:meth:`interchange`, :meth:`ablate`) so
``interplab.eval.counterfactuals`` can compare predicted and actual outputs.

Constructors: :func:`from_alignment` (node-level map, e.g. an SIIT organism's ground truth),
:func:`from_subspaces` (compiled ground truth: residual subspaces), :func:`from_circuit`
(a discovered circuit + "everything else is irrelevant"), and controls :func:`misaligned`
and :func:`shuffled` that must score badly.

Shapes: b = batch, p = pos, d = the site's last axis, k = subspace dimension.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from interplab.compile import rasp
from interplab.core.circuit import Node
from interplab.core.interventions import Intervention, Mean, Replace, Resample
from interplab.core.model import HookedModel
from interplab.core.sites import Component, Site
from interplab.errors import ConfigError
from interplab.methods.causal.program import output, variables

Tensor = torch.Tensor
Inputs = Sequence[Sequence[Any]]
KINDS = ("ground_truth", "discovered", "wrong")


def node_site(node: Node) -> Site:
    """The site holding a head's or MLP's output (per head for heads): [b, p, d_model]."""
    if node.kind == "head":
        return Site(Component.ATTN_RESULT, node.layer, node.head)
    if node.kind == "mlp":
        return Site(Component.MLP_OUT, node.layer)
    raise ConfigError(f"only heads and MLPs can be ablated or aligned, got {node}")


def model_nodes(cfg: Any) -> tuple[Node, ...]:
    """Every head and MLP of a native transformer config, in forward order."""
    out: list[Node] = []
    for layer in range(cfg.n_layers):
        out += [Node.attn_head(layer, h) for h in range(cfg.n_heads)]
        if not cfg.attn_only:
            out.append(Node.mlp(layer))
    return tuple(out)


@dataclass(frozen=True, eq=False)
class Realisation:
    """Where one high-level variable lives.

    Attributes:
        sites: the sites whose activations (together) carry the variable.
        basis: optional [d, k] orthonormal columns: only that subspace of each site's last axis
            carries it (an interchange swaps the projection onto it and keeps the rest).
        nodes: the components that compute it (for circuit claims); may be empty.
    """

    sites: tuple[Site, ...]
    basis: Tensor | None = None
    nodes: tuple[Node, ...] = ()

    def __post_init__(self) -> None:
        if not self.sites:
            raise ConfigError("a Realisation needs at least one site")
        if self.basis is not None and self.basis.dim() != 2:
            raise ConfigError(f"basis must be [d, k], got shape {tuple(self.basis.shape)}")


@dataclass(frozen=True, eq=False)
class CausalHypothesis:
    """An executable explanation. See the module docstring.

    Attributes:
        name: display name; kind: "ground_truth" | "discovered" | "wrong".
        program: the high-level program (its output SOp).
        alignment: variable label -> :class:`Realisation` (may be empty: a circuit-only claim).
        circuit: components claimed to matter (None: no claim about the others).
        all_nodes: every head/MLP of the model (the complement of ``circuit`` is "irrelevant").
        encode: inputs (lists of values) -> int64 tokens [b, p].
        decode: logits [b, p, v] -> one output sequence (list of values) per row.
        numerical: whether the output is numerical (compare with a tolerance).
    """

    name: str
    kind: str
    program: rasp.SOp
    alignment: Mapping[str, Realisation]
    circuit: frozenset[Node] | None
    all_nodes: tuple[Node, ...]
    encode: Callable[[Inputs], Tensor]
    decode: Callable[[Tensor], list[list[Any]]]
    numerical: bool = False
    description: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"hypothesis kind must be one of {KINDS}, got {self.kind!r}")
        known = variables(self.program)
        unknown = sorted(set(self.alignment) - set(known))
        if unknown:
            raise ConfigError(
                f"hypothesis {self.name!r} aligns {unknown}, which are not SOps of "
                f"{self.program.label!r}; its SOps are {sorted(known)}"
            )

    def with_subspaces(
        self,
        name: str,
        subspaces: Mapping[str, tuple[Site, Tensor]],
        *,
        kind: str,
        description: str = "",
    ) -> CausalHypothesis:
        """Another hypothesis about the same program and model: its variables at ``subspaces``
        (label -> (site, basis [d, k])), with no circuit claim (what DAS and its random control
        propose)."""
        return from_subspaces(
            name,
            self.program,
            subspaces,
            None,
            self.all_nodes,
            self.encode,
            self.decode,
            kind=kind,
            numerical=self.numerical,
            description=description,
        )

    # --------------------------------------------------------------- predictions
    @property
    def irrelevant(self) -> tuple[Node, ...]:
        """Components this hypothesis claims do not matter (empty without a circuit claim)."""
        if self.circuit is None:
            return ()
        return tuple(n for n in self.all_nodes if n not in self.circuit)

    def predict(self, inputs: Inputs) -> list[Any]:
        """Predicted output on each input (also under ablation of an irrelevant component)."""
        return [output(self.program, xs) for xs in inputs]

    def predict_interchange(self, variable: str, bases: Inputs, sources: Inputs) -> list[Any]:
        """Predicted output when ``variable`` takes, at every position, its value on the source."""
        self._check_variable(variable)
        out = []
        for base, src in zip(bases, sources):
            value = _value_of(self.program, variable, src)
            out.append(output(self.program, base, {variable: value}))
        return out

    # ----------------------------------------------------- low-level interventions
    def interchange(
        self, model: HookedModel, variable: str, source_tokens: Tensor
    ) -> list[Intervention]:
        """Low-level interventions realising "``variable`` from the source" on ``model``."""
        self._check_variable(variable)
        real = self.alignment[variable]
        if real.basis is None:
            return [Resample(s, source=source_tokens) for s in real.sites]
        _, cache = model.run_with_cache(source_tokens, real.sites)
        return [Replace(s, fn=_subspace_swap(cache[s], real.basis)) for s in real.sites]

    def ablate(
        self, node: Node, how: str, source_tokens: Tensor | None = None, mean: Tensor | None = None
    ) -> Intervention:
        """Ablate ``node``: ``how`` = "resample" (from ``source_tokens``) or "mean" (``mean``: the
        whole site's batch mean, e.g. from :func:`interplab.core.model.mean_activations`)."""
        site = node_site(node)
        if how == "resample":
            return Resample(site, source=source_tokens)
        if how == "mean":
            return Mean(site, mean=mean)
        raise ConfigError(f"ablation must be 'resample' or 'mean', got {how!r}")

    def _check_variable(self, variable: str) -> None:
        if variable not in self.alignment:
            raise ConfigError(
                f"hypothesis {self.name!r} does not locate {variable!r}; it locates "
                f"{sorted(self.alignment)}"
            )


def _value_of(program: rasp.SOp, variable: str, xs: Sequence[Any]) -> list[Any]:
    from interplab.methods.causal.program import run_program

    return run_program(program, xs)[variable]


def _subspace_swap(source: Tensor, basis: Tensor) -> Callable[[Tensor], Tensor]:
    """fn(value) = value + (source - value) B B^T: swap in the source's projection onto B."""
    proj = basis @ basis.T

    def fn(value: Tensor) -> Tensor:
        p = proj.to(value.dtype)
        return value + (source.to(value.dtype) - value) @ p

    return fn


# ------------------------------------------------------------------ constructors
def from_alignment(
    name: str,
    program: rasp.SOp,
    alignment: Mapping[str, Iterable[Node]],
    all_nodes: Sequence[Node],
    encode: Callable,
    decode: Callable,
    *,
    kind: str = "ground_truth",
    numerical: bool = False,
    description: str = "",
) -> CausalHypothesis:
    """A node-level hypothesis: variable label -> the components computing it (their outputs
    together carry it); the circuit is the union of those components."""
    align = {
        v: Realisation(tuple(node_site(n) for n in nodes), nodes=tuple(nodes))
        for v, nodes in ((v, list(ns)) for v, ns in alignment.items())
    }
    circuit = frozenset(n for r in align.values() for n in r.nodes)
    return CausalHypothesis(
        name,
        kind,
        program,
        align,
        circuit,
        tuple(all_nodes),
        encode,
        decode,
        numerical,
        description,
    )


def from_subspaces(
    name: str,
    program: rasp.SOp,
    subspaces: Mapping[str, tuple[Site, Tensor]],
    circuit: Iterable[Node] | None,
    all_nodes: Sequence[Node],
    encode: Callable,
    decode: Callable,
    *,
    kind: str = "ground_truth",
    numerical: bool = False,
    description: str = "",
) -> CausalHypothesis:
    """A subspace-level hypothesis: variable label -> (site, basis [d, k]), e.g. the residual
    stream right after the variable is written and the directions that hold it."""
    align = {v: Realisation((site,), basis.float()) for v, (site, basis) in subspaces.items()}
    return CausalHypothesis(
        name,
        kind,
        program,
        align,
        None if circuit is None else frozenset(circuit),
        tuple(all_nodes),
        encode,
        decode,
        numerical,
        description,
    )


def from_circuit(
    name: str,
    program: rasp.SOp,
    circuit_nodes: Iterable[Node],
    all_nodes: Sequence[Node],
    encode: Callable,
    decode: Callable,
    *,
    numerical: bool = False,
    description: str = "",
) -> CausalHypothesis:
    """ "The model computes ``program`` with these components; everything else is irrelevant."
    Locates no variables, so it predicts ablations and new inputs only. Embedding and logits
    nodes of a discovered circuit are ignored (they are never ablated)."""
    nodes = frozenset(n for n in circuit_nodes if n.kind in ("head", "mlp"))
    return CausalHypothesis(
        name,
        "discovered",
        program,
        {},
        nodes,
        tuple(all_nodes),
        encode,
        decode,
        numerical,
        description,
    )


def misaligned(
    hyp: CausalHypothesis, *, seed: int = 0, name: str | None = None
) -> CausalHypothesis:
    """Control: every variable moved somewhere it does not live, and the circuit claim moved
    with it. Node-level variables go to components outside the true circuit (or another
    variable's components); subspace variables get a random subspace of the same size at the
    same site. Must score badly."""
    gen = torch.Generator().manual_seed(seed)
    truth = hyp.circuit or frozenset(n for r in hyp.alignment.values() for n in r.nodes)
    outside = [n for n in hyp.all_nodes if n not in truth]
    align: dict[str, Realisation] = {}
    for _i, (var, real) in enumerate(sorted(hyp.alignment.items())):
        if real.basis is not None:
            d, k = real.basis.shape
            q, _ = torch.linalg.qr(torch.randn(d, k, generator=gen))
            align[var] = Realisation(real.sites, q, real.nodes)
        else:
            pool = outside or [n for n in hyp.all_nodes if n not in real.nodes]
            picks = [
                pool[int(j)] for j in torch.randperm(len(pool), generator=gen)[: len(real.nodes)]
            ]
            align[var] = Realisation(tuple(node_site(n) for n in picks), nodes=tuple(picks))
    node_claim = [n for r in align.values() for n in r.nodes]
    circuit = (
        frozenset(node_claim)
        if node_claim
        else (None if hyp.circuit is None else frozenset(outside[: max(1, len(outside) // 2)]))
    )
    return replace(
        hyp,
        name=name or f"misaligned({hyp.name})",
        kind="wrong",
        alignment=align,
        circuit=circuit,
        description="control: variables placed where they do not live",
    )


def shuffled(hyp: CausalHypothesis, *, name: str | None = None) -> CausalHypothesis:
    """Control: the variables' realisations rotated among themselves (v1 gets v2's place, …);
    input variables (tokens, indices) stay put when ≥2 others can rotate."""
    names = sorted(hyp.alignment)
    inner = [v for v in names if v not in ("tokens", "indices")]
    names = inner if len(inner) >= 2 else names
    if len(names) < 2:
        raise ConfigError(
            f"shuffled() needs ≥2 located variables; {hyp.name!r} locates {names}. "
            "Use misaligned() instead."
        )
    rotated = dict(hyp.alignment)
    rotated.update({v: hyp.alignment[names[(i + 1) % len(names)]] for i, v in enumerate(names)})
    return replace(
        hyp,
        name=name or f"shuffled({hyp.name})",
        kind="wrong",
        alignment=rotated,
        description="control: variables swapped among their true places",
    )


def _depends_on_tokens(expr: rasp.Expr) -> bool:
    return any(isinstance(e, rasp.TokensType) for e in rasp.walk(expr))


def from_ground_truth(model: Any, *, name: str | None = None) -> CausalHypothesis:
    """The compiler's ground truth as a hypothesis: every variable that depends on the tokens is
    located at its residual site (``resid_site``) in its own dimensions, and the circuit is the
    ground-truth circuit's heads and MLPs. ``model`` is a :class:`~interplab.compile.compiled.
    CompiledModel` compiled from a program (``model.program`` set). Scores 1.0 by construction
    of the compiler; anything less is a compiler or scorer bug."""
    program = getattr(model, "program", None)
    truth = getattr(model, "ground_truth", None)
    if program is None or truth is None:
        raise ConfigError(
            "from_ground_truth needs a CompiledModel with .program and "
            ".ground_truth (compile it with interplab.compile.compiler."
            "compile_program)"
        )
    exprs = variables(program)
    d = truth.d_model
    subspaces: dict[str, tuple[Site, Tensor]] = {}
    for label, var in truth.variables.items():
        if label in exprs and var.dims and _depends_on_tokens(exprs[label]):
            basis = torch.zeros(d, len(var.dims))
            basis[list(var.dims), range(len(var.dims))] = 1.0
            subspaces[label] = (var.resid_site, basis)
    circuit = [n for n in truth.circuit.nodes if n.kind in ("head", "mlp")]
    return from_subspaces(
        name or f"ground truth ({truth.program})",
        program,
        subspaces,
        circuit,
        model_nodes(model.cfg),
        model.encode,
        model.decode,
        numerical=bool(model.numerical_output),
        description="compiler ground truth: residual subspaces per variable",
    )
