"""The ``interplab trace-data smollm2-ft --prompt ... --html F`` page: which fine-tuning documents
made the model write this text, by an attribution method and by a word-overlap baseline.

One self-contained HTML page (inline CSS, no script, no external asset; every string from the
corpus, the prompt or the model escaped): the prompt and the generated text, the planted truth
when the prompt is a planted one, then the two ranked lists side by side. In each document the
spans it shares with the generated text (runs of at least :data:`MIN_WORDS` words, compared
case-insensitively) are highlighted, so a reader sees at once whether a top document is a
verbatim source (passages) or shares no wording with the output (facts, style), which is where
an overlap baseline cannot help and an attribution method has to.

:func:`shared_spans` is the highlighting rule, also used for the ``spans`` of the command's JSON.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

#: the shortest run of shared words that is highlighted
MIN_WORDS = 3

_WORD = re.compile(r"\w+", re.UNICODE)


def _words(text: str) -> list[tuple[str, int, int]]:
    """(casefolded word, start, end) for each run of word characters in ``text``."""
    return [(m.group().casefold(), m.start(), m.end()) for m in _WORD.finditer(text)]


def _marked(a: Sequence[str], b: Sequence[str], min_words: int) -> tuple[list[bool], list[bool]]:
    """Which words of ``a`` and of ``b`` lie in a run of >= ``min_words`` consecutive words
    that both contain (longest common suffixes by dynamic programming, O(len(a) len(b)))."""
    in_a, in_b = [False] * len(a), [False] * len(b)
    prev = [0] * (len(b) + 1)
    for i, wa in enumerate(a):
        cur = [0] * (len(b) + 1)
        for j, wb in enumerate(b):
            if wa == wb:
                n = prev[j] + 1
                cur[j + 1] = n
                if n >= min_words:
                    for d in range(n):
                        in_a[i - d] = True
                        in_b[j - d] = True
        prev = cur
    return in_a, in_b


def _spans(words: list[tuple[str, int, int]], marked: list[bool]) -> list[tuple[int, int]]:
    """Character spans covering consecutive marked words (the text between them included)."""
    out: list[tuple[int, int]] = []
    run_start = None
    for k, (_, start, end) in enumerate(words):
        if marked[k]:
            if run_start is None:
                run_start = start
            last_end = end
        elif run_start is not None:
            out.append((run_start, last_end))
            run_start = None
    if run_start is not None:
        out.append((run_start, last_end))
    return out


def shared_spans(
    doc: str, text: str, min_words: int = MIN_WORDS
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The character spans of ``doc`` and of ``text`` made of word runs (>= ``min_words``
    words, case-insensitive, punctuation ignored) that occur in both: (doc spans, text spans),
    each sorted and disjoint."""
    if min_words < 1:
        raise ValueError(f"min_words must be >= 1, got {min_words}")
    dw, tw = _words(doc), _words(text)
    in_d, in_t = _marked([w for w, _, _ in dw], [w for w, _, _ in tw], min_words)
    return _spans(dw, in_d), _spans(tw, in_t)


def highlight(text: str, spans: Sequence[Sequence[int]]) -> str:
    """``text`` escaped for HTML with each (start, end) span wrapped in ``<mark>``."""
    out, pos = [], 0
    for start, end in sorted((int(s), int(e)) for s, e in spans):
        if start < pos or end <= start:
            continue
        out.append(html.escape(text[pos:start]))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:110em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.4em}
.muted{color:#666;font-size:.9em}
.box{border:1px solid #ccc;border-radius:4px;padding:.6em;background:#fafafa;white-space:pre-wrap}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:1.2em}
.doc{border:1px solid #ddd;border-radius:4px;padding:.5em;margin:.5em 0}
.doc.source{border:2px solid #2a7ae2;background:#f2f7ff}
.doc .text{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:.85em;margin-top:.3em}
.tag{display:inline-block;padding:0 .4em;border-radius:3px;background:#eee;font-size:.8em}
.tag.source{background:#2a7ae2;color:#fff}
mark{background:#ffe066}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}
"""


#: what each baseline's score means, shown above its list
BASELINE_NOTES = {
    "bm25": "Okapi BM25 of the prompt and generated text's words against the document",
    "ngram_overlap": "the share of the prompt and generated text's word 3-grams found verbatim "
    "in the document",
    "embedding_nn": "cosine of sentence embeddings (MiniLM) of the prompt and generated text "
    "and of the document",
    "loss_membership": "the drop of the document's loss from the base to the fine-tuned model "
    "(the same for every prompt: which documents were memorised, not which made this text)",
    "random": "seeded random scores (the control)",
}


def _doc_card(rank: int, row: Mapping[str, Any], docs: Sequence[str], sources: set[int]) -> str:
    i = int(row["doc"])
    src = i in sources
    tag = "<span class='tag source'>planted source</span> " if src else ""
    return (
        f"<div class='doc{' source' if src else ''}' data-doc='{i}'>"
        f"<b>#{rank}</b> doc[{i}] <span class='tag'>{html.escape(str(row['kind']))}</span> "
        f"{tag}score {float(row['score']):+.4g} · {len(row['spans'])} shared span(s)"
        f"<div class='text'>{highlight(docs[i], row['spans'])}</div></div>"
    )


def _found(found: Sequence[int], sources: Sequence[int]) -> str:
    return f"{len(found)} of {len(sources)}" + (
        f" (doc {', '.join(map(str, found))})" if found else ""
    )


def copyright_page(data: Mapping[str, Any], docs: Sequence[str]) -> str:
    """A self-contained HTML page of one ``trace-data`` copyright query: ``data`` is the
    command's JSON (prompt, generated, method, baseline, top, baseline_top, planted), ``docs``
    the fine-tuning corpus the indices refer to."""
    esc = html.escape
    planted = data.get("planted")
    sources = set(planted["sources"]) if planted else set()
    title = f"trace-data — {data['organism']}: {data['method']} beside {data['baseline']}"
    gen_spans = data.get("generated_spans", [])
    if planted:
        truth = (
            "<h2>Planted truth</h2><table>"
            f"<tr><th>kind</th><td>{esc(planted['kind'])}</td></tr>"
            f"<tr><th>key</th><td>{esc(planted['key'])}</td></tr>"
            f"<tr><th>target</th><td>{esc(planted.get('target', ''))}</td></tr>"
            f"<tr><th>sources</th><td>{esc(', '.join(map(str, planted['sources'])))}</td></tr>"
            f"<tr><th>found by {esc(data['method'])} (top {data['k']})</th>"
            f"<td>{esc(_found(planted['found_by_method'], planted['sources']))}</td></tr>"
            f"<tr><th>found by {esc(data['baseline'])} (top {data['k']})</th>"
            f"<td>{esc(_found(planted['found_by_baseline'], planted['sources']))}</td></tr>"
            "</table>"
        )
    else:
        truth = (
            "<p class='muted'>This prompt is not one of the organism's planted prompts, so no "
            "ground truth is shown.</p>"
        )
    method_cards = "".join(_doc_card(r, row, docs, sources) for r, row in enumerate(data["top"], 1))
    base_cards = "".join(
        _doc_card(r, row, docs, sources) for r, row in enumerate(data["baseline_top"], 1)
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>"
        f"<h2>Prompt</h2><div class='box' id='prompt'>{esc(data['prompt'])}</div>"
        "<h2>Generated (greedy)</h2>"
        f"<div class='box' id='generated'>{highlight(data['generated'], gen_spans)}</div>"
        f"<p class='muted'>Highlighted: runs of at least {MIN_WORDS} words (case and "
        "punctuation ignored) that the text shares with a shown document.</p>"
        f"{truth}"
        f"<div class='cols'><div id='method'><h2>{esc(data['method'])}: top {len(data['top'])}"
        "</h2><p class='muted'>Score: how much training on the document lowered the loss of "
        "the generated continuation given the prompt (positive: it pushed the model towards "
        f"this text).</p>{method_cards}</div>"
        f"<div id='baseline'><h2>{esc(data['baseline'])} (baseline): top "
        f"{len(data['baseline_top'])}</h2><p class='muted'>Score: "
        f"{esc(BASELINE_NOTES.get(data['baseline'], data['baseline']))}.</p>{base_cards}</div>"
        "</div>"
        f"<p class='muted'>{data['n_docs']} fine-tuning documents; attribution took "
        f"{float(data['seconds']):.2f} s.</p></body></html>"
    )
