"""Export a circuit in Neuronpedia's attribution-graph JSON layout (the layout circuit-tracer
writes: ``metadata``, ``qParams``, ``nodes``, ``links``), so it can be shared and opened there.

interplab's circuits are over components, not transcoder features, and their edges sum over
positions, so: every node sits at the last prompt position (``ctx_idx``); the token embedding
("tokens") is an ``embedding`` node, the logits a ``logit`` node, and each head or MLP a feature node
whose ``layer`` is its layer, ``feature`` its head index (MLP: the number of heads) and
``clerp`` its name ("L3.H2", "L3.MLP"). ``links`` carry the edge scores as ``weight``. Written
from the published field names; not checked against Neuronpedia's uploader (no network here).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _node(name: str, ctx: int, n_layers: int, n_heads: int) -> dict[str, Any]:
    if not (name[:1] == "L" and name[1:2].isdigit()) and name != "logits":  # tokens / positions
        layer, feature, kind = "E", 0 if name == "tokens" else 1, "embedding"
    elif name == "logits":
        layer, feature, kind = str(n_layers), 0, "logit"
    else:
        lay, rest = name[1:].split(".", 1)
        layer = lay
        feature = n_heads if rest == "MLP" else int(rest[1:])
        kind = "cross layer transcoder"
    node_id = f"{layer}_{feature}_{ctx}"
    return {
        "node_id": node_id,
        "feature": feature,
        "layer": layer,
        "ctx_idx": ctx,
        "feature_type": kind,
        "token_prob": 0.0,
        "is_target_logit": kind == "logit",
        "run_idx": 0,
        "reverse_ctx_idx": 0,
        "jsNodeId": node_id,
        "clerp": name,
        "influence": None,
        "activation": None,
    }


def to_neuronpedia(
    result: dict[str, Any],
    prompt_tokens: Sequence[str],
    *,
    ablation: str | None = None,
    n_layers: int,
    n_heads: int,
    slug: str = "interplab-circuit",
) -> dict[str, Any]:
    """The graph JSON of ``result`` (from :func:`~interplab.eval.circuit_study.circuit_study`)."""
    ablation = ablation or next(iter(result["ablations"]))
    edges = result["ablations"][ablation]["top_edges"]
    ctx = len(prompt_tokens) - 1
    nodes: dict[str, dict[str, Any]] = {}
    links = []
    for e in edges:
        for name in (e["sender"], e["receiver"]):
            nodes.setdefault(name, _node(name, ctx, n_layers, n_heads))
        links.append(
            {
                "source": nodes[e["sender"]]["node_id"],
                "target": nodes[e["receiver"]]["node_id"],
                "weight": float(e["score"]),
            }
        )
    return {
        "metadata": {
            "slug": slug,
            "scan": result.get("model", ""),
            "prompt_tokens": list(prompt_tokens),
            "prompt": "".join(prompt_tokens),
            "schema_version": 1,
            "info": {
                "creator_name": "interplab",
                "method": result["method"],
                "ablation": ablation,
                "task": result["task"],
                "note": "component-level circuit; edges summed over positions",
            },
        },
        "qParams": {
            "pinnedIds": [],
            "supernodes": [],
            "linkType": "both",
            "clickedId": "",
            "sg_pos": "",
        },
        "nodes": list(nodes.values()),
        "links": links,
    }
