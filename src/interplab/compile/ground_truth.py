"""Ground truth shipped with a compiled model: where each variable lives and the true circuit.

For every SOp of the program, :class:`VariableTruth` records the site(s) that write it (an
embedding, a head's ``attn_result``, an ``mlp_out``), the residual site from which it can be read
(``resid_pre`` of layer 0 for embeddings, ``resid_mid`` after its head, ``resid_post`` after its
MLP), and its residual subspace: the dimensions and their (label, value) directions.
:meth:`GroundTruth.decode_residual` turns any residual activation back into the variable's values.

JSON form (``to_json``): values are JSON scalars, with tuples written as ``{"tuple": [...]}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from interplab.compile.dataflow_truth import Read
from interplab.compile.residual_basis import Direction
from interplab.core.circuit import Circuit, Edge
from interplab.core.sites import Component, Site
from interplab.errors import ConfigError, unknown_name

VERSION = 1


@dataclass(frozen=True)
class VariableTruth:
    """One RASP SOp in the compiled model.

    Attributes:
        label: the expression's label. kind: its RASP kind ("map", "aggregate", ...).
        encoding: "categorical" or "numerical". values: the values it can hold (sorted).
        sites: the sites that write it. resid_site: where it is first readable in the residual.
        dims: its residual dimensions; ``directions[i]`` labels ``dims[i]``.
        construction: how it is computed ("token_embedding", "categorical_aggregate", ...).
        reads: labels of the variables it reads.
        mlp_neurons: (start, stop) of its neurons among its layer's MLP hidden units, when an
            MLP computes it (``mlp_pre``/``mlp_post`` columns), else None.
    """

    label: str
    kind: str
    encoding: str
    values: tuple[Any, ...]
    sites: tuple[Site, ...]
    resid_site: Site
    dims: tuple[int, ...]
    construction: str
    reads: tuple[str, ...] = ()
    mlp_neurons: tuple[int, int] | None = None

    @property
    def layer(self) -> int | None:
        return max((s.layer for s in self.sites if s.layer is not None), default=None)


@dataclass(frozen=True)
class GroundTruth:
    """Everything known about a compiled model. ``directions[i]`` names residual dimension i."""

    program: str
    output: str
    vocab: tuple[Any, ...]
    max_len: int
    bos_id: int
    directions: tuple[Direction, ...]
    variables: Mapping[str, VariableTruth]
    circuit: Circuit
    notes: Mapping[str, str] = field(default_factory=dict)
    #: the designed circuit: every edge whose receiver's weights read what its sender writes
    #: (the program's dataflow; no data, no ablation flags)
    structure: Circuit | None = None
    #: what each designed edge carries: (reader label, variable label, role) triples, from
    #: which :func:`interplab.compile.derive_circuit` decides per ablation which edges matter
    edge_reads: Mapping[Edge, tuple[Read, ...]] = field(default_factory=dict)

    @property
    def designed(self) -> Circuit:
        """The designed circuit (the program's dataflow), or ``circuit`` for old ground truths."""
        return self.structure if self.structure is not None else self.circuit

    @property
    def d_model(self) -> int:
        return len(self.directions)

    def variable(self, label: str) -> VariableTruth:
        if label not in self.variables:
            raise unknown_name("variable", label, list(self.variables))
        return self.variables[label]

    def subspace(self, label: str) -> list[tuple[int, Direction]]:
        """(residual index, direction) of every direction holding ``label``."""
        return [(i, self.directions[i]) for i in self.variable(label).dims]

    def basis(self, label: str) -> torch.Tensor:
        """The variable's residual subspace as an orthonormal basis [d_model, n_dims] (columns
        are standard basis vectors, in ``dims`` order)."""
        dims = list(self.variable(label).dims)
        out = torch.zeros(self.d_model, len(dims))
        out[dims, range(len(dims))] = 1.0
        return out

    def decode_residual(self, resid: torch.Tensor, label: str) -> list[list[Any]]:
        """Values of variable ``label`` held in a residual activation.

        Args:
            resid: [batch, pos, d_model] with BOS at position 0 (or [pos, d_model]).
        Returns:
            one list per batch row of the values at input positions 1..pos-1 (BOS skipped):
            a categorical variable decodes to its value with the largest coordinate, or ``None``
            when no coordinate exceeds 0.5; a numerical one to its float coordinate.
        """
        if resid.dim() == 2:
            resid = resid.unsqueeze(0)
        if resid.dim() != 3 or resid.shape[-1] != self.d_model:
            raise ConfigError(
                f"decode_residual expects [batch, pos, {self.d_model}], got "
                f"{tuple(resid.shape)}; pass a residual-stream activation"
            )
        var = self.variable(label)
        sub = resid[:, 1:, list(var.dims)].detach().to(torch.float64)
        if var.encoding == "numerical":
            return [[float(x) for x in row[:, 0]] for row in sub]
        if sub.shape[-1] == 0:
            return [[None] * sub.shape[1] for _ in range(sub.shape[0])]
        best, idx = sub.max(dim=-1)
        values = [self.directions[var.dims[j]].value for j in range(len(var.dims))]
        return [
            [values[int(i)] if float(b) > 0.5 else None for b, i in zip(brow, irow)]
            for brow, irow in zip(best, idx)
        ]

    # ------------------------------------------------------------------------ JSON
    def to_json(self) -> dict:
        return {
            "version": VERSION,
            "program": self.program,
            "output": self.output,
            "vocab": [encode_json_value(v) for v in self.vocab],
            "max_len": self.max_len,
            "bos_id": self.bos_id,
            "directions": [
                {"label": d.label, "value": encode_json_value(d.value)} for d in self.directions
            ],
            "variables": {k: _var_json(v) for k, v in self.variables.items()},
            "circuit": self.circuit.to_json(),
            "notes": dict(self.notes),
            "structure": None if self.structure is None else self.structure.to_json(),
            "edge_reads": [
                {
                    "edge": Circuit.from_edges([e]).to_json()["edges"][0],
                    "reads": [r.to_json() for r in reads],
                }
                for e, reads in sorted(self.edge_reads.items())
            ],
        }

    @staticmethod
    def from_json(data: Mapping) -> GroundTruth:
        if data.get("version") != VERSION:
            raise ConfigError(
                f"ground truth version {data.get('version')!r} is not {VERSION}; "
                "recompile the program with this interplab"
            )
        return GroundTruth(
            program=data["program"],
            output=data["output"],
            vocab=tuple(decode_json_value(v) for v in data["vocab"]),
            max_len=data["max_len"],
            bos_id=data["bos_id"],
            directions=tuple(
                Direction(d["label"], decode_json_value(d["value"])) for d in data["directions"]
            ),
            variables={k: _var_from_json(v) for k, v in data["variables"].items()},
            circuit=Circuit.from_json(data["circuit"]),
            notes=dict(data.get("notes", {})),
            structure=None
            if data.get("structure") is None
            else Circuit.from_json(data["structure"]),
            edge_reads=_reads_from_json(data.get("edge_reads", [])),
        )


def _reads_from_json(items: Sequence[Mapping]) -> dict[Edge, tuple[Read, ...]]:
    out = {}
    for item in items:
        (edge,) = Circuit.from_json({"edges": [item["edge"]]}).edges
        out[edge] = tuple(Read(*r) for r in item["reads"])
    return out


def _site_json(site: Site) -> dict:
    return {
        k: v
        for k, v in (
            ("component", site.component.value),
            ("layer", site.layer),
            ("head", site.head),
        )
        if v is not None
    }


def _var_json(v: VariableTruth) -> dict:
    return {
        "label": v.label,
        "kind": v.kind,
        "encoding": v.encoding,
        "values": [encode_json_value(x) for x in v.values],
        "sites": [_site_json(s) for s in v.sites],
        "resid_site": _site_json(v.resid_site),
        "dims": list(v.dims),
        "construction": v.construction,
        "reads": list(v.reads),
        "mlp_neurons": None if v.mlp_neurons is None else list(v.mlp_neurons),
    }


def _var_from_json(d: Mapping) -> VariableTruth:
    site = lambda s: Site(Component(s["component"]), s.get("layer"), s.get("head"))  # noqa: E731
    return VariableTruth(
        d["label"],
        d["kind"],
        d["encoding"],
        tuple(decode_json_value(x) for x in d["values"]),
        tuple(site(s) for s in d["sites"]),
        site(d["resid_site"]),
        tuple(d["dims"]),
        d["construction"],
        tuple(d.get("reads", ())),
        None if d.get("mlp_neurons") is None else tuple(d["mlp_neurons"]),
    )


def encode_json_value(value: Any) -> Any:
    """JSON-safe form of a RASP value (tuples tagged, non-finite floats as strings)."""
    if isinstance(value, tuple):
        return {"tuple": [encode_json_value(v) for v in value]}
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(
        f"cannot store RASP value {value!r} of type {type(value).__name__} in JSON; "
        "use None, bool, int, float, str or tuples of those"
    )


def decode_json_value(value: Any) -> Any:
    if isinstance(value, dict) and "tuple" in value:
        return tuple(decode_json_value(v) for v in value["tuple"])
    if isinstance(value, dict) and "float" in value:
        return float(value["float"])
    return value


def values_equal(a: Sequence[Any], b: Sequence[Any], tol: float = 1e-4) -> bool:
    """Position-wise equality; numbers within ``tol`` (bools compared exactly)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, float) or isinstance(y, float):
            if x is None or y is None or abs(float(x) - float(y)) > tol:
                return False
        elif x != y:
            return False
    return True
