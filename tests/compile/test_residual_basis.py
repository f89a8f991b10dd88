from __future__ import annotations

from interplab.compile import rasp
from interplab.compile.graph import program_to_graph
from interplab.compile.programs import make_frac_prevs, make_hist
from interplab.compile.rasp import Map, numerical
from interplab.compile.residual_basis import graph_to_value_sets, value_sets_to_layout


def test_value_sets():
    prog = make_frac_prevs(numerical(Map(lambda t: 1 if t == "x" else 0, rasp.tokens, name="is_x")))
    vs = graph_to_value_sets(program_to_graph(prog), ["x", "y"], max_len=3)
    assert vs["tokens"].values == ("x", "y")
    assert vs["indices"].values == (0, 1, 2)
    assert vs["is_x"].values == (0.0, 1.0)
    fracs = vs["frac_prevs"].values
    assert fracs is not None and len(fracs) == 5  # 0 (also "nothing selected"), 1/3, 1/2, 2/3, 1
    assert min(fracs) == 0.0 and max(fracs) == 1.0 and any(abs(f - 2 / 3) < 1e-9 for f in fracs)
    hist = graph_to_value_sets(program_to_graph(make_hist()), ["a"], max_len=4)["hist"]
    assert hist.values == (0, 1, 2, 3, 4)


def test_layout_has_one_direction_per_value():
    graph = program_to_graph(make_hist())
    layout = value_sets_to_layout(graph, graph_to_value_sets(graph, ["a", "b"], max_len=3))
    labels = [d.label for d in layout.directions]
    assert labels[:2] == ["one", "bos"]
    assert labels.count("tokens") == 2 and labels.count("hist") == 4
    assert labels.count("hist:bos_weight") == 1
    assert layout.index("hist", 2) == labels.index("hist") + 2


def test_true_and_one_stay_apart():
    graph = program_to_graph(Map(lambda t: t == "a", rasp.tokens, name="is_a"))
    vs = graph_to_value_sets(graph, ["a", "b"], max_len=2)
    assert vs["is_a"].values == (False, True)
