"""Template sentences whose sentiment is known by construction (the VADER lexicon labels them).

Every sentence puts one polar lexicon word into a neutral template, e.g.

    plain     "The {noun} was {word}."                      (train and held-out test)
    shifted   "I have to say the {noun} felt {word} to me."  (a different template family)

and its label is the sign of that word's lexicon valence (1 positive, 0 negative); the nouns
are absent from the lexicon, so the word is the only sentiment-bearing token. The polar words
of each sign are shuffled by the seed and cut into three disjoint thirds:

    train     words of the training sentences (plain family)
    held_out  words of both test sets: ``held_out`` (plain family) and ``shifted`` (shifted family)
    oracle    words of the oracle's training sentences (both families, half each): it sees the
              test templates but never a test word

so every test measures generalisation to unseen words, and ``shifted`` to unseen templates too.
Labels are balanced in every split; no sentence repeats within a split.

    splits = sentiment_splits(n_train=128, n_test=128, seed=0, keep=is_single_token)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from interplab.errors import ConfigError

PLAIN = (
    "The {noun} was {word}.",
    "This {noun} is {word}.",
    "Our {noun} seemed {word}.",
    "That {noun} looked {word} today.",
)
SHIFTED = (
    "I have to say the {noun} felt {word} to me.",
    "Tell me, would you call your {noun} {word}?",
    "Everyone said that their {noun} had been {word} all week.",
    "You told me the {noun} sounded {word}, right?",
)
FAMILIES = {"plain": PLAIN, "shifted": SHIFTED}
#: neutral nouns (none is in the lexicon; a test checks it)
NOUNS = (
    "movie",
    "meal",
    "trip",
    "hotel",
    "book",
    "show",
    "game",
    "room",
    "car",
    "song",
    "story",
    "team",
    "service",
    "weather",
    "concert",
    "dinner",
    "album",
    "lesson",
    "garden",
    "visit",
)
SPLITS = ("train", "held_out", "shifted", "oracle_train")


@dataclass(frozen=True)
class Sentence:
    """One labelled sentence; ``text[word_start:word_end] == word``."""

    text: str
    word: str
    label: int
    family: str
    template: int
    noun: str
    word_start: int
    word_end: int


@dataclass(frozen=True)
class SentimentSplits:
    """The four sentence sets of :data:`SPLITS` and the word thirds behind them."""

    train: tuple[Sentence, ...]
    held_out: tuple[Sentence, ...]
    shifted: tuple[Sentence, ...]
    oracle_train: tuple[Sentence, ...]
    words: dict[str, tuple[str, ...]]
    threshold: float

    def split(self, name: str) -> tuple[Sentence, ...]:
        if name not in SPLITS:
            from interplab.errors import unknown_name

            raise unknown_name("sentiment split", name, SPLITS)
        return getattr(self, name)


def fill(template: str, noun: str, word: str, label: int, family: str, index: int) -> Sentence:
    """The sentence of ``template`` with ``noun`` and ``word`` filled in."""
    head, tail = template.split("{word}")
    head = head.format(noun=noun)
    return Sentence(
        head + word + tail.format(noun=noun),
        word,
        label,
        family,
        index,
        noun,
        len(head),
        len(head) + len(word),
    )


def polar_word_pool(
    threshold: float, keep: Callable[[str], bool] | None = None
) -> tuple[list[str], list[str]]:
    """(positive, negative) lexicon words with |valence| ≥ ``threshold`` that pass ``keep``."""
    from interplab.models.sentiment_lexicon import polar_words

    pos, neg = polar_words(threshold)
    if keep is not None:
        pos, neg = [w for w in pos if keep(w)], [w for w in neg if keep(w)]
    return pos, neg


def _thirds(words: list[str], rng: random.Random) -> tuple[list[str], list[str], list[str]]:
    w = list(words)
    rng.shuffle(w)
    a, b = len(w) // 3, 2 * len(w) // 3
    return w[:a], w[a:b], w[b:]


def _sample(
    n: int, words: tuple[list[str], list[str]], families: list[str], rng: random.Random
) -> tuple[Sentence, ...]:
    """``n`` distinct sentences, labels alternating (balanced), shuffled."""
    out: dict[str, Sentence] = {}
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ConfigError(
                f"cannot draw {n} distinct sentences from {len(words[0])} + "
                f"{len(words[1])} words; ask for fewer sentences or lower the threshold"
            )
        label = len(out) % 2  # 0 negative, 1 positive: balanced
        family = families[(len(out) // 2) % len(families)]  # both labels in every family
        idx = rng.randrange(len(FAMILIES[family]))
        s = fill(
            FAMILIES[family][idx],
            rng.choice(NOUNS),
            rng.choice(words[1 - label]),
            label,
            family,
            idx,
        )
        out.setdefault(s.text, s)
    sentences = list(out.values())
    rng.shuffle(sentences)
    return tuple(sentences)


def sentiment_splits(
    n_train: int,
    n_test: int,
    seed: int,
    *,
    threshold: float = 2.0,
    keep: Callable[[str], bool] | None = None,
    n_oracle: int | None = None,
) -> SentimentSplits:
    """Seeded word thirds and sentences (see the module docstring). ``keep`` filters the lexicon
    words (e.g. to those one token long for a model); ``n_oracle`` defaults to ``n_train``."""
    for name, v in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 2:
            raise ConfigError(f"{name} must be an int >= 2, got {v!r}")
    pos, neg = polar_word_pool(threshold, keep)
    if min(len(pos), len(neg)) < 6:
        raise ConfigError(
            f"only {len(pos)} positive and {len(neg)} negative lexicon words pass "
            f"threshold {threshold} and the word filter; need at least 6 of each"
        )
    rng = random.Random(seed)
    p3, n3 = _thirds(pos, rng), _thirds(neg, rng)
    words = {name: (p3[i], n3[i]) for i, name in enumerate(("train", "held_out", "oracle"))}
    return SentimentSplits(
        train=_sample(n_train, words["train"], ["plain"], rng),
        held_out=_sample(n_test, words["held_out"], ["plain"], rng),
        shifted=_sample(n_test, words["held_out"], ["shifted"], rng),
        oracle_train=_sample(n_oracle or n_train, words["oracle"], ["plain", "shifted"], rng),
        words={k: tuple(sorted(v[0] + v[1])) for k, v in words.items()},
        threshold=threshold,
    )


__all__ = [
    "FAMILIES",
    "NOUNS",
    "PLAIN",
    "SHIFTED",
    "SPLITS",
    "Sentence",
    "SentimentSplits",
    "fill",
    "polar_word_pool",
    "sentiment_splits",
]
