"""An interactive viewer in one self-contained HTML file: inline CSS and JavaScript, data embedded
as JSON, nothing fetched (no CDN, works from ``file://``).

Panels (each optional):

    attention   tokens of a prompt and a head selector; hovering a token shows how much that
                query position attends to every earlier token (shaded) and the weights in a
                status line
    circuit     a layered graph of a circuit's edges (embeddings at the bottom, logits on top,
                colour = q/k/v/in channel, width = score) and a score-threshold slider that
                hides edges below it; a counter says how many are shown
    features    dictionary feature dashboards (top-activating contexts with each token shaded by
                activation, logit effects, activation histogram) and a search box that filters
                features by id, label or context text

    html = viewer_page("title", intro_html, attention=..., circuit=..., features=...)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.2rem auto;max-width:1200px;
     padding:0 1rem;color:#222}
h1{font-size:1.35rem}h2{font-size:1.1rem;margin-top:1.6rem;border-bottom:1px solid #ddd}
.tok{display:inline-block;padding:1px 2px;margin:1px;border:1px solid #eee;border-radius:3px;
     font-family:ui-monospace,monospace;font-size:13px;white-space:pre;cursor:default}
.tok.query{outline:2px solid #c33}
#attn-status,#circuit-count{font-size:13px;color:#555;margin:.4rem 0}
.panel{margin:.6rem 0}
svg text{font-size:10px;font-family:system-ui,sans-serif}
.feature{border:1px solid #ddd;border-radius:6px;padding:.5rem .7rem;margin:.5rem 0}
.feature h3{font-size:.95rem;margin:.2rem 0}
.ctx{margin:.15rem 0}
.bars{display:flex;align-items:flex-end;height:48px;gap:1px}
.bars div{background:#58c;width:6px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:2px 6px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px;vertical-align:middle}
input[type=range]{width:320px;vertical-align:middle}
"""

_JS = r"""
(function(){
const data = JSON.parse(document.getElementById('viewer-data').textContent);
function shade(v){ const a = Math.max(0, Math.min(1, v)); return 'rgba(220,60,40,' + a.toFixed(3) + ')'; }

// ---------------------------------------------------------------- attention
const att = data.attention;
if (att) {
  const sel = document.getElementById('attn-head');
  att.heads.forEach((h, i) => { const o = document.createElement('option'); o.value = i;
    o.textContent = h.name; sel.appendChild(o); });
  const box = document.getElementById('attn-tokens');
  const status = document.getElementById('attn-status');
  att.tokens.forEach((t, i) => { const s = document.createElement('span'); s.className = 'tok';
    s.textContent = t; s.dataset.pos = i; box.appendChild(s); });
  const spans = box.querySelectorAll('.tok');
  function show(q){
    const pat = att.heads[+sel.value].pattern[q];
    spans.forEach((s, k) => { s.classList.toggle('query', k === q);
      const w = k <= q ? pat[k] : 0; s.style.background = shade(w); s.dataset.weight = w.toFixed(4); });
    const best = pat.map((w, k) => [w, k]).filter(p => p[1] <= q).sort((a, b) => b[0] - a[0]).slice(0, 3);
    status.textContent = 'query ' + q + ' ' + JSON.stringify(att.tokens[q]) + ' attends most to: ' +
      best.map(p => JSON.stringify(att.tokens[p[1]]) + ' (' + p[0].toFixed(3) + ')').join(', ');
  }
  spans.forEach(s => s.addEventListener('mouseenter', () => show(+s.dataset.pos)));
  sel.addEventListener('change', () => show(att.tokens.length - 1));
  show(att.tokens.length - 1);
}

// ---------------------------------------------------------------- circuit
const cirData = data.circuit;
if (cirData) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.getElementById('circuit-svg');
  const slider = document.getElementById('circuit-threshold');
  const count = document.getElementById('circuit-count');
  const choice = document.getElementById('circuit-choice');
  const options = cirData.options || [cirData];
  let lines = [], cir = null, sorted = [];
  function draw(c){
    cir = c; while (svg.firstChild) svg.removeChild(svg.firstChild);
    const rows = [...new Set(cir.nodes.map(n => n.row))].sort((a, b) => a - b);
    const rowH = 34, W = 1100, H = 40 + rowH * rows.length;
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H); svg.setAttribute('height', H);
    const pos = {};
    rows.forEach((r, i) => {
      const inRow = cir.nodes.filter(n => n.row === r).sort((a, b) => a.col - b.col);
      inRow.forEach((n, j) => { pos[n.id] = [70 + (W - 100) * (j + 0.5) / inRow.length, H - 20 - rowH * i]; });
    });
    const colors = {q: '#d55', k: '#4a4', v: '#55d', in: '#777'};
    const maxS = Math.max(...cir.edges.map(e => Math.abs(e.score)), 1e-12);
    lines = cir.edges.map(e => {
      const l = document.createElementNS(NS, 'line'); const a = pos[e.sender], b = pos[e.receiver];
      l.setAttribute('x1', a[0]); l.setAttribute('y1', a[1]); l.setAttribute('x2', b[0]); l.setAttribute('y2', b[1]);
      l.setAttribute('stroke', colors[e.channel] || '#777');
      l.setAttribute('stroke-width', (0.4 + 3.5 * Math.abs(e.score) / maxS).toFixed(2));
      if (e.score < 0) l.setAttribute('stroke-dasharray', '4 3');  // works against the behaviour
      l.setAttribute('opacity', '0.7'); l.dataset.score = Math.abs(e.score); l.classList.add('edge');
      const t = document.createElementNS(NS, 'title'); t.textContent = e.label + '  score ' + e.score.toPrecision(3);
      l.appendChild(t); svg.appendChild(l); return l; });
    rows.forEach((r, i) => { const t = document.createElementNS(NS, 'text'); t.setAttribute('x', 2);
      t.setAttribute('y', H - 16 - rowH * i); t.textContent = cir.row_labels[r] || ''; svg.appendChild(t); });
    cir.nodes.forEach(n => { const p = pos[n.id]; const c = document.createElementNS(NS, 'circle');
      c.setAttribute('cx', p[0]); c.setAttribute('cy', p[1]); c.setAttribute('r', 5);
      c.setAttribute('fill', n.kind === 'mlp' ? '#c85' : n.kind === 'head' ? '#58c' : '#6a8');
      c.classList.add('node'); c.dataset.id = n.id;
      const t = document.createElementNS(NS, 'title'); t.textContent = n.id; c.appendChild(t); svg.appendChild(c);
      const lab = document.createElementNS(NS, 'text'); lab.setAttribute('x', p[0] + 7); lab.setAttribute('y', p[1] - 6);
      lab.setAttribute('font-size', '10'); lab.classList.add('node-label'); lab.textContent = n.id; svg.appendChild(lab); });
    sorted = cir.edges.map(e => Math.abs(e.score)).sort((a, b) => a - b);
    apply();
  }
  function apply(){
    if (!sorted.length) { count.textContent = 'empty circuit'; return; }
    const q = +slider.value / 1000; const thr = sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    let shown = 0; const live = new Set();
    lines.forEach((l, i) => { const on = +l.dataset.score >= thr; l.style.display = on ? '' : 'none';
      if (on) { shown++; live.add(cir.edges[i].sender); live.add(cir.edges[i].receiver); } });
    svg.querySelectorAll('circle.node').forEach(c => { c.style.opacity = live.has(c.dataset.id) ? 1 : 0.15; });
    svg.querySelectorAll('text.node-label').forEach(t => { t.style.opacity = live.has(t.textContent) ? 1 : 0.15; });
    count.textContent = shown + ' of ' + lines.length + ' edges shown (|score| >= ' + thr.toPrecision(3) + '; dashed: negative score)';
  }
  if (choice) { options.forEach((o, i) => { const el = document.createElement('option'); el.value = i;
      el.textContent = o.name; choice.appendChild(el); });
    choice.addEventListener('change', () => draw(options[+choice.value])); }
  slider.addEventListener('input', apply); draw(options[0]);
}

// ---------------------------------------------------------------- features
const fea = data.features;
if (fea) {
  const list = document.getElementById('feature-list');
  const search = document.getElementById('feature-search');
  const fcount = document.getElementById('feature-count');
  fea.forEach(f => {
    const d = document.createElement('div'); d.className = 'feature';
    const text = [String(f.id), f.label || ''].concat(f.contexts.map(c => c.tokens.join(''))).join(' ').toLowerCase();
    d.dataset.search = text;
    const h = document.createElement('h3'); h.textContent = 'feature ' + f.id + (f.label ? ' - ' + f.label : '') +
      '  (max ' + (+f.max).toPrecision(3) + ', density ' + (+f.density).toPrecision(2) + ')'; d.appendChild(h);
    f.contexts.forEach(c => { const row = document.createElement('div'); row.className = 'ctx';
      const mx = Math.max(...c.acts, 1e-9);
      c.tokens.forEach((t, k) => { const s = document.createElement('span'); s.className = 'tok';
        s.textContent = t; s.style.background = shade(c.acts[k] / mx); s.title = c.acts[k].toPrecision(3); row.appendChild(s); });
      d.appendChild(row); });
    if (f.logits) { const p = document.createElement('div'); p.className = 'ctx';
      p.textContent = 'promotes: ' + f.logits.up.map(x => JSON.stringify(x[0])).join(' ') +
                      '   suppresses: ' + f.logits.down.map(x => JSON.stringify(x[0])).join(' '); d.appendChild(p); }
    if (f.hist) { const b = document.createElement('div'); b.className = 'bars'; const m = Math.max(...f.hist, 1);
      f.hist.forEach(v => { const bar = document.createElement('div'); bar.style.height = (46 * v / m + 1) + 'px';
        bar.title = v; b.appendChild(bar); }); d.appendChild(b); }
    list.appendChild(d); });
  function filter(){ const q = search.value.toLowerCase().trim(); let shown = 0;
    list.querySelectorAll('.feature').forEach(d => { const on = !q || d.dataset.search.includes(q);
      d.style.display = on ? '' : 'none'; shown += on; });
    fcount.textContent = shown + ' of ' + fea.length + ' features'; }
  search.addEventListener('input', filter); filter();
}
})();
"""


def _json_for_script(data: Any) -> str:
    """JSON safe inside a <script> element (no closing tag or comment opener can appear)."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def attention_data(tokens: Sequence[str], heads: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """``heads``: (name, pattern [q, k] nested lists or tensor) pairs."""
    out = []
    for name, pat in heads:
        rows = pat.tolist() if hasattr(pat, "tolist") else pat
        out.append({"name": name, "pattern": [[round(float(v), 4) for v in r] for r in rows]})
    return {"tokens": list(tokens), "heads": out}


def circuit_data(edges: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``edges``: dicts with sender, receiver (node strings like 'L3.H2', 'L3.MLP', 'tokens',
    'logits'), channel and score. Rows: embeddings, then per layer heads and the MLP."""
    nodes: dict[str, dict[str, Any]] = {}
    labels: dict[int, str] = {}
    for e in edges:
        for name in (e["sender"], e["receiver"]):
            if name not in nodes:
                row, col, kind = _place(name)
                nodes[name] = {"id": name, "row": row, "col": col, "kind": kind}
                labels[row] = _row_label(name, row)
    return {
        "nodes": list(nodes.values()),
        "row_labels": {str(k): v for k, v in labels.items()},
        "edges": [
            {
                "sender": e["sender"],
                "receiver": e["receiver"],
                "channel": e.get("channel", "in"),
                "score": float(e["score"]),
                "label": e.get("edge", f"{e['sender']}->{e['receiver']}"),
            }
            for e in edges
        ],
    }


def circuit_options(named: Sequence[tuple[str, Sequence[dict[str, Any]]]]) -> dict[str, Any]:
    """Several circuits, chosen from a menu: (name, edges as for :func:`circuit_data`) pairs."""
    return {"options": [{"name": name, **circuit_data(edges)} for name, edges in named]}


def _place(name: str) -> tuple[int, int, str]:
    if name[:1] == "L" and name[1:2].isdigit() and "." in name:
        layer, rest = name[1:].split(".", 1)
        if rest == "MLP":
            return 2 * int(layer) + 2, 0, "mlp"
        return 2 * int(layer) + 1, int(rest[1:]), "head"
    if name == "logits":
        return 10_000, 0, "logits"
    return 0, 0 if name in ("tokens", "tok_embed") else 1, "embed"


def _row_label(name: str, row: int) -> str:
    if row == 0:
        return "embed"
    if row == 10_000:
        return "logits"
    layer = (row - 1) // 2
    return f"L{layer} {'mlp' if row % 2 == 0 else 'attn'}"


def viewer_page(
    title: str,
    intro_html: str = "",
    *,
    attention: dict[str, Any] | None = None,
    circuit: dict[str, Any] | None = None,
    features: list[dict[str, Any]] | None = None,
    sections: Sequence[tuple[str, str]] = (),
) -> str:
    """The complete HTML document. ``sections`` are extra (heading, html) blocks placed after
    the intro; the interactive panels follow."""
    parts = [f"<h1>{escape(title)}</h1>", intro_html]
    parts += [f"<h2>{escape(h)}</h2>{body}" for h, body in sections]
    body = viewer_fragment(attention=attention, circuit=circuit, features=features)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
        f"content='width=device-width, initial-scale=1'><title>{escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>{''.join(parts)}{body}</body></html>"
    )


def viewer_fragment(
    *,
    attention: dict[str, Any] | None = None,
    circuit: dict[str, Any] | None = None,
    features: list[dict[str, Any]] | None = None,
    css: bool = False,
) -> str:
    """The interactive panels, their data and script, to place in a page (one per page: the
    panels use fixed element ids). ``css=True`` adds the viewer's style sheet."""
    parts = [f"<style>{_CSS}</style>"] if css else []
    if circuit is not None:
        parts.append(
            "<h2>Circuit</h2><div class='panel'>"
            + ("circuit <select id='circuit-choice'></select> " if "options" in circuit else "")
            + "score threshold <input type='range' "
            "id='circuit-threshold' min='0' max='999' value='0'> <span class='legend'>"
            "<span style='background:#d55'></span>q<span style='background:#4a4'></span>k"
            "<span style='background:#55d'></span>v<span style='background:#777'></span>mlp/logits"
            "</span><div id='circuit-count'></div><svg id='circuit-svg' width='100%' "
            "></svg></div>"
        )
    if attention is not None:
        parts.append(
            "<h2>Attention patterns</h2><div class='panel'>head <select id='attn-head'>"
            "</select> <small>hover a token to see where it attends</small>"
            "<div id='attn-tokens'></div><div id='attn-status'></div></div>"
        )
    if features is not None:
        parts.append(
            "<h2>Features</h2><div class='panel'><input id='feature-search' type='search' "
            "placeholder='search features (id, label, context text)' size='40'> "
            "<span id='feature-count'></span><div id='feature-list'></div></div>"
        )
    data = {"attention": attention, "circuit": circuit, "features": features}
    return (
        f"{''.join(parts)}<script type='application/json' id='viewer-data'>"
        f"{_json_for_script(data)}</script><script>{_JS}</script>"
    )


def _x_ticks(lo: float, hi: float, log_x: bool) -> list[float]:
    """Tick positions in [lo, hi]: powers of ten on a log axis, 0, 1/5 .. 1 of a linear one."""
    import math

    if log_x:
        ticks = [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
        return [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)] or [lo, hi]
    return [lo + (hi - lo) * i / 5 for i in range(6)]


def line_chart(
    series: Sequence[tuple[str, Sequence[float], Sequence[float], str]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    log_x: bool = True,
    width: int = 520,
    height: int = 300,
    bands: Sequence[tuple[Sequence[float], Sequence[float]]] = (),
    percent_x: bool = False,
) -> str:
    """A hand-written SVG line chart: ``series`` = (name, x, y, colour); optional ``bands``
    (low, high) per series shaded behind it. x ticks: decades on a log axis, fifths of the
    range on a linear one (labels as percentages with ``percent_x``), never crowded."""
    import math

    xs = [x for _, xv, _, _ in series for x in xv if not log_x or x > 0]
    ys = [y for _, _, yv, _ in series for y in yv] + [
        v for lo, hi in bands for v in list(lo) + list(hi)
    ]
    ys = [y for y in ys if y == y]
    if not xs or not ys:
        return ""
    fx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    x0, x1 = fx(min(xs)), fx(max(xs))
    y0, y1 = min(min(ys), 0.0), max(max(ys), 1.0)
    L, R, T, B = 50, 130, 24, 36
    sx = lambda v: L + (fx(v) - x0) / ((x1 - x0) or 1) * (width - L - R)  # noqa: E731
    sy = lambda v: height - B - (v - y0) / ((y1 - y0) or 1) * (height - T - B)  # noqa: E731
    out = [
        f"<svg width='{width}' height='{height}'>",
        f"<text x='{L}' y='14' font-weight='bold'>{escape(title)}</text>",
        f"<line x1='{L}' y1='{height - B}' x2='{width - R}' y2='{height - B}' stroke='#888'/>",
        f"<line x1='{L}' y1='{T}' x2='{L}' y2='{height - B}' stroke='#888'/>",
    ]
    y_ticks: list[float] = []
    for v in (0.0, 1.0, y0, y1):  # 0 and 1 first; the ends only where they do not crowd them
        if all(abs(v - u) > 0.08 * ((y1 - y0) or 1) for u in y_ticks):
            y_ticks.append(v)
    for v in y_ticks:
        out.append(
            f"<text x='4' y='{sy(v) + 3:.1f}'>{v:.2g}</text>"
            f"<line x1='{L}' x2='{width - R}' y1='{sy(v):.1f}' y2='{sy(v):.1f}' stroke='#eee'/>"
        )
    for x in _x_ticks(min(xs), max(xs), log_x):
        label = f"{x:.1%}".replace(".0%", "%") if percent_x else f"{x:g}"
        out.append(
            f"<text x='{sx(x):.1f}' y='{height - B + 14}' text-anchor='middle' "
            f"class='x-tick'>{label}</text>"
        )
    out.append(f"<text x='{(L + width - R) / 2 - 40:.0f}' y='{height - 4}'>{escape(xlabel)}</text>")
    out.append(f"<text x='4' y='{T - 6}'>{escape(ylabel)}</text>")
    for (_name, xv, yv, color), band in zip(series, list(bands) + [None] * len(series)):
        pts = [(x, y) for x, y in zip(xv, yv) if (not log_x or x > 0) and y == y]
        if band:
            lo = [(x, v) for x, v in zip(xv, band[0]) if (not log_x or x > 0) and v == v]
            hi = [(x, v) for x, v in zip(xv, band[1]) if (not log_x or x > 0) and v == v]
            poly = " ".join(f"{sx(x):.1f},{sy(v):.1f}" for x, v in lo + hi[::-1])
            out.append(f"<polygon points='{poly}' fill='{color}' opacity='0.15'/>")
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        out.append(f"<polyline points='{path}' fill='none' stroke='{color}' stroke-width='2'/>")
    for i, (name, _, _, color) in enumerate(series):
        out.append(
            f"<rect x='{width - R + 8}' y='{T + 16 * i}' width='10' height='10' fill='{color}'/>"
            f"<text x='{width - R + 22}' y='{T + 9 + 16 * i}'>{escape(name)}</text>"
        )
    out.append("</svg>")
    return "".join(out)
