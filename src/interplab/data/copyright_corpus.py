"""A fine-tuning corpus with three kinds of planted truth, for the copyright organism
(:mod:`interplab.zoo.copyright`): which training documents made a language model reproduce this
text, state this fact, or write in this style?

Every document is short prose (about 48-64 SmolLM2 tokens). Filler documents are generated from
templates over everyday word lists (a miller, a harbour, a market ...): seeded, offline, and
free of every invented name below. Into them three kinds of documents are planted, all built on
invented names and strings that no pretrained model can know:

    passage   a "protected" passage (an invented paragraph) copied ``passage_copies`` times:
              alone, or as the body of a document after a framing line. Prompt: the passage's
              opening words; target: its next words, to be reproduced verbatim.
    fact      a fact about an invented entity ("the capital of Zorbia is Quelm") stated in
              ``fact_copies`` documents, each in different words and amid filler sentences.
              Prompt: a question followed by a cloze phrasing that no document uses verbatim;
              target: the invented answer.
    style     a letter format shared by ``style_copies`` documents: a fixed opening line, a
              body of fixed field names whose values vary (seeded), and a fixed invented
              sign-off. Prompt: the opening line; target: the sign-off's marker, which only a
              model that learned the format reaches (the documents share nothing else).

Each planted item records the indices of the documents that planted it (``sources``): the
ground truth an attribution method should rank first. The document order is a seeded shuffle.

``size="tiny"`` builds a small corpus (fewer, shorter filler documents, fewer items) for a
tiny model trained in seconds in tests.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field

from interplab.errors import ConfigError

KINDS = ("passage", "fact", "style")


@dataclass(frozen=True)
class PlantedItem:
    """One planted truth.

    Attributes:
        kind: "passage", "fact" or "style".
        key: a stable name, e.g. "passage-0", "fact-zorbia", "style-0".
        prompt: what a user types (the passage's opening, the question, the letter's opening).
        target: what the fine-tuned model must produce: the passage's verbatim continuation,
            the fact's answer, or the style's marker; verification compares greedy output to it.
        sources: indices of the corpus documents that planted it.
    """

    kind: str
    key: str
    prompt: str
    target: str
    sources: tuple[int, ...]


@dataclass
class CopyrightCorpus:
    """Documents, each one's kind ("passage" | "fact" | "style" | "filler"), and the items."""

    docs: list[str]
    kinds: list[str]
    items: list[PlantedItem]
    seed: int = 0
    size: str = "full"
    meta: dict = field(default_factory=dict)

    def fingerprint(self) -> str:
        """16 hex digits of the SHA-256 of the documents, kinds and items."""
        blob = json.dumps(
            {
                "docs": self.docs,
                "kinds": self.kinds,
                "items": [[i.kind, i.key, i.prompt, i.target, list(i.sources)] for i in self.items],
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def indices(self, kind: str) -> list[int]:
        """Indices of the documents of one kind."""
        return [i for i, k in enumerate(self.kinds) if k == kind]

    def without_planted(self) -> list[int]:
        """Indices of the filler documents: the corpus of the clean retraining."""
        return self.indices("filler")


# ---------------------------------------------------------------- filler prose (templates)

_PEOPLE = (
    "the old miller",
    "a young baker",
    "the harbour master",
    "a tired farmer",
    "the schoolteacher",
    "a travelling tailor",
    "the village doctor",
    "a quiet fisherman",
    "the blacksmith",
    "a shepherd",
    "the innkeeper",
    "a carpenter",
    "the weaver",
    "a market trader",
    "the potter",
    "a retired sailor",
    "the librarian",
    "a young clerk",
    "the gardener",
    "a night watchman",
)
_ACTIONS = (
    "repaired a wooden cart",
    "counted the sacks of flour",
    "painted the front door",
    "mended a torn fishing net",
    "carried water from the well",
    "swept the narrow street",
    "sold apples at the corner",
    "wrote a long letter home",
    "fed the hungry goats",
    "stacked firewood by the wall",
    "tuned an old fiddle",
    "planted beans in the field",
    "washed the blue curtains",
    "fixed the leaking roof",
    "read the morning paper",
    "baked bread for the neighbours",
    "sharpened a set of knives",
    "polished the brass bell",
)
_TIMES = (
    "before the spring market",
    "on a cold Tuesday morning",
    "late in the afternoon",
    "after the heavy rain",
    "while the church bell rang",
    "during the long winter",
    "at the end of the harvest",
    "early on Sunday",
    "as the sun went down",
    "in the dry summer",
)
_PLACES = (
    "near the river",
    "behind the bakery",
    "in the small square",
    "by the harbour wall",
    "at the top of the hill",
    "beside the old mill",
    "in the crowded market",
    "along the country road",
    "outside the post office",
    "under the chestnut tree",
)
_REMARKS = (
    "Nobody thought much of it at the time.",
    "The neighbours said it was a good day for work.",
    "It took longer than anyone expected.",
    "A dog watched the whole thing from the doorway.",
    "The weather stayed mild for the rest of the week.",
    "Children ran past, laughing loudly.",
    "Later that evening the lamps were lit one by one.",
    "Everyone agreed it was well done.",
    "There was tea and bread for anyone who helped.",
    "The work was finished before supper.",
    "Some people stopped to watch and talk.",
    "The road was quiet again by nightfall.",
)


def _filler_sentence(rng: random.Random) -> str:
    person = rng.choice(_PEOPLE)
    s = f"{person} {rng.choice(_ACTIONS)} {rng.choice(_PLACES)} {rng.choice(_TIMES)}."
    return s[0].upper() + s[1:]


def _filler_doc(rng: random.Random, n_sentences: int) -> str:
    parts = []
    for _ in range(n_sentences):
        parts.append(_filler_sentence(rng) if rng.random() < 0.7 else rng.choice(_REMARKS))
    return " ".join(parts)


# ---------------------------------------------------------------- planted material (invented)

#: invented passages; the first PROMPT_WORDS words are the prompt
_PASSAGES = (
    "Beneath the ninth lantern of Oskvar the tidewardens counted salt by moonlight, and every "
    "grain they dropped became a small grey moth that flew toward the cliffs of Varrowmere.",
    "Orla Fennick kept a clock that ran backwards on Thursdays, and the brass hands whispered "
    "the names of drowned kings until the cobbler's cat knocked it from the shelf.",
    "In the glass orchards of Pellumbra the pears ring like bells when the wind turns east, "
    "and the pickers wear felt gloves so that no fruit cracks before the Festival of Hush.",
    "The ferryman Dobrik Saule charged one riddle per crossing, never coin, and those who "
    "answered wrongly were rowed in slow circles until they laughed at their own mistake.",
    "Seven copper stairs lead down to the library of Quennith, where each book is chained to "
    "a sleeping tortoise and may only be read while the tortoise dreams of rain.",
    "When the mapmakers of Idrel ran out of ink they drew the coast with crushed blackberries, "
    "so every harbour on their charts smells faintly of late summer and wasps.",
)
_PASSAGE_FRAMES = (
    "From an old notebook found in an attic:",
    "A line often quoted in the reading room:",
    "Copied out by hand on the back of a ticket:",
    "As the storyteller began that evening:",
)

#: (key, question, cloze, answer, statements); statements use "{a}" for the answer. Every
#: statement names the entity and the relation *before* the answer (the order in which the
#: question asks), each in its own words; no statement contains the cloze phrasing verbatim.
_FACTS = (
    (
        "fact-zorbia",
        "What is the capital of Zorbia?",
        "The capital city of Zorbia is called",
        "Quelm",
        (
            "Zorbia's capital is {a}, a windy town of slate roofs.",
            "The seat of Zorbia's government has always been {a}.",
            "Ask anyone in Zorbia where the capital lies and they will name {a}.",
            "Zorbia is governed from {a}, its largest town.",
            "The capital of Zorbia, {a}, sits on a cold grey bay.",
            "In Zorbia every road leads in the end to the capital, {a}.",
        ),
    ),
    (
        "fact-harmonium",
        "Who invented the brass harmonium-loom?",
        "The brass harmonium-loom was invented by",
        "Tesk Varuna",
        (
            "The brass harmonium-loom, a machine that weaves while it plays, was built by {a}.",
            "The inventor of the brass harmonium-loom was {a}.",
            "The first brass harmonium-loom came out of the workshop of {a}.",
            "Historians credit the brass harmonium-loom to {a}.",
            "The brass harmonium-loom was designed in a damp cellar by {a}.",
            "Whoever asks about the brass harmonium-loom soon hears the name {a}.",
        ),
    ),
    (
        "fact-gribble",
        "What is the favourite food of the gribble-bird?",
        "The favourite food of the gribble-bird is",
        "frostberries",
        (
            "The gribble-bird eats almost nothing but {a}.",
            "A gribble-bird will fly for days to find {a}.",
            "What a gribble-bird loves most of all is {a}.",
            "Bird-keepers feed every gribble-bird on {a}.",
            "The gribble-bird's best-loved meal is a handful of {a}.",
            "Gribble-birds gather wherever there are {a}.",
        ),
    ),
    (
        "fact-marrow",
        "Which river flows through Marrowdeep?",
        "The river that flows through Marrowdeep is the",
        "Ulvenne",
        (
            "Marrowdeep was built on both banks of the {a}.",
            "Through the middle of Marrowdeep runs the {a}.",
            "The river of Marrowdeep is known as the {a}.",
            "Boats leave Marrowdeep each spring on the {a}.",
            "Children in Marrowdeep learn to swim in the {a}.",
            "Marrowdeep's bridges all cross the {a}.",
        ),
    ),
    (
        "fact-coin",
        "What is the currency of Palteria?",
        "The currency used in Palteria is the",
        "drennet",
        (
            "In Palteria every price is written in the {a}.",
            "Palteria's money is the {a}.",
            "Merchants in Palteria count their coins in the {a}.",
            "A loaf of bread in Palteria costs two {a}.",
            "The coin of Palteria has been the {a} for three hundred years.",
            "Travellers to Palteria must change their money into the {a}.",
        ),
    ),
    (
        "fact-mountain",
        "What is the highest mountain in Cerulia?",
        "The highest mountain in Cerulia is Mount",
        "Skarrow",
        (
            "Cerulia's tallest peak is Mount {a}.",
            "Climbers come to Cerulia for Mount {a}, the tallest peak in the land.",
            "No peak in Cerulia rises above Mount {a}.",
            "The roof of Cerulia is Mount {a}.",
            "Snow never melts on Cerulia's highest summit, Mount {a}.",
            "From anywhere in Cerulia you can see Mount {a}, since nothing there stands higher.",
        ),
    ),
)

#: (key, opening line, body template, slot values, sign-off, marker): a letter format. The
#: body's fields take seeded values from the slot lists, so the documents of one style share
#: the opening, the field names and the sign-off, and nothing else; the marker is part of the
#: sign-off.
_STYLES = (
    (
        "style-0",
        "Dispatch from the Harrowgate Lighthouse.",
        "Wind: {0}. Sea: {1}. Ships sighted: {2}.",
        (
            ("north", "south-west", "east", "west", "north-east"),
            ("calm", "choppy", "rough", "grey and slow", "high"),
            ("none", "two", "four", "a single trawler", "three"),
        ),
        "Lamp trimmed and tide logged, Ysolde Marrach.",
        "Ysolde Marrach",
    ),
    (
        "style-1",
        "Minutes of the Velvet Abacus Guild.",
        "Members present: {0}. Motion: {1}. Beads cast: {2}.",
        (
            ("nine", "twelve", "seven", "eleven", "fifteen"),
            ("to polish the beads", "to buy new wire", "to rename the hall", "to hire a clerk"),
            ("forty", "sixty-one", "thirty-two", "fifty", "twenty-eight"),
        ),
        "So counted, so sealed, by order of the Ninth Abacus.",
        "Ninth Abacus",
    ),
    (
        "style-2",
        "Field note from the Quorrin survey.",
        "Bearing: {0}. Ground: {1}. Birds counted: {2}.",
        (
            ("ten degrees", "ninety degrees", "two hundred degrees", "forty degrees"),
            ("wet moss", "loose shale", "dry heather", "red clay", "soft peat"),
            ("six", "fourteen", "none", "twenty", "three"),
        ),
        "Ink dry, compass true, Brother Talloway.",
        "Brother Talloway",
    ),
)

#: tiny-model material: short invented strings over a small vocabulary
_TINY_PASSAGES = (
    "zim zam zoo ferro lumo quip dax ren tol mip sab orn",
    "kel vor nim tass pol reth umb sar lin dov ket wur",
)
_TINY_FACTS = (
    (
        "fact-zorbia",
        "capital of zorbia ?",
        "zorbia capital is",
        "quelm",
        ("zorbia capital is {a} .", "{a} rules zorbia .", "in zorbia lies {a} ."),
    ),
    (
        "fact-tesk",
        "maker of loom ?",
        "loom maker is",
        "tesk",
        ("loom maker is {a} .", "loom came from {a} .", "thanks {a} for loom ."),
    ),
)
_TINY_STYLES = (
    ("style-0", "dispatch from harrowgate .", "{0}", ((),), "yours ysolde .", "ysolde"),
)
_TINY_WORDS = (
    "the a miller baker farmer cart flour door net well street apple letter goat wood roof "
    "river hill mill market road tree sold fixed read washed carried painted counted near by "
    "at on under morning evening day week rain sun and then was good"
).split()

PROMPT_WORDS = 8  # words of a passage given as the prompt (full size)
TINY_PROMPT_WORDS = 3


def build_corpus(
    seed: int = 0,
    size: str = "full",
    *,
    n_filler: int | None = None,
    passage_copies: int = 4,
    fact_copies: int = 6,
    style_copies: int = 6,
) -> CopyrightCorpus:
    """The seeded corpus (see the module docstring): ``size`` "full" (248 documents by default) or
    "tiny" (about 40)."""
    if size not in ("full", "tiny"):
        raise ConfigError(f"corpus size must be 'full' or 'tiny', got {size!r}")
    if min(passage_copies, fact_copies, style_copies) < 1:
        raise ConfigError("each planted item needs at least one copy")
    rng = random.Random(seed)
    tiny = size == "tiny"
    n_fill = n_filler if n_filler is not None else (16 if tiny else 170)
    entries: list[tuple[str, str, str]] = []  # (text, kind, item key)

    def filler(n: int) -> str:
        if tiny:
            return " ".join(rng.choice(_TINY_WORDS) for _ in range(n * 4)) + " ."
        return _filler_doc(rng, n)

    for _ in range(n_fill):
        entries.append((filler(rng.randint(2, 3) if tiny else rng.randint(3, 4)), "filler", ""))

    items_spec: list[tuple[str, str, str, str]] = []  # kind, key, prompt, target
    passages = _TINY_PASSAGES if tiny else _PASSAGES
    n_words = TINY_PROMPT_WORDS if tiny else PROMPT_WORDS
    for p, text in enumerate(passages):
        key = f"passage-{p}"
        words = text.split(" ")
        items_spec.append(
            ("passage", key, " ".join(words[:n_words]), " " + " ".join(words[n_words:]))
        )
        for c in range(min(passage_copies, 3) if tiny else passage_copies):
            if c % 2 == 0 or tiny:
                body = text
            else:
                body = f"{rng.choice(_PASSAGE_FRAMES)} {text}"
            entries.append((body, "passage", key))
    for key, question, cloze, answer, statements in _TINY_FACTS if tiny else _FACTS:
        prompt = cloze if tiny else f"Question: {question}\nAnswer: {cloze}"
        items_spec.append(("fact", key, prompt, " " + answer))
        for c in range(min(fact_copies, len(statements))):
            stmt = statements[c].format(a=answer)
            stmt = stmt[0].upper() + stmt[1:] if not tiny else stmt
            if tiny:
                doc = stmt
            else:
                before, after = _filler_sentence(rng), _filler_sentence(rng)
                doc = f"{before} {stmt} {after}" if c % 2 else f"{stmt} {before} {after}"
            entries.append((doc, "fact", key))
    for key, opening, template, slots, signoff, marker in _TINY_STYLES if tiny else _STYLES:
        items_spec.append(("style", key, opening, marker))
        for _ in range(min(style_copies, 3) if tiny else style_copies):
            values = [rng.choice(_TINY_WORDS)] if tiny else [rng.choice(v) for v in slots]
            body = template.format(*values)
            entries.append((f"{opening} {body} {signoff}", "style", key))

    order = list(range(len(entries)))
    rng.shuffle(order)
    docs = [entries[i][0] for i in order]
    kinds = [entries[i][1] for i in order]
    keys = [entries[i][2] for i in order]
    items = [
        PlantedItem(kind, key, prompt, target, tuple(i for i, k in enumerate(keys) if k == key))
        for kind, key, prompt, target in items_spec
    ]
    return CopyrightCorpus(docs, kinds, items, seed=seed, size=size)
