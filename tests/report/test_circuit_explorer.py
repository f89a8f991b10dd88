"""The bench report's circuit explorer lists each recovered circuit and marks true edges."""

import json
import re
from types import SimpleNamespace

from interplab.core.circuit import Circuit, Edge, Node
from interplab.report.circuit_explorer import section


class FakeStore:
    def __init__(self, jobs, artifacts):
        self._jobs, self._artifacts = jobs, artifacts

    def jobs(self):
        return self._jobs

    def artifacts(self, name):
        return {k: {name: v[name]} for k, v in self._artifacts.items() if name in v}


def test_explorer_marks_true_positives():
    a, b = Node.attn_head(0, 1), Node.mlp(0)
    truth = Circuit.from_edges([Edge(Node.tok_embed(), a, "v"), Edge(a, b, "in")])
    found = Circuit.from_edges([Edge(Node.tok_embed(), a, "v"), Edge(Node.tok_embed(), b, "in")])
    job = SimpleNamespace(key="k1", organism="org", ablation="mean", method="eap")
    store = FakeStore([job], {"k1": {"circuit": found.to_json(), "true_circuit": truth.to_json()}})
    html = section(store)
    blob = re.search(r"<script type='application/json' id='viewer-data'>(.*?)</script>", html, re.S)
    options = json.loads(blob.group(1))["circuit"]["options"]
    assert [o["name"] for o in options] == ["org · mean · eap"]
    scores = {e["label"]: e["score"] for e in options[0]["edges"]}
    assert scores == {"tokens->L0.H1[v]": 2.0, "tokens->L0.MLP": 1.0}
    assert "circuit-choice" in html
    assert section(FakeStore([], {})) == ""
