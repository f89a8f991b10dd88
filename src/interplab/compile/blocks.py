"""Blocks: the weights of each head and MLP, written against the residual layout.

Pass:
    allocation_to_blocks(graph, allocation, value_sets, layout, coldness) -> list[Block]

Constructions (d = d_model; every matrix indexes the full residual stream):

* categorical MLP (Map, SequenceMap of categorical inputs): one hidden neuron per input value
  (or pair of values, bias -1 so it fires only when both are present) writing the output's code.
* discretising MLP (Map of a numerical input, SelectorWidth read-out): for sorted input points
  p_0 < ... < p_n, neuron pair k is a unit step at (p_{k-1} + p_k) / 2; the output is
  g(p_0) + sum_k step_k (g(p_k) - g(p_{k-1})). Exact on every point, robust to errors < gap/4.
* linear MLP (numerical LinearSequenceMap): relu(z) - relu(-z) with z = a x + b y.
* attention: score(q, k) = C * sum_terms [predicate(key_k, query_q)] plus a BOS term, so a
  query with no selected key attends to BOS (whose value is zero). Aggregates give BOS
  C * (terms - 1/2) (wins only when nothing is selected); SelectorWidth gives BOS C * terms, so
  the BOS weight is 1 / (width + 1) and its MLP turns that into the width. An Aggregate with a
  ``default`` also reads ``bos`` on its values and writes the default's code from it, so a query
  that selects nothing reads the default.

Every MLP is gated off at the BOS position so that every variable reads zero there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from interplab.compile import rasp
from interplab.compile.graph import Allocation, ProgramGraph, selector_terms
from interplab.compile.residual_basis import (
    BOS,
    ONE,
    ResidualLayout,
    ValueSets,
    min_gap,
    width_scratch,
)

Array = np.ndarray


@dataclass(frozen=True)
class MLPBlock:
    """Part of layer ``layer``'s MLP computing ``label``. W_in [d, m], b_in [m], W_out [m, d]."""

    label: str
    layer: int
    W_in: Array
    b_in: Array
    W_out: Array
    reads: tuple[str, ...]
    construction: str


@dataclass(frozen=True)
class HeadBlock:
    """Head ``head`` of layer ``layer`` computing ``label``.

    W_Q, W_K [d, d_qk]; W_V [d, d_ov]; W_O [d_ov, d]. ``q_reads``/``k_reads``/``v_reads`` name
    the residual variables each side reads ("one"/"bos" included)."""

    label: str
    layer: int
    head: int
    W_Q: Array
    W_K: Array
    W_V: Array
    W_O: Array
    q_reads: tuple[str, ...]
    k_reads: tuple[str, ...]
    v_reads: tuple[str, ...]
    construction: str


Block = MLPBlock | HeadBlock


def encode_value(layout: ResidualLayout, sop: rasp.SOp, value: Any) -> Array:
    """The residual vector [d] that represents ``sop = value`` (zero for None)."""
    out = np.zeros(layout.d_model)
    if value is None:
        return out
    if sop.is_numerical:
        out[layout.index(sop.label)] = float(value)
    else:
        out[layout.index(sop.label, value)] = 1.0
    return out


def _table_mlp(
    layout: ResidualLayout, rows: list[tuple[list[int], Array]]
) -> tuple[Array, Array, Array]:
    """One neuron per row (input dims that must all be 1, output vector); gated off at BOS."""
    d, m = layout.d_model, len(rows)
    W_in, b_in, W_out = np.zeros((d, m)), np.zeros(m), np.zeros((m, d))
    for j, (dims, out) in enumerate(rows):
        for i in dims:
            W_in[i, j] += 1.0
        b_in[j] = -(len(dims) - 1)
        W_in[layout.index(BOS), j] -= 1.0
        W_out[j] = out
    return W_in, b_in, W_out


def _discretising_mlp(
    layout: ResidualLayout, in_dim: int, points: tuple[float, ...], g: Callable[[float], Array]
) -> tuple[Array, Array, Array]:
    d = layout.d_model
    bos = layout.index(BOS)
    reach = max([abs(p) for p in points] + [1.0])  # |x| at BOS: 0 for variables, 1 for scratch
    cols_in, biases, cols_out = [], [], []
    first = np.zeros(d)
    first[bos] = -2.0
    cols_in.append(first)  # g(p_0), off at BOS
    biases.append(1.0)
    cols_out.append(g(points[0]))
    previous = g(points[0])
    for k in range(1, len(points)):
        current = g(points[k])
        if np.array_equal(current, previous):
            continue  # no step where the output does not change
        lo, hi = points[k - 1], points[k]
        scale, mid = 2.0 / (hi - lo), (lo + hi) / 2
        for offset, sign in ((0.5, 1.0), (-0.5, -1.0)):
            col = np.zeros(d)
            col[in_dim] = scale
            bias = -scale * mid + offset
            col[bos] = -(abs(bias) + scale * reach + 1.0)  # off at BOS whatever x is
            cols_in.append(col)
            biases.append(bias)
            cols_out.append(sign * (current - previous))
        previous = current
    return np.stack(cols_in, 1), np.array(biases), np.stack(cols_out, 0)


def mlp_block(sop: rasp.SOp, layer: int, value_sets: ValueSets, layout: ResidualLayout) -> MLPBlock:
    """The MLP computing a Map, SequenceMap or LinearSequenceMap."""
    enc = lambda v: encode_value(layout, sop, v)  # noqa: E731
    if isinstance(sop, rasp.Map) and sop.inner.is_numerical:
        points = value_sets[sop.inner.label].values or (0.0,)
        f = sop.f
        W = _discretising_mlp(layout, layout.index(sop.inner.label), points, lambda p: enc(f(p)))
        return MLPBlock(sop.label, layer, *W, (sop.inner.label, BOS), "numerical_map")
    if isinstance(sop, rasp.Map):
        rows = [
            ([layout.index(sop.inner.label, v)], enc(sop.f(v)))
            for v in value_sets[sop.inner.label].values or ()
        ]
        return MLPBlock(
            sop.label, layer, *_table_mlp(layout, rows), (sop.inner.label,), "categorical_map"
        )
    assert isinstance(sop, (rasp.SequenceMap, rasp.LinearSequenceMap))
    left, right = sop.left, sop.right
    if isinstance(sop, rasp.LinearSequenceMap) and left.is_numerical:
        d = layout.d_model
        W_in, W_out = np.zeros((d, 2)), np.zeros((2, d))
        out = layout.index(sop.label)
        for col, sign in ((0, 1.0), (1, -1.0)):
            W_in[layout.index(left.label), col] += sign * sop.a
            W_in[layout.index(right.label), col] += sign * sop.b
            W_out[col, out] = sign if sop.is_numerical else 0.0
        return MLPBlock(
            sop.label,
            layer,
            W_in,
            np.zeros(2),
            W_out,
            (left.label, right.label),
            "linear_sequence_map",
        )
    pair_f: Callable[[Any, Any], Any] = (
        sop.f if isinstance(sop, rasp.SequenceMap) else (lambda x, y: sop.a * x + sop.b * y)
    )
    rows = []
    for a in value_sets[left.label].values or ():
        for b in value_sets[right.label].values or ():
            dims = [layout.index(left.label, a), layout.index(right.label, b)]
            rows.append((dims, enc(pair_f(a, b))))
    return MLPBlock(
        sop.label, layer, *_table_mlp(layout, rows), (left.label, right.label), "sequence_map"
    )


def head_block(
    sop: rasp.Aggregate | rasp.SelectorWidth,
    layer: int,
    head: int,
    value_sets: ValueSets,
    layout: ResidualLayout,
    coldness: float,
) -> HeadBlock:
    """The attention head of an Aggregate or a SelectorWidth."""
    terms = selector_terms(sop.selector)
    assert not isinstance(terms, str)
    d = layout.d_model
    n_qk = sum(len(value_sets[t.keys.label].values or ()) for t in terms) + 1
    W_Q, W_K = np.zeros((d, n_qk)), np.zeros((d, n_qk))
    col = 0
    for t in terms:
        for kv in value_sets[t.keys.label].values or ():
            W_K[layout.index(t.keys.label, kv), col] = 1.0
            for qv in value_sets[t.queries.label].values or ():
                if t.predicate(kv, qv):
                    W_Q[layout.index(t.queries.label, qv), col] = coldness
            col += 1
    is_width = isinstance(sop, rasp.SelectorWidth)
    W_K[layout.index(BOS), col] = 1.0
    W_Q[layout.index(ONE), col] = coldness * (len(terms) - (0.0 if is_width else 0.5))
    q_reads = tuple(dict.fromkeys([t.queries.label for t in terms] + [ONE]))
    k_reads = tuple(dict.fromkeys([t.keys.label for t in terms] + [BOS]))
    if isinstance(sop, rasp.SelectorWidth):  # is_width
        W_V, W_O = np.zeros((d, 1)), np.zeros((1, d))
        W_V[layout.index(BOS), 0] = 1.0
        W_O[0, layout.index(width_scratch(sop.label))] = 1.0
        return HeadBlock(
            sop.label, layer, head, W_Q, W_K, W_V, W_O, q_reads, k_reads, (BOS,), "selector_width"
        )
    src = sop.sop
    default = sop.has_default
    if sop.is_numerical:
        W_V, W_O = np.zeros((d, 2 if default else 1)), np.zeros((2 if default else 1, d))
        W_V[layout.index(src.label), 0] = 1.0
        W_O[0, layout.index(sop.label)] = 1.0
        if default:
            W_V[layout.index(BOS), 1] = 1.0
            W_O[1, layout.index(sop.label)] = float(sop.default)
        kind = "numerical_aggregate"
    else:
        values = value_sets[src.label].values or ()
        n = max(len(values) + (1 if default else 0), 1)
        W_V, W_O = np.zeros((d, n)), np.zeros((n, d))
        for j, v in enumerate(values):
            W_V[layout.index(src.label, v), j] = 1.0
            W_O[j, layout.index(sop.label, v)] = 1.0
        if default:
            W_V[layout.index(BOS), len(values)] = 1.0
            W_O[len(values), layout.index(sop.label, sop.default)] = 1.0
        kind = "categorical_aggregate"
    v_reads = (src.label, BOS) if default else (src.label,)
    return HeadBlock(sop.label, layer, head, W_Q, W_K, W_V, W_O, q_reads, k_reads, v_reads, kind)


def width_mlp_block(
    sop: rasp.SelectorWidth, layer: int, max_len: int, layout: ResidualLayout
) -> MLPBlock:
    """Reads 1 / (width + 1) from the scratch direction and writes the width."""
    points = tuple(sorted(1.0 / (w + 1) for w in range(max_len + 1)))
    W = _discretising_mlp(
        layout,
        layout.index(width_scratch(sop.label)),
        points,
        lambda p: encode_value(layout, sop, round(1.0 / p - 1.0)),
    )
    return MLPBlock(sop.label, layer, *W, (width_scratch(sop.label), BOS), "selector_width")


def allocation_to_blocks(
    graph: ProgramGraph,
    allocation: Allocation,
    value_sets: ValueSets,
    layout: ResidualLayout,
    max_len: int,
    coldness: float,
) -> list[Block]:
    """Build the head and/or MLP of every placed SOp."""
    blocks: list[Block] = []
    for sop in graph.sops:
        p = allocation.placements[sop.label]
        if p.kind in ("head", "head+mlp"):
            blocks.append(head_block(sop, p.layer, p.head, value_sets, layout, coldness))  # type: ignore
        if p.kind == "head+mlp":
            blocks.append(width_mlp_block(sop, p.layer, max_len, layout))  # type: ignore
        elif p.kind == "mlp":
            blocks.append(mlp_block(sop, p.layer, value_sets, layout))  # type: ignore
    return blocks


__all__ = ["Block", "HeadBlock", "MLPBlock", "allocation_to_blocks", "encode_value", "min_gap"]
