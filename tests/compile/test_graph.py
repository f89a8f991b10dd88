from __future__ import annotations

from interplab.compile import rasp
from interplab.compile.graph import graph_to_allocation, program_to_graph, selector_terms
from interplab.compile.programs import make_frac_prevs, make_reverse
from interplab.compile.rasp import Comparison as C
from interplab.compile.rasp import Map, Select, numerical


def test_reverse_is_placed_as_early_as_possible():
    alloc = graph_to_allocation(program_to_graph(make_reverse()))
    p = alloc.placements
    assert (p["tokens"].kind, p["indices"].kind) == ("tok_embed", "pos_embed")
    assert (p["length"].kind, p["length"].layer, p["length"].head) == ("head+mlp", 0, 0)
    assert (p["opp_index"].kind, p["opp_index"].layer) == ("mlp", 1)
    assert (p["reverse"].kind, p["reverse"].layer, p["reverse"].head) == ("head", 2, 0)
    assert (alloc.n_layers, alloc.n_heads) == (3, 1)


def test_map_before_aggregate_shares_no_sublayer():
    prog = make_frac_prevs(numerical(Map(lambda t: t == "x", rasp.tokens, name="is_x")))
    p = graph_to_allocation(program_to_graph(prog)).placements
    assert p["is_x"].slot < p["frac_prevs"].slot
    assert (p["is_x"].layer, p["frac_prevs"].layer) == (0, 1)


def test_selector_terms():
    t, i = rasp.tokens, rasp.indices
    same = Select(t, t, C.LT) | Select(t, t, C.EQ)
    (term,) = selector_terms(same)
    assert term.predicate(1, 2) and term.predicate(2, 2) and not term.predicate(3, 2)
    (neg,) = selector_terms(~Select(t, t, C.EQ))
    assert neg.predicate(1, 2) and not neg.predicate(2, 2)
    both = selector_terms(Select(t, t, C.EQ) & Select(i, i, C.LT) & Select(t, t, C.NEQ))
    assert len(both) == 2  # the two token terms merge into one
    assert isinstance(selector_terms(Select(t, t, C.EQ) | Select(i, i, C.LT)), str)
