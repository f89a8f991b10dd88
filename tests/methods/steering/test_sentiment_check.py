"""The sentiment steering task: lexicon splits are disjoint, fit and eval text never overlap, the
measure is the log-odds it says, and the whole check runs on a tiny model."""

from __future__ import annotations

import zlib

import pytest
import torch

from interplab.data.sentiment_lexicon import polar_words
from interplab.errors import ConfigError
from interplab.methods.steering.sentiment import sentiment_steering_check
from interplab.tasks.sentiment import (
    EVAL_FRAMES,
    EVAL_SUBJECTS,
    FIT_FRAMES,
    FIT_SUBJECTS,
    sentiment_task,
    single_token_words,
)

pytest.importorskip("vaderSentiment")


class WordTokenizer:
    """One token per space-led word (words of 9+ letters take two), ids hashed into ``vocab``."""

    def __init__(self, vocab: int = 1 << 20):
        self.vocab = vocab

    def _id(self, piece: str) -> int:
        return zlib.crc32(piece.encode()) % self.vocab

    def encode(self, text: str) -> list[int]:
        out = []
        for i, word in enumerate(text.split(" ")):
            piece = word if i == 0 else " " + word
            if len(word) >= 9:
                out += [self._id(piece[:5]), self._id(piece[5:])]
            elif piece:
                out.append(self._id(piece))
        return out


def test_single_token_words_keeps_one_token_words():
    got = single_token_words(WordTokenizer(), ["good", "wonderfully", "bad"])
    assert [w for w, _ in got] == ["good", "bad"]


def test_splits_are_disjoint_and_seeded():
    tok = WordTokenizer()
    task = sentiment_task(tok, n_fit=30, n_eval=20, seed=1)
    assert len(task.fit_positive) == len(task.fit_negative) == 30 and len(task.eval_prompts) == 20
    pos_fit, neg_fit = task.fit_words
    pos_eval, neg_eval = task.eval_words
    assert not set(pos_fit) & set(pos_eval) and not set(neg_fit) & set(neg_eval)
    assert not set(task.positive_ids) & set(task.negative_ids)
    pos, neg = polar_words(2.0)
    assert set(pos_eval) <= set(pos) and set(neg_eval) <= set(neg) and len(pos_eval) > 50
    # the fit sentence ends with its word; eval prompts use other frames and subjects
    fit_ids = {tok.encode(" " + w)[0] for w in pos_fit}
    assert all(s[-1] in fit_ids for s in task.fit_positive)
    assert not set(FIT_SUBJECTS) & set(EVAL_SUBJECTS) and not set(FIT_FRAMES) & set(EVAL_FRAMES)
    for text in task.eval_texts:
        assert not any(f" {s} " in f" {text} " for s in FIT_SUBJECTS)
    again = sentiment_task(tok, n_fit=30, n_eval=20, seed=1)
    other = sentiment_task(tok, n_fit=30, n_eval=20, seed=2)
    assert again == task and other.eval_words != task.eval_words


def test_log_odds_is_positive_mass_against_negative_mass():
    task = sentiment_task(WordTokenizer(vocab=5000), n_fit=4, n_eval=3, seed=0)
    logits = torch.randn(3, 5000, generator=torch.Generator().manual_seed(0))
    p = torch.softmax(logits.double(), -1)
    want = torch.log(p[:, list(task.positive_ids)].sum(-1)) - torch.log(
        p[:, list(task.negative_ids)].sum(-1)
    )
    assert torch.allclose(task.log_odds(logits).double(), want, atol=1e-5)
    logits[:, task.positive_ids[0]] = 50.0
    assert bool((task.log_odds(logits) > 0).all())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_fit": 0}, "n_fit must be a positive int"),
        ({"n_eval": 65}, "n_eval must be at most 64"),
        ({"n_eval": True}, "n_eval must be a positive int"),
    ],
)
def test_bad_sizes_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        sentiment_task(WordTokenizer(), **kwargs)


def test_a_tokenizer_without_single_token_words_is_refused():
    class Chars:
        def encode(self, text):
            return [ord(c) for c in text]

    with pytest.raises(ConfigError, match="too few lexicon words"):
        sentiment_task(Chars())


def test_the_check_runs_on_a_tiny_model():
    from interplab.models.pretrained.llama import LlamaConfig
    from tests.llama_helpers import random_llama

    lm = random_llama(
        LlamaConfig(
            d_vocab=512, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, d_mlp=24, n_ctx=32
        ),
        seed=1,
    )
    task = sentiment_task(WordTokenizer(vocab=512), n_fit=8, n_eval=6, seed=0)
    check = sentiment_steering_check(lm, task, 1, alphas=(1.0,), n_random=1)
    d = check.to_dict()
    assert d["site"] == "L1.resid_post" and d["layer"] == 1 and d["gap"] > 0
    assert len(d["conditions"]) == 1 + 3 * 2 and 0.5 < d["fit_projection_auc"] <= 1.0
    assert d["fit_means"][0] - d["fit_means"][1] == pytest.approx(d["gap"], rel=1e-4)
    from interplab.core.sites import Component, Site
    from interplab.methods.steering import diff_in_means
    from interplab.methods.steering.intervene import activations_at

    site = Site(Component.RESID_POST, 1)
    direction = diff_in_means(
        activations_at(lm, site, task.fit_positive, -1),
        activations_at(lm, site, task.fit_negative, -1),
    )
    first = direction.project(activations_at(lm, site, task.eval_prompts, 0)).mean()
    assert d["eval_projection"]["first"] == pytest.approx(float(first), rel=1e-4)
