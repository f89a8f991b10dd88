"""The sentiment sentences: labels follow the lexicon, word thirds are disjoint, families differ."""

import re

import pytest

pytest.importorskip("vaderSentiment")

from interplab.data.sentiment_lexicon import lexicon
from interplab.errors import ConfigError
from interplab.tasks.sentiment import (
    FAMILIES,
    NOUNS,
    PLAIN,
    SHIFTED,
    SPLITS,
    sentiment_splits,
)


@pytest.fixture(scope="module")
def splits():
    return sentiment_splits(40, 60, seed=3)


def test_every_label_is_the_sign_of_its_words_valence(splits):
    lex = lexicon()
    for name in SPLITS:
        for s in splits.split(name):
            assert s.text[s.word_start : s.word_end] == s.word
            assert abs(lex[s.word]) >= splits.threshold
            assert s.label == (1 if lex[s.word] > 0 else 0)


def test_the_word_is_the_only_lexicon_word_of_a_sentence():
    lex = lexicon()
    for noun in NOUNS:
        assert noun not in lex
    for template in PLAIN + SHIFTED:
        words = re.findall(r"[a-z']+", template.replace("{noun}", "").replace("{word}", "").lower())
        assert not [w for w in words if w in lex], template


def test_word_thirds_are_disjoint_and_each_split_uses_its_own(splits):
    w = {k: set(v) for k, v in splits.words.items()}
    assert not (w["train"] & w["held_out"]) and not (w["train"] & w["oracle"])
    assert not (w["held_out"] & w["oracle"])
    assert {s.word for s in splits.train} <= w["train"]
    assert {s.word for s in splits.held_out} | {s.word for s in splits.shifted} <= w["held_out"]
    assert {s.word for s in splits.oracle_train} <= w["oracle"]


def test_shifted_templates_differ_and_families_are_used_as_stated(splits):
    assert not set(PLAIN) & set(SHIFTED)
    assert {s.family for s in splits.train} == {s.family for s in splits.held_out} == {"plain"}
    assert {s.family for s in splits.shifted} == {"shifted"}
    assert {s.family for s in splits.oracle_train} == {"plain", "shifted"}
    for s in splits.shifted:
        assert s.text.startswith(FAMILIES["shifted"][s.template].split("{")[0])
    # family is not confounded with the label in the oracle's mixed set
    for fam in ("plain", "shifted"):
        assert {s.label for s in splits.oracle_train if s.family == fam} == {0, 1}


def test_balanced_distinct_and_seeded(splits):
    for name, n in (("train", 40), ("held_out", 60), ("shifted", 60), ("oracle_train", 40)):
        sents = splits.split(name)
        assert len(sents) == n and len({s.text for s in sents}) == n
        assert sum(s.label for s in sents) == n // 2
    assert sentiment_splits(40, 60, seed=3) == splits
    assert sentiment_splits(40, 60, seed=4).words != splits.words


def test_word_filter_and_bad_input():
    kept = sentiment_splits(10, 10, seed=0, keep=lambda w: len(w) <= 6)
    assert all(len(s.word) <= 6 for name in SPLITS for s in kept.split(name))
    with pytest.raises(ConfigError, match="n_train"):
        sentiment_splits(1, 10, seed=0)
    with pytest.raises(ConfigError, match="at least 6"):
        sentiment_splits(10, 10, seed=0, keep=lambda w: w == "good")
    few = {
        "great",
        "happy",
        "love",
        "best",
        "amazing",
        "wonderful",
        "bad",
        "awful",
        "sad",
        "hate",
        "ugly",
        "worst",
    }
    assert sentiment_splits(10, 10, seed=0, keep=few.__contains__)  # 2 words a label per third
    with pytest.raises(ConfigError, match="distinct sentences"):
        sentiment_splits(400, 10, seed=0, keep=few.__contains__)  # 2 x 20 nouns x 4 templates < 200
    with pytest.raises(Exception, match="split"):
        kept.split("nope")
