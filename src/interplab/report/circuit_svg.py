"""Draw a Circuit as a layered SVG: embeddings at the bottom, logits at the top, one row per
sublayer (heads, then the MLP). Hand-written SVG, no plotting library needed."""

from __future__ import annotations

from html import escape

from interplab.core.circuit import Circuit, Node

_COLORS = {
    "tok_embed": "#6a8",
    "pos_embed": "#6a8",
    "head": "#58c",
    "mlp": "#c85",
    "logits": "#a6c",
}
_CHANNEL_COLORS = {"q": "#d55", "k": "#5a5", "v": "#55d", "in": "#777"}


def circuit_svg(
    circuit: Circuit, *, title: str = "", width: int = 340, highlight: Circuit | None = None
) -> str:
    """SVG of ``circuit``. With ``highlight`` (e.g. the true circuit), edges of ``circuit`` not
    in ``highlight`` are dashed red (false positives) and missing true edges are dotted grey."""
    nodes = set(circuit.nodes) | (set(highlight.nodes) if highlight else set())
    if not nodes:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="40"><text x="8" '
            f'y="24" font-size="12">{escape(title)}: empty circuit</text></svg>'
        )
    rows = sorted({n.order[0] for n in nodes})
    row_y = {r: 0 for r in rows}
    height = 60 + 52 * len(rows)
    for i, r in enumerate(rows):
        row_y[r] = height - 30 - 52 * i
    pos: dict[Node, tuple[float, float]] = {}
    for r in rows:
        in_row = sorted(n for n in nodes if n.order[0] == r)
        for j, n in enumerate(in_row):
            pos[n] = ((j + 1) * width / (len(in_row) + 1), row_y[r])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="6" y="16" font-size="12" font-weight="bold">{escape(title)}</text>',
    ]
    true_edges = highlight.edges if highlight else None
    drawn = set(circuit.edges) | (set(true_edges) if true_edges else set())
    for e in sorted(drawn):
        (x1, y1), (x2, y2) = pos[e.sender], pos[e.receiver]
        color, dash = _CHANNEL_COLORS[e.channel], ""
        if true_edges is not None and e not in true_edges:
            color, dash = "#e33", ' stroke-dasharray="4 3"'
        elif true_edges is not None and e not in circuit.edges:
            color, dash = "#bbb", ' stroke-dasharray="1 3"'
        parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" '
            f'stroke-width="1.3" opacity="0.8"{dash}><title>{escape(str(e))}</title></line>'
        )
    for n, (x, y) in pos.items():
        parts.append(
            f'<g><rect x="{x - 26:.1f}" y="{y - 10:.1f}" width="52" height="20" rx="4" '
            f'fill="{_COLORS[n.kind]}" opacity="0.9"/><text x="{x:.1f}" y="{y + 4:.1f}" '
            f'font-size="10" text-anchor="middle" fill="white">{escape(str(n))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
