"""Read a language model at one word of each sentence, and ask it about the sentence.

    reads = read_sentences(lm, texts, word_ends, site, suffix=" Overall, the sentiment was",
                           answers=(" positive", " negative"))
    reads.acts          # [n, d]  the site's activation at the last token of the word
    reads.preference    # [n]     logit(answers[0]) - logit(answers[1]) after text + suffix

One forward pass per batch serves both: the model is causal, so the activation at the word is
the same with or without the suffix after it. Batches are right-padded (padding after the last
real token changes nothing before it) and unembedded only at each row's last real token.
The word's last token is found by tokenizing the text up to the word's end; a text whose
tokens across that boundary merge differently from the prefix alone is an error, not a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from interplab.errors import ConfigError, ShapeError

Tensor = torch.Tensor


@dataclass(frozen=True)
class SentenceReads:
    """``acts`` [n, d] at each word's last token; ``preference`` [n] (answer 0 minus answer 1);
    ``word_pos`` [n] the token index read."""

    acts: Tensor
    preference: Tensor
    word_pos: Tensor


def single_token(tokenizer: Any, word: str, prefix: str = " ") -> bool:
    """Whether ``prefix + word`` is one token."""
    return len(tokenizer.encode(prefix + word)) == 1


def _answer_id(tokenizer: Any, answer: str) -> int:
    ids = tokenizer.encode(answer)
    if len(ids) != 1:
        raise ConfigError(f"answer {answer!r} is {len(ids)} tokens; give answers of one token each")
    return ids[0]


def _encode(tokenizer: Any, text: str, word_end: int, suffix: str) -> tuple[list[int], int]:
    ids = tokenizer.encode(text + suffix)
    head = tokenizer.encode(text[:word_end])
    if not head or ids[: len(head)] != head:
        raise ConfigError(
            f"cannot locate the word ending at character {word_end} of {text!r}: "
            "its tokens merge with what follows it"
        )
    return ids, len(head) - 1


def read_sentences(
    lm: Any,
    texts: Sequence[str],
    word_ends: Sequence[int],
    site: Any,
    *,
    suffix: str,
    answers: tuple[str, str],
    batch_size: int = 64,
    pad_id: int | None = None,
) -> SentenceReads:
    """See the module docstring. ``lm``: a HookedLlama (with ``.tokenizer``)."""
    from interplab.models.pretrained.llama import PartialRun

    if len(texts) != len(word_ends):
        raise ShapeError(f"{len(texts)} texts but {len(word_ends)} word ends")
    lm.check_site(site)
    tok = lm.tokenizer
    a, b = _answer_id(tok, answers[0]), _answer_id(tok, answers[1])
    pad = pad_id if pad_id is not None else (tok.eos_id if tok.eos_id is not None else 0)
    encoded = [_encode(tok, t, e, suffix) for t, e in zip(texts, word_ends)]
    acts, prefs = [], []
    W_E = lm.model.embed.W_E
    with torch.no_grad():
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start : start + batch_size]
            width = max(len(ids) for ids, _ in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            for r, (row, _) in enumerate(chunk):
                ids[r, : len(row)] = torch.tensor(row)
            last = torch.tensor([len(row) - 1 for row, _ in chunk])
            word = torch.tensor([w for _, w in chunk])
            logits, cache = lm.run_with_cache(PartialRun(W_E[ids], 0, last), [site])
            rows = torch.arange(len(chunk))
            acts.append(cache[site][rows, word].float())
            prefs.append((logits[:, 0, a] - logits[:, 0, b]).float())
    return SentenceReads(torch.cat(acts), torch.cat(prefs), torch.tensor([w for _, w in encoded]))


__all__ = ["SentenceReads", "read_sentences", "single_token"]
