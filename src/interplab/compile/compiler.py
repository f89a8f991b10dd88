"""The compiler driver. It reads like the pipeline:

program ─program_to_graph─▶ ProgramGraph ─graph_to_value_sets─▶ ValueSets ─validate─▶ (ok)
    [causal: ─check_causal─▶ (no select looks forward)]
    ─graph_to_allocation─▶ Allocation ─value_sets_to_layout─▶ ResidualLayout
    ─allocation_to_blocks─▶ [HeadBlock | MLPBlock] ─blocks_to_weights─▶ Weights
    ─blocks_to_circuit (designed) ─reads_to_circuit (RASP)─ / allocation_to_variables─▶
    GroundTruth ─▶ CompiledModel
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from interplab.compile import rasp
from interplab.compile.assemble import BOS_ID, blocks_to_weights
from interplab.compile.blocks import Block, HeadBlock, MLPBlock, allocation_to_blocks
from interplab.compile.causality import check_causal
from interplab.compile.circuit_truth import blocks_to_circuit
from interplab.compile.compilability import InputDomain, validate
from interplab.compile.compiled import CompiledModel
from interplab.compile.dataflow_truth import machinery_for, reads_to_circuit
from interplab.compile.graph import Allocation, ProgramGraph, graph_to_allocation, program_to_graph
from interplab.compile.ground_truth import GroundTruth, VariableTruth
from interplab.compile.residual_basis import (
    ResidualLayout,
    ValueSets,
    graph_to_value_sets,
    value_sets_to_layout,
)
from interplab.core.circuit import Circuit
from interplab.core.sites import Component, Site
from interplab.core.threads import one_thread
from interplab.errors import ConfigError

Pairs = Sequence[tuple[Sequence[Any], Sequence[Any]]]


def compile_program(
    program: rasp.SOp,
    vocab: Collection[Any],
    max_len: int,
    *,
    name: str | None = None,
    pairs: Pairs | None = None,
    softmax_coldness: float = 100.0,
    measure_circuit: bool = True,
    valid: Callable[[Sequence[Any]], bool] | None = None,
    causal: bool = False,
) -> CompiledModel:
    """Compile ``program`` for inputs over ``vocab`` of length 1..``max_len``.

    Args:
        pairs: (clean, corrupted) task inputs of equal length on which the RASP program decides
            which designed edges matter under each ablation (:mod:`.dataflow_truth`; the
            compiled weights are not used); default: 64 seeded random pairs; ``[]`` skips it
            (as ``measure_circuit=False``). To score a method, derive the truth on pairs
            disjoint from its scoring pairs with :func:`interplab.compile.derive_circuit`.
        softmax_coldness: attention score of a selected key (larger = harder attention).
        measure_circuit: decide on ``pairs`` under which ablations each designed edge matters
            (the default). False keeps every designed edge with no per-ablation flags.
        valid: the inputs the program is defined on (``valid(xs) -> bool``; default: all). A
            categorical Aggregate must select keys holding one value on every valid input; it is
            checked on all of them (or a seeded sample when there are more than 20,000).
        causal: build a decoder: attention masked to the query's position and earlier ones.
            Programs whose selects can look forward are rejected (:mod:`.causality`).
    Raises:
        CompileError: listing every unsupported expression at once (with ``causal``, every
            forward-looking select).
    """
    with one_thread():  # compiled tensors are tiny: threads only add contention
        return _compile(
            program,
            _check_inputs(vocab, max_len),
            max_len,
            name,
            pairs,
            softmax_coldness,
            measure_circuit,
            valid,
            causal,
        )


def _compile(
    program: rasp.SOp,
    vocab: list[Any],
    max_len: int,
    name: str | None,
    pairs: Pairs | None,
    softmax_coldness: float,
    measure_circuit: bool,
    valid: Callable[[Sequence[Any]], bool] | None = None,
    causal: bool = False,
) -> CompiledModel:
    if not isinstance(program, rasp.Expr):
        raise ConfigError(
            f"compile_program takes a RASP SOp (e.g. rasp.tokens, Map(...), "
            f"Aggregate(...)), got {type(program).__name__} {program!r:.60}"
        )
    graph = program_to_graph(program)
    value_sets = graph_to_value_sets(graph, vocab, max_len)
    domain = InputDomain(tuple(vocab), max_len, valid)
    validate(graph, value_sets, domain)
    if causal:
        check_causal(graph, value_sets, domain)
    allocation = graph_to_allocation(graph)
    layout = value_sets_to_layout(graph, value_sets)
    blocks = allocation_to_blocks(graph, allocation, value_sets, layout, max_len, softmax_coldness)
    weights = blocks_to_weights(
        blocks, layout, allocation, graph, value_sets, vocab, max_len, causal=causal
    )
    designed, reads = blocks_to_circuit(graph, allocation, blocks)
    structure = Circuit.from_edges(designed, name=f"{program.label} (designed)")
    if measure_circuit and (pairs is None or len(pairs) > 0):
        pairs = pairs if pairs is not None else random_pairs(vocab, max_len, 64, seed=0)
        circuit = reads_to_circuit(
            program,
            designed,
            reads,
            pairs,
            name=f"{program.label} (dataflow truth)",
            causal=causal,
            machinery=machinery_for(program, vocab, max_len),
        )
    else:
        circuit = structure
    truth = GroundTruth(
        program=name or program.label,
        output=program.label,
        vocab=tuple(vocab),
        max_len=max_len,
        bos_id=BOS_ID,
        directions=layout.directions,
        variables=allocation_to_variables(
            graph, allocation, value_sets, layout, blocks, weights.mlp_columns
        ),
        circuit=circuit,
        notes={
            "softmax_coldness": str(softmax_coldness),
            "circuit": "designed" if circuit is structure else "dataflow",
            "attention": "causal" if causal else "bidirectional",
        },
        structure=structure,
        edge_reads=reads,
    )
    return CompiledModel(
        weights.cfg,
        dict(weights.state_dict),
        truth,
        weights.output_values,
        program=program,
        name=name,
    )


def allocation_to_variables(
    graph: ProgramGraph,
    allocation: Allocation,
    value_sets: ValueSets,
    layout: ResidualLayout,
    blocks: Sequence[Block],
    mlp_columns: Mapping[tuple[int, str], tuple[int, int]],
) -> dict[str, VariableTruth]:
    """Per SOp: the sites writing it, where it is readable, and its residual subspace."""
    out = {}
    by_label: dict[str, list[Block]] = {}
    for b in blocks:
        by_label.setdefault(b.label, []).append(b)
    for sop in graph.sops:
        p = allocation.placements[sop.label]
        bl = by_label.get(sop.label, [])
        sites: tuple[Site, ...]
        if p.kind == "tok_embed":
            sites, resid, how = (
                (Site(Component.EMBED),),
                Site(Component.RESID_PRE, 0),
                "token_embedding",
            )
        elif p.kind == "pos_embed":
            sites, resid, how = (
                (Site(Component.POS_EMBED),),
                Site(Component.RESID_PRE, 0),
                "position_embedding",
            )
        elif p.kind == "head":
            sites = (Site(Component.ATTN_RESULT, p.layer, p.head),)
            resid, how = Site(Component.RESID_MID, p.layer), bl[0].construction
        else:
            sites = (
                (Site(Component.ATTN_RESULT, p.layer, p.head),) if p.kind == "head+mlp" else ()
            ) + (Site(Component.MLP_OUT, p.layer),)
            resid, how = Site(Component.RESID_POST, p.layer), bl[-1].construction
        reads = sorted(
            {
                r
                for b in bl
                for r in (
                    b.q_reads + b.k_reads + b.v_reads if isinstance(b, HeadBlock) else b.reads
                )
            }
        )
        out[sop.label] = VariableTruth(
            sop.label,
            sop.kind,
            sop.encoding.value,
            tuple(value_sets[sop.label].values or ()),
            sites,
            resid,
            tuple(layout.dims(sop.label)),
            how,
            tuple(reads),
            mlp_columns.get((p.layer, sop.label)) if p.layer is not None else None,
        )
    return out


def random_pairs(
    vocab: Sequence[Any], max_len: int, n: int, seed: int = 0
) -> list[tuple[list, list]]:
    """``n`` seeded (clean, corrupted) pairs of uniform random inputs sharing a length."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        length = rng.randint(1, max_len)
        pairs.append(
            ([rng.choice(vocab) for _ in range(length)], [rng.choice(vocab) for _ in range(length)])
        )
    return pairs


def _check_inputs(vocab: Collection[Any], max_len: int) -> list[Any]:
    if isinstance(vocab, (set, frozenset)):  # Tracr passes sets: fix an order (token ids)
        from interplab.compile.residual_basis import sort_values

        vocab = sort_values(list(vocab))
    if isinstance(vocab, (str, bytes)) or not hasattr(vocab, "__iter__"):
        raise ConfigError(
            f"vocab must be a list (or set) of token values, got "
            f"{type(vocab).__name__} {vocab!r:.40}"
        )
    vocab = list(vocab)
    problems = []
    if not vocab:
        problems.append("vocab is empty; pass the set of input token values")
    if len(set(map(repr, vocab))) != len(vocab):
        problems.append(f"vocab has duplicates: {vocab}")
    if not isinstance(max_len, int) or max_len < 1:
        problems.append(f"max_len must be a positive int, got {max_len!r}")
    if problems:
        raise ConfigError("cannot compile: " + "; ".join(problems))
    return vocab


__all__ = ["MLPBlock", "compile_program", "random_pairs"]
