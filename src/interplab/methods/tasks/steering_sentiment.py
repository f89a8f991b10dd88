"""Sentiment as a steerable behaviour of a language model: fit sentences, eval prompts, a measure.

    task = sentiment_task(tokenizer, n_fit=64, n_eval=48, seed=0)
    task.fit_positive / task.fit_negative     # token lists: "We all agreed the hotel was <word>"
    task.eval_prompts                         # token lists: neutral "I thought the movie was"
    task.log_odds(last_logits)                # [n]: log P(positive word) - log P(negative word)

The labels come from the VADER lexicon (:func:`interplab.models.sentiment_lexicon.polar_words`,
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

:func:`sentiment_steering_check` runs the whole check on a hooked language model: fit the
direction at ``resid_post`` of one layer, then score every condition of
:func:`interplab.methods.steering.intervene.compare_steering`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch

from interplab.errors import ConfigError

Tensor = torch.Tensor

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
    from interplab.models.sentiment_lexicon import polar_words

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


@dataclass(frozen=True)
class SentimentCheck:
    """The direction's gap, how well it separates its own fit sentences (in-sample AUC of the
    projection), the mean projections of the positive and negative fit sentences (last token)
    and of the eval prompts (first token, last token; ablation moves a token by minus its
    projection), and
    the per-prompt log-odds under every condition (``comparison``)."""

    task: SentimentTask
    layer: int
    gap: float
    fit_projection_auc: float
    fit_means: tuple[float, float]
    eval_projection: tuple[float, float]
    comparison: Any  # interplab.methods.steering.intervene.SteeringComparison

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "gap": self.gap,
            "fit_projection_auc": self.fit_projection_auc,
            "fit_means": list(self.fit_means),
            "eval_projection": {"first": self.eval_projection[0], "last": self.eval_projection[1]},
            "task": self.task.to_dict(),
            **self.comparison.to_dict(),
        }


def _auc(pos: Tensor, neg: Tensor) -> float:
    """P(a positive example projects above a negative one), ties counting half."""
    diff = pos.unsqueeze(1) - neg.unsqueeze(0)
    return float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean())


def sentiment_steering_check(
    model: Any,
    task: SentimentTask,
    layer: int,
    *,
    alphas: tuple[float, ...] = (1.0, 2.0),
    n_random: int = 3,
    seed: int = 0,
    progress: Any = None,
) -> SentimentCheck:
    """Fit the positive-minus-negative direction at ``L{layer}.resid_post`` (last token of the
    fit sentences), then compare no change / ablation / +-alpha steering with random directions
    of the same gap on the eval prompts (see the module docstring)."""
    from interplab.core.sites import Component, Site
    from interplab.methods.steering.directions import diff_in_means
    from interplab.methods.steering.intervene import (
        activations_at,
        compare_steering,
        last_token_activations,
    )

    site = model.check_site(Site(Component.RESID_POST, layer))
    pos = last_token_activations(model, site, task.fit_positive)
    neg = last_token_activations(model, site, task.fit_negative)
    direction = diff_in_means(pos, neg)
    auc = _auc(direction.project(pos), direction.project(neg))
    means = (float(direction.project(pos).mean()), float(direction.project(neg).mean()))
    at_eval = tuple(
        float(direction.project(activations_at(model, site, task.eval_prompts, p)).mean())
        for p in (0, -1)
    )
    comparison = compare_steering(
        model,
        task.eval_prompts,
        site,
        direction,
        task.log_odds,
        alphas=alphas,
        n_random=n_random,
        seed=seed,
        progress=progress,
    )
    return SentimentCheck(
        task,
        layer,
        float(direction.gap),
        auc,
        means,
        at_eval,  # type: ignore[arg-type]
        comparison,
    )


__all__ = [
    "EVAL_FRAMES",
    "EVAL_SUBJECTS",
    "FIT_FRAMES",
    "FIT_SUBJECTS",
    "SentimentCheck",
    "SentimentTask",
    "sentiment_steering_check",
    "sentiment_task",
    "single_token_words",
]
