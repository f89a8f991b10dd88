"""The VADER sentiment lexicon (Hutto & Gilbert 2014), read from inside the ``vaderSentiment``
package (7,519 entries, each the mean of ten human ratings on −4..+4). No network: the file
ships in the wheel. Used to label template sentences with a sentiment that is known by
construction (the lexicon is the labelling rule, not a model's opinion).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from interplab.errors import MissingExtraError


@lru_cache(maxsize=1)
def lexicon() -> dict[str, float]:
    """{token: mean valence in [-4, 4]} for every entry of the VADER lexicon."""
    try:
        text = (
            resources.files("vaderSentiment")
            .joinpath("vader_lexicon.txt")
            .read_text(encoding="utf-8")
        )
    except ModuleNotFoundError:
        raise MissingExtraError(
            "the sentiment lexicon ships inside the vaderSentiment package: "
            "pip install 'interplab[data]' (or pip install vaderSentiment)"
        ) from None
    out: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            try:
                out[parts[0].strip()] = float(parts[1])
            except ValueError:
                continue
    return out


def polar_words(threshold: float = 1.5, *, alphabetic: bool = True) -> tuple[list[str], list[str]]:
    """(positive, negative): lexicon words with valence ≥ ``threshold`` / ≤ −``threshold``,
    sorted; ``alphabetic`` keeps plain lower-case words only (no emoticons or slang marks)."""
    pos, neg = [], []
    for w, v in sorted(lexicon().items()):
        if alphabetic and not (w.isalpha() and w.islower()):
            continue
        if v >= threshold:
            pos.append(w)
        elif v <= -threshold:
            neg.append(w)
    return pos, neg
