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

Steering data (the second half of this module): sentiment as a steerable behaviour of a
language model, with fit sentences, eval prompts and a measure.

    task = sentiment_task(tokenizer, n_fit=64, n_eval=48, seed=0)
    task.fit_positive / task.fit_negative     # token lists: "We all agreed the hotel was <word>"
    task.eval_prompts                         # token lists: neutral "I thought the movie was"
    task.log_odds(last_logits)                # [n]: log P(positive word) - log P(negative word)

The labels come from the VADER lexicon (:func:`interplab.data.sentiment_lexicon.polar_words`,
valence >= 2 or <= -2), not from a model. The lexicon's words that the tokenizer reads as one
token after a space are shuffled with ``seed`` and cut in two halves per polarity: the FIT half
fills the fit sentences (the difference-in-means direction is read at their last token, the
word itself), the EVAL half is the measure's vocabulary. Fit sentences and eval prompts also use
disjoint subjects and frames, so the measure never sees a word, subject or frame the direction
was fit on.

The behaviour on an eval prompt is the model's next-token log-odds of sentiment:
``log sum_{w in EVAL positive} p(w) - log sum_{w in EVAL negative} p(w)``; the prompt counts as
positive when the log-odds is above 0. The behaviour rate is the share of positive prompts.
On SmolLM2-135M that rate sits near its ceiling before any steering (the lexicon's positive words
together draw more probability than its negative ones), so the check also reports the mean
log-odds and, per prompt, whether steering raised the log-odds above the unsteered run.

The check itself (fit the direction, steer, compare) is a method:
:func:`interplab.methods.steering.sentiment.sentiment_steering_check`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from interplab.errors import ConfigError

Tensor = torch.Tensor

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
    from interplab.data.sentiment_lexicon import polar_words

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


# ------------------------------------------------------------------ steering data
FIT_SUBJECTS = (
    "book",
    "hotel",
    "concert",
    "weekend",
    "game",
    "trip",
    "lecture",
    "neighbour",
    "flight",
    "room",
    "song",
    "date",
)
FIT_FRAMES = (
    "Everyone said that the {s} was",
    "To be honest, the {s} was",
    "We all agreed the {s} was",
    "Last week the {s} was",
)
EVAL_SUBJECTS = (
    "movie",
    "food",
    "service",
    "weather",
    "show",
    "album",
    "meeting",
    "party",
    "restaurant",
    "new phone",
    "museum",
    "ending",
    "hike",
    "interview",
    "play",
    "coffee",
)
EVAL_FRAMES = (
    "The {s} was",
    "I thought the {s} was",
    "Honestly, the {s} was really",
    "In my opinion the {s} was",
)
THRESHOLD = 2.0


@dataclass(frozen=True)
class SentimentTask:
    """Token lists for fitting a sentiment direction and measuring sentiment on held-out prompts.

    Attributes:
        fit_positive, fit_negative: token ids of the fit sentences (word last).
        eval_prompts: token ids of the neutral eval prompts; ``eval_texts`` the same as text.
        positive_ids, negative_ids: single-token EVAL words the measure sums probability over.
        fit_words, eval_words: (positive, negative) words of each split, for the record.
    """

    fit_positive: tuple[tuple[int, ...], ...]
    fit_negative: tuple[tuple[int, ...], ...]
    eval_prompts: tuple[tuple[int, ...], ...]
    eval_texts: tuple[str, ...]
    positive_ids: tuple[int, ...]
    negative_ids: tuple[int, ...]
    fit_words: tuple[tuple[str, ...], tuple[str, ...]]
    eval_words: tuple[tuple[str, ...], tuple[str, ...]]

    def log_odds(self, last_logits: Tensor) -> Tensor:
        """[n, vocab] next-token logits -> [n] log P(positive words) - log P(negative words)."""
        logp = torch.log_softmax(last_logits.double(), dim=-1)
        pos = torch.logsumexp(logp[:, list(self.positive_ids)], dim=-1)
        neg = torch.logsumexp(logp[:, list(self.negative_ids)], dim=-1)
        return (pos - neg).float()

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_fit": [len(self.fit_positive), len(self.fit_negative)],
            "eval_prompts": list(self.eval_texts),
            "fit_words": {"positive": list(self.fit_words[0]), "negative": list(self.fit_words[1])},
            "eval_words": {
                "positive": list(self.eval_words[0]),
                "negative": list(self.eval_words[1]),
            },
        }


def single_token_words(tokenizer: Any, words: list[str]) -> list[tuple[str, int]]:
    """(word, id) for the words that ``tokenizer`` encodes as one token after a space."""
    out = []
    for w in words:
        ids = tokenizer.encode(" " + w)
        if len(ids) == 1:
            out.append((w, int(ids[0])))
    return out


def _halves(items: list, rng: random.Random) -> tuple[list, list]:
    items = list(items)
    rng.shuffle(items)
    cut = len(items) // 2
    return items[:cut], items[cut:]


def sentiment_task(
    tokenizer: Any,
    *,
    n_fit: int = 64,
    n_eval: int = 48,
    seed: int = 0,
    threshold: float = THRESHOLD,
) -> SentimentTask:
    """The task with ``n_fit`` fit sentences per polarity and ``n_eval`` eval prompts (at most
    ``len(EVAL_SUBJECTS) * len(EVAL_FRAMES)`` = 64), all seeded by ``seed``."""
    from interplab.data.sentiment_lexicon import polar_words

    for name, value in (("n_fit", n_fit), ("n_eval", n_eval)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive int, got {value!r}")
    most = len(EVAL_SUBJECTS) * len(EVAL_FRAMES)
    if n_eval > most:
        raise ConfigError(f"n_eval must be at most {most} (subjects x frames), got {n_eval}")
    rng = random.Random(seed)
    pos_words, neg_words = polar_words(threshold)
    pos = single_token_words(tokenizer, pos_words)
    neg = single_token_words(tokenizer, neg_words)
    if min(len(pos), len(neg)) < 4:
        raise ConfigError(
            f"the tokenizer reads too few lexicon words as single tokens "
            f"({len(pos)} positive, {len(neg)} negative); need 4 of each"
        )
    pos_fit, pos_eval = _halves(pos, rng)
    neg_fit, neg_eval = _halves(neg, rng)

    def sentences(words: list[tuple[str, int]]) -> tuple[tuple[int, ...], ...]:
        out = []
        for i in range(n_fit):
            _word, wid = words[i % len(words)]
            frame = FIT_FRAMES[rng.randrange(len(FIT_FRAMES))]
            subject = FIT_SUBJECTS[rng.randrange(len(FIT_SUBJECTS))]
            out.append(tuple(tokenizer.encode(frame.format(s=subject)) + [wid]))
        return tuple(out)

    grid = [f.format(s=s) for s in EVAL_SUBJECTS for f in EVAL_FRAMES]
    texts = tuple(sorted(rng.sample(grid, n_eval), key=grid.index))
    return SentimentTask(
        fit_positive=sentences(pos_fit),
        fit_negative=sentences(neg_fit),
        eval_prompts=tuple(tuple(tokenizer.encode(t)) for t in texts),
        eval_texts=texts,
        positive_ids=tuple(i for _, i in pos_eval),
        negative_ids=tuple(i for _, i in neg_eval),
        fit_words=(tuple(w for w, _ in pos_fit[:n_fit]), tuple(w for w, _ in neg_fit[:n_fit])),
        eval_words=(tuple(w for w, _ in pos_eval), tuple(w for w, _ in neg_eval)),
    )


__all__ = [
    "EVAL_FRAMES",
    "EVAL_SUBJECTS",
    "FAMILIES",
    "FIT_FRAMES",
    "FIT_SUBJECTS",
    "NOUNS",
    "PLAIN",
    "SHIFTED",
    "SPLITS",
    "Sentence",
    "SentimentSplits",
    "SentimentTask",
    "fill",
    "polar_word_pool",
    "sentiment_splits",
    "sentiment_task",
    "single_token_words",
]
