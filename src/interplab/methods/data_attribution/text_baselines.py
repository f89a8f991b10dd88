"""Text baselines for training-data attribution: what a lawyer's expert would try first.

Each one scores every (query text, training document) pair without looking inside the model's
gradients, and returns ``scores [n_queries, n_docs]`` (larger = the document is more likely a
source of the query):

    ngram_overlap     shared word n-grams (default 3) over the query's n-grams: the share of the
                      query's wording found verbatim in the document (plagiarism checkers)
    bm25              Okapi BM25 of the query's words against each document (k1 = 1.5, b = 0.75;
                      idf = log(1 + (N - df + 0.5) / (df + 0.5))): a search engine's ranking
    embedding_nn      cosine of sentence embeddings (all-MiniLM-L6-v2, mean-pooled and
                      normalised; loaded offline from the registry): "semantically similar text"
    loss_membership   loss-based membership inference: the drop of each document's loss from the
                      base model to the fine-tuned one. It is QUERY-INDEPENDENT by nature (every
                      query gets the same ranking): it says which documents the fine-tune
                      memorised most, not which ones made this output
    random            seeded Gaussian scores (the control)

Words are lower-cased ``\\w+`` runs. They are registered in the ``text_attribution`` family as
baselines (never ranked best); the call shape is ``fn(docs, queries, *, seed=0, **settings) ->
TextAttribution``. ``loss_membership`` needs ``doc_losses=(base [n_docs], fine_tuned [n_docs])``
(the caller computes them with the model's adapters off and on); ``embedding_nn`` accepts an
``embed`` callable (texts -> [n, d] normalised rows) in place of MiniLM (tests).
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from interplab.errors import ConfigError, ShapeError
from interplab.methods.base import Cost, Result
from interplab.methods.registry import register

Tensor = torch.Tensor
FAMILY = "text_attribution"
METRIC = "recall_at_10"
WORD = re.compile(r"\w+")
BM25_K1 = 1.5
BM25_B = 0.75
NGRAM = 3


@dataclass(frozen=True)
class TextAttribution(Result):
    """``scores[q, d]``: how strongly the baseline ties document d to query q."""

    method: str
    scores: Tensor


def words(text: str) -> list[str]:
    """Lower-cased word tokens of ``text``."""
    return WORD.findall(text.lower())


def _ngrams(ws: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)}


def _check(docs: Sequence[str], queries: Sequence[str]) -> None:
    for name, texts in (("docs", docs), ("queries", queries)):
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ConfigError(f"{name} must be a list of strings")
    if not docs:
        raise ConfigError("there are no documents to attribute to")


def ngram_scores(docs: Sequence[str], queries: Sequence[str], n: int = NGRAM) -> Tensor:
    """[n_queries, n_docs]: share of the query's word n-grams that occur in the document
    (a query shorter than n words uses n-grams of its own length)."""
    _check(docs, queries)
    if n < 1:
        raise ConfigError(f"n must be ≥ 1, got {n}")
    doc_words = [words(d) for d in docs]
    out = torch.zeros(len(queries), len(docs), dtype=torch.float64)
    for q, text in enumerate(queries):
        qw = words(text)
        m = min(n, len(qw))
        if m == 0:
            continue
        grams = _ngrams(qw, m)
        for d, dw in enumerate(doc_words):
            out[q, d] = len(grams & _ngrams(dw, m)) / len(grams)
    return out


def bm25_scores(
    docs: Sequence[str], queries: Sequence[str], k1: float = BM25_K1, b: float = BM25_B
) -> Tensor:
    """[n_queries, n_docs]: Okapi BM25 of each query's words against each document."""
    _check(docs, queries)
    doc_counts = [Counter(words(d)) for d in docs]
    lengths = torch.tensor([sum(c.values()) for c in doc_counts], dtype=torch.float64)
    avg = float(lengths.mean()) or 1.0
    df = Counter(w for c in doc_counts for w in c)
    n_docs = len(docs)
    norm = k1 * (1 - b + b * lengths / avg)  # [n_docs]
    out = torch.zeros(len(queries), n_docs, dtype=torch.float64)
    for q, text in enumerate(queries):
        for w, qtf in Counter(words(text)).items():
            if w not in df:
                continue
            idf = math.log(1 + (n_docs - df[w] + 0.5) / (df[w] + 0.5))
            tf = torch.tensor([c.get(w, 0) for c in doc_counts], dtype=torch.float64)
            out[q] += qtf * idf * tf * (k1 + 1) / (tf + norm)
    return out


def minilm_embed(batch_size: int = 64) -> Callable[[Sequence[str]], Tensor]:
    """all-MiniLM-L6-v2's normalised sentence embeddings (offline, from the registry)."""
    from interplab.models.pretrained.registry import load

    model = load("minilm-l6")

    def embed(texts: Sequence[str]) -> Tensor:
        with torch.no_grad():
            parts = [
                model.embed(list(texts[s : s + batch_size]))
                for s in range(0, len(texts), batch_size)
            ]
        return torch.cat(parts) if parts else torch.empty(0, 384)

    return embed


def embedding_scores(
    docs: Sequence[str],
    queries: Sequence[str],
    embed: Callable[[Sequence[str]], Tensor] | None = None,
) -> Tensor:
    """[n_queries, n_docs]: cosine similarity of the sentence embeddings."""
    _check(docs, queries)
    fn = embed or minilm_embed()
    e_docs, e_q = fn(list(docs)).double(), fn(list(queries)).double()
    e_docs = e_docs / e_docs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    e_q = e_q / e_q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return e_q @ e_docs.T


def membership_scores(n_queries: int, base_loss: Tensor, tuned_loss: Tensor) -> Tensor:
    """[n_queries, n_docs]: each document's loss drop base -> fine-tuned, the same for every
    query (membership inference is query-independent)."""
    if base_loss.ndim != 1 or base_loss.shape != tuned_loss.shape:
        raise ShapeError(
            f"doc losses must be two [n_docs] tensors, got {tuple(base_loss.shape)} and "
            f"{tuple(tuned_loss.shape)}"
        )
    drop = (base_loss - tuned_loss).double()
    return drop[None].expand(n_queries, -1).clone()


def random_text_scores(n_queries: int, n_docs: int, seed: int = 0) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n_queries, n_docs, generator=gen, dtype=torch.float64)


def _result(name: str, fn: Callable[[], Tensor], cost: Cost) -> TextAttribution:
    start = time.perf_counter()
    scores = fn()
    return TextAttribution(name, scores, cost=cost, seconds=time.perf_counter() - start)


@register(FAMILY, "ngram_overlap", kind="baseline", cost_unit="none", metric=METRIC)
def ngram_overlap(
    docs: Sequence[str], queries: Sequence[str], *, seed: int = 0, n: int = NGRAM
) -> TextAttribution:
    """Share of the query's word 3-grams found verbatim in each document."""
    return _result("ngram_overlap", lambda: ngram_scores(docs, queries, n), Cost())


@register(FAMILY, "bm25", kind="baseline", cost_unit="none", metric=METRIC)
def bm25(docs: Sequence[str], queries: Sequence[str], *, seed: int = 0) -> TextAttribution:
    """Okapi BM25 of the query's words against each document."""
    return _result("bm25", lambda: bm25_scores(docs, queries), Cost())


@register(FAMILY, "embedding_nn", kind="baseline", cost_unit="passes", metric=METRIC)
def embedding_nn(
    docs: Sequence[str],
    queries: Sequence[str],
    *,
    seed: int = 0,
    embed: Callable[[Sequence[str]], Tensor] | None = None,
) -> TextAttribution:
    """Cosine of MiniLM sentence embeddings of the query and each document."""
    n = -(-len(docs) // 64) + -(-len(queries) // 64)
    return _result("embedding_nn", lambda: embedding_scores(docs, queries, embed), Cost(forward=n))


@register(FAMILY, "loss_membership", kind="baseline", cost_unit="passes", metric=METRIC)
def loss_membership(
    docs: Sequence[str],
    queries: Sequence[str],
    *,
    seed: int = 0,
    doc_losses: tuple[Tensor, Tensor] | None = None,
) -> TextAttribution:
    """Each document's loss drop from the base to the fine-tuned model (query-independent)."""
    _check(docs, queries)
    if doc_losses is None:
        raise ConfigError(
            "loss_membership needs doc_losses=(base [n_docs], fine_tuned [n_docs]): each "
            "document's loss under the base and the fine-tuned model"
        )
    base, tuned = doc_losses
    if len(base) != len(docs):
        raise ShapeError(
            f"doc_losses must have one value per document ({len(docs)}), got {len(base)}"
        )
    return _result(
        "loss_membership",
        lambda: membership_scores(len(queries), base, tuned),
        Cost(forward=2),
    )


@register(FAMILY, "random", kind="baseline", cost_unit="none", metric=METRIC)
def random_docs(docs: Sequence[str], queries: Sequence[str], *, seed: int = 0) -> TextAttribution:
    """Seeded Gaussian scores (the control)."""
    _check(docs, queries)
    return _result("random", lambda: random_text_scores(len(queries), len(docs), seed), Cost())


BASELINES = ("ngram_overlap", "bm25", "embedding_nn", "loss_membership", "random")

__all__ = [
    "BASELINES",
    "FAMILY",
    "TextAttribution",
    "bm25",
    "bm25_scores",
    "embedding_nn",
    "embedding_scores",
    "loss_membership",
    "membership_scores",
    "minilm_embed",
    "ngram_overlap",
    "ngram_scores",
    "random_docs",
    "words",
]
