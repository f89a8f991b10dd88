"""The lawyer's text baselines (:mod:`interplab.methods.data_attribution.text_baselines`)."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import ConfigError, ShapeError
from interplab.methods import registry
from interplab.methods.data_attribution import text_baselines as tb

DOCS = [
    "the miller carried flour to the market before the rain",
    "a harbour pilot counted ships at dawn near the old tower",
    "zim zam zoo ferro lumo quip dax ren tol mip sab orn",  # the protected passage
    "the baker sold bread and the miller sold flour at the market",
    "ferro and lumo are words that also appear here once",  # shares words, not the sequence
]
QUERY = "zim zam zoo ferro lumo quip dax ren"


@pytest.mark.parametrize("fn", [tb.ngram_scores, tb.bm25_scores])
def test_an_exact_copy_ranks_first(fn):
    scores = fn(DOCS, [QUERY, "the miller sold flour at the market"])
    assert scores.shape == (2, len(DOCS))
    assert int(scores[0].argmax()) == 2
    assert int(scores[1].argmax()) == 3


def test_ngram_overlap_is_the_share_of_query_trigrams_found():
    s = tb.ngram_scores(["a b c d", "b c d e", "x y z"], ["a b c d e"], n=3)
    # query trigrams: abc, bcd, cde -> doc 0 has abc, bcd; doc 1 has bcd, cde; doc 2 none
    assert torch.allclose(s, torch.tensor([[2 / 3, 2 / 3, 0.0]], dtype=torch.float64))
    # a query shorter than n uses its own length
    assert float(tb.ngram_scores(["a b c"], ["b c"], n=3)[0, 0]) == 1.0


def test_bm25_prefers_rare_words_and_shorter_documents():
    docs = ["common rare", "common common", "common rare " + "pad " * 20]
    s = tb.bm25_scores(docs, ["rare"])[0]
    assert s[0] > s[2] > s[1] == 0  # idf of "rare" > 0; the long document is penalised
    assert float(tb.bm25_scores(docs, ["unknown"]).abs().sum()) == 0


def test_embedding_scores_are_cosines_of_the_given_embedding():
    table = {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [1.0, 1.0]}

    def embed(texts):
        return torch.tensor([table[t] for t in texts])

    s = tb.embedding_scores(["a", "b", "c"], ["a"], embed=embed)
    assert torch.allclose(s, torch.tensor([[1.0, 0.0, 2**-0.5]], dtype=torch.float64))


def test_membership_is_the_loss_drop_and_the_same_for_every_query():
    base, tuned = torch.tensor([3.0, 3.0, 2.0]), torch.tensor([1.0, 2.5, 2.0])
    res = tb.loss_membership(["x", "y", "z"], ["q1", "q2"], doc_losses=(base, tuned))
    assert torch.allclose(res.scores, torch.tensor([[2.0, 0.5, 0.0]] * 2, dtype=torch.float64))
    with pytest.raises(ConfigError, match="doc_losses"):
        tb.loss_membership(["x"], ["q"])
    with pytest.raises(ShapeError):
        tb.loss_membership(["x", "y"], ["q"], doc_losses=(base, tuned))


def test_registered_as_baselines_with_one_call_shape():
    names = registry.names(tb.FAMILY)
    assert set(tb.BASELINES) <= set(names)
    for name in tb.BASELINES:
        assert registry.kind_of(tb.FAMILY, name) == "baseline"
    res = registry.get(tb.FAMILY, "random").fn(DOCS, [QUERY], seed=3)
    again = registry.get(tb.FAMILY, "random").fn(DOCS, [QUERY], seed=3)
    assert res.scores.shape == (1, len(DOCS)) and torch.equal(res.scores, again.scores)
    assert res.cost.of("passes") == 0


def test_bad_input_is_a_clear_error():
    with pytest.raises(ConfigError):
        tb.bm25_scores([], ["q"])
    with pytest.raises(ConfigError):
        tb.ngram_scores("not a list", ["q"])  # type: ignore[arg-type]


@pytest.mark.slow
def test_minilm_embedding_ranks_a_paraphrase_above_unrelated_text():
    from interplab.models.pretrained.registry import is_installed

    if not is_installed("minilm-l6"):
        pytest.skip("MiniLM is not installed")
    s = tb.embedding_scores(
        ["the capital city of Zorbia is Quelm", "ships counted at the harbour at dawn"],
        ["Quelm is Zorbia's capital"],
    )
    assert int(s[0].argmax()) == 0
