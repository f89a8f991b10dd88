"""Concept detection on a real model: is a sentence positive or negative, read from SmolLM2-135M?

Data (:mod:`interplab.tasks.sentiment`): template sentences such as "The movie was
{word}." whose label is the sign of the word's VADER lexicon valence (|valence| ≥ 2, words one
SmolLM2 token long). The polar words are cut by the seed into disjoint thirds: training words,
held-out test words and oracle words. Tests: ``held_out`` (the training templates, held-out
words) and ``shifted`` (a different template family, e.g. "I have to say the movie felt {word}
to me.", held-out words).

Features: the residual stream after block 14 of 30 (``L14.resid_post``, fixed in advance) at
the word's token. Budget, the same for every arm: N labelled training sentences (64 quick,
512 full); nothing is chosen on a test split.

    interp:sae_probe              logistic probe on the top-k latents of a TopK SAE (2,304
                                  latents, k = 32; quick: 1,152, k = 16, fewer steps and
                                  tokens) trained on SmolLM2's activations at the same
                                  site over the stdlib-docstring corpus (never the task
                                  sentences); latents ranked by class-mean gap (afresh in
                                  each training fold), k from {1, 4, 16, 64, 256}
    interp:diff_in_means          projection on the difference-in-means direction (no
                                  hyperparameter)
    baseline:linear_probe         logistic regression on the raw activations; its L2 weight
                                  decay from {1, 0.1, 0.01, 0.001, 0.0001}
    baseline:bag_of_words         logistic regression on word counts of the sentence (no
                                  model); weight decay from the same grid
    baseline:prompting            logit(" positive") - logit(" negative") after
                                  "<sentence> Overall, the sentiment was" (no training examples)
    baseline:random               projection on a random direction (no training examples)
    oracle:in_distribution_probe  a linear probe on N sentences of both template families (half
                                  each) with the oracle words: it has seen the test templates,
                                  never a test word; weight decay from the same grid, on its
                                  own N sentences

Equal tuning (:func:`interplab.eval.utility.select_by_cv`): every arm with a hyperparameter
(the SAE probe's k, a probe's weight decay) picks it from the grid above by 4-fold
cross-validation on its training sentences (folds stratified by label, the same folds for every
arm of a seed), scored by AUROC on the held-out fold, ties to the earlier grid value, then
refits on all of them; the choice is in the arm's per-seed details (``selection``).

Metric: ``concept_auroc`` on ``held_out``; secondary ``concept_auroc_shifted`` on ``shifted``.
Activations and prompt scores are cached per (task, seed), the SAE once, under
``cache_dir()/utility/concept``, so later jobs never load the model.
"""

from __future__ import annotations

import json
import time
from typing import Any

from interplab.eval.utility import ArmRun, Budget, UtilityTask, run_seeds, select_by_cv

MODEL = "smollm2-135m"
LAYER = 14
SUFFIX = " Overall, the sentiment was"
ANSWERS = (" positive", " negative")
THRESHOLD = 2.0
#: the SAE per task size: dictionary size, active latents, training steps and batch, corpus
#: windows x tokens (the quick task's is smaller so a fresh machine builds it in seconds)
SAE = {
    "d_latent": 2304,
    "k": 32,
    "steps": 400,
    "batch_size": 512,
    "windows": 160,
    "ctx": 64,
    "lr": 1e-3,
    "seed": 0,
}
SAE_SMALL = {**SAE, "d_latent": 1152, "k": 16, "steps": 200, "batch_size": 256, "windows": 48}
VERSION = 1
#: the weight-decay grid of every probe arm, strongest first (ties go to the earlier value)
PROBE_WD = (1.0, 0.1, 0.01, 0.001, 0.0001)
ARMS = (
    "interp:sae_probe",
    "interp:diff_in_means",
    "baseline:linear_probe",
    "baseline:bag_of_words",
    "baseline:prompting",
    "baseline:random",
    "oracle:in_distribution_probe",
)
#: task name -> (training sentences = budget, sentences per test set)
SIZES = {"concept-smollm2-small": (64, 128), "concept-smollm2": (512, 512)}
SAE_OF = {"concept-smollm2-small": SAE_SMALL, "concept-smollm2": SAE}
_DESC = (
    "Sentence sentiment (label = sign of the VADER valence of the one polar word in a "
    "template) detected from SmolLM2-135M's L14 residual at that word; tested on unseen "
    "words (concept_auroc) and on unseen words in an unseen template family "
    "(concept_auroc_shifted)."
)


def _task(name: str, n_train: int, n_test: int) -> UtilityTask:
    note = (
        f"{n_train} labelled training sentences (plain templates, training words), the same "
        "set for every trained arm; prompting and random use none; the oracle gets "
        f"{n_train} sentences of its own (both template families, oracle words); SAE trained "
        "on unlabelled stdlib-docstring text"
    )
    return UtilityTask(
        name=name,
        metric="concept_auroc",
        arms=ARMS,
        budget=Budget("training_examples", n_train, note),
        description=_DESC + f" {n_train} train, {n_test} per test set.",
        secondary=("concept_auroc_shifted",),
    )


TASKS: dict[str, UtilityTask] = {name: _task(name, *size) for name, size in SIZES.items()}
_TIMES: dict[str, float] = {}


def _fingerprint(obj: Any) -> str:
    from interplab.models.weights_cache import digest

    return digest({"spec": obj, "version": VERSION})


def _dir() -> Any:
    from interplab import _config

    return _config.cache_dir() / "utility" / "concept"


def _site() -> Any:
    from interplab.core.sites import Component, Site

    return Site(Component.RESID_POST, LAYER)


def _lm() -> Any:
    """SmolLM2 (loaded once per process); MissingExtraError saying how to install it."""
    if "lm" not in _CACHE:
        import torch

        from interplab.models.pretrained.registry import load, require

        require(MODEL)
        torch.set_num_threads(1)
        start = time.perf_counter()
        _CACHE["lm"] = load(MODEL)
        _TIMES["model_load_seconds"] = time.perf_counter() - start
    return _CACHE["lm"]


_CACHE: dict[str, Any] = {}


def _sae(cfg: dict[str, Any]) -> Any:
    """The TopK SAE ``cfg`` on ``L14.resid_post`` over stdlib docstrings, trained once and
    cached (one process builds it; others wait on the lock and read it)."""
    from interplab.methods.dictionaries import load_dictionary, save_dictionary
    from interplab.models.weights_cache import entry_lock

    key = _fingerprint({"model": MODEL, "layer": LAYER, "sae": cfg})
    path = _dir() / f"sae-{key}.safetensors"
    if key in _CACHE:
        return _CACHE[key]
    with entry_lock(path.with_suffix("")):  # sae-<key>.lock
        if not path.is_file():
            save_dictionary(_train_sae(path.with_suffix(".json"), cfg), path)
    sae = load_dictionary(path).eval().requires_grad_(False)
    _CACHE[key] = sae
    return sae


def _train_sae(info_path: Any, spec: dict[str, Any]) -> Any:
    import torch

    from interplab.methods.dictionaries import DictionaryConfig, train_dictionary
    from interplab.methods.dictionaries import corpus as text
    from interplab.models.io import atomic_write_text
    from interplab.models.pretrained.llama import PartialRun

    lm, site = _lm(), _site()
    start = time.perf_counter()
    tok = lm.tokenizer
    windows = text.token_windows(
        tok, text.stdlib_docstrings(), spec["ctx"], sep=tok.eos_id, max_windows=spec["windows"]
    )
    acts = []
    with torch.no_grad():
        for i in range(0, windows.shape[0], 32):
            w = windows[i : i + 32]
            last = torch.zeros(w.shape[0], dtype=torch.long)  # unembed one position: unused
            _, cache = lm.run_with_cache(PartialRun(lm.model.embed.W_E[w], 0, last), [site])
            acts.append(cache[site][:, 1:].reshape(-1, lm.cfg.d_model).float())  # skip the sink
    x = torch.cat(acts)
    read_s = time.perf_counter() - start
    cfg = DictionaryConfig(
        d_in=lm.cfg.d_model,
        d_latent=spec["d_latent"],
        activation="topk",
        k=spec["k"],
        lr=spec["lr"],
        batch_size=spec["batch_size"],
        steps=spec["steps"],
        log_every=max(1, spec["steps"] // 10),
        seed=spec["seed"],
    )
    trained = train_dictionary(x, cfg)
    last_row = trained.history[-1] if trained.history else {}
    atomic_write_text(
        info_path,
        json.dumps(
            {
                "model": MODEL,
                "site": str(site),
                "corpus": "stdlib docstrings",
                "tokens": int(x.shape[0]),
                "read_seconds": read_s,
                "train_seconds": trained.seconds,
                "sae": spec,
                "variance_explained": last_row.get("variance_explained"),
                "dead_fraction": last_row.get("dead_fraction"),
            },
            indent=2,
        ),
    )
    return trained.dictionary


def _reads(name: str, seed: int) -> dict[str, Any]:
    """{split: {"acts", "pref", "labels", "texts"}} for one task size and seed (cached; one
    process reads, others wait on the lock)."""
    from interplab.models.io import load_tensors
    from interplab.models.weights_cache import entry_lock
    from interplab.tasks.sentiment import FAMILIES, NOUNS

    n_train, n_test = SIZES[name]
    key = _fingerprint(
        {
            "families": FAMILIES,
            "nouns": NOUNS,
            "model": MODEL,
            "layer": LAYER,
            "suffix": SUFFIX,
            "answers": ANSWERS,
            "threshold": THRESHOLD,
            "n": [n_train, n_test],
            "seed": seed,
        }
    )
    base = _dir() / f"reads-{n_train}-{n_test}-{seed}-{key}"
    weights, meta = base.with_suffix(".safetensors"), base.with_suffix(".json")
    with entry_lock(base):  # reads-...-<key>.lock
        if not (weights.is_file() and meta.is_file()):
            _read_and_save(n_train, n_test, seed, weights, meta)
    t = load_tensors(weights)
    texts = json.loads(meta.read_text("utf-8"))["texts"]
    return {
        s: {
            "acts": t[f"{s}.acts"],
            "pref": t[f"{s}.pref"],
            "labels": t[f"{s}.labels"].tolist(),
            "texts": texts[s],
        }
        for s in texts
    }


def _read_and_save(n_train: int, n_test: int, seed: int, weights: Any, meta: Any) -> None:
    """Read every split's sentences through SmolLM2 once and save them (see :func:`_reads`)."""
    import torch

    from interplab.methods.probing.word_reads import read_sentences, single_token
    from interplab.models.io import atomic_write_text, save_tensors
    from interplab.tasks.sentiment import SPLITS, sentiment_splits

    lm = _lm()
    splits = sentiment_splits(
        n_train, n_test, seed, threshold=THRESHOLD, keep=lambda w: single_token(lm.tokenizer, w)
    )
    tensors, texts = {}, {}
    for s in SPLITS:
        sents = splits.split(s)
        r = read_sentences(
            lm,
            [x.text for x in sents],
            [x.word_end for x in sents],
            _site(),
            suffix=SUFFIX,
            answers=ANSWERS,
        )
        tensors[f"{s}.acts"], tensors[f"{s}.pref"] = r.acts.contiguous(), r.preference.contiguous()
        tensors[f"{s}.labels"] = torch.tensor([x.label for x in sents])
        texts[s] = [x.text for x in sents]
    save_tensors(weights, tensors)
    atomic_write_text(meta, json.dumps({"texts": texts, "words": splits.words}))


def _tuned_probe(X: Any, labels: list[int], seed: int) -> tuple[Any, dict[str, Any]]:
    """A logistic probe on ``X`` whose weight decay is chosen from :data:`PROBE_WD` by CV."""
    from interplab.methods.probing.concept import auroc, probe_scorer

    y = [int(v) for v in labels]

    def fold(wd: float, tr: list[int], held: list[int]) -> float:
        s = probe_scorer(X[tr], [y[i] for i in tr], weight_decay=wd, seed=seed)
        return auroc(s.score(X[held]), [y[i] for i in held])

    sel = select_by_cv("weight_decay", PROBE_WD, y, fold, seed=seed)
    return probe_scorer(X, y, weight_decay=sel.value, seed=seed), {
        "weight_decay": sel.value,
        "selection": sel.as_dict(),
    }


def _sparse_probe(Z: Any, labels: list[int], seed: int) -> tuple[Any, Any, dict[str, Any]]:
    """(columns, probe on them, details): the top-k latents by class-mean gap, k from the
    ladder by CV (ranking afresh on each fold's training part)."""
    from interplab.methods.probing.concept import K_LADDER, auroc, probe_scorer, rank_features

    y = [int(v) for v in labels]
    ks = sorted({min(k, Z.shape[1]) for k in K_LADDER})

    def fold(k: int, tr: list[int], held: list[int]) -> float:
        ytr = [y[i] for i in tr]
        cols = rank_features(Z[tr], ytr)[:k]
        s = probe_scorer(Z[tr][:, cols], ytr, seed=seed)
        return auroc(s.score(Z[held][:, cols]), [y[i] for i in held])

    sel = select_by_cv("k", ks, y, fold, seed=seed)
    cols = rank_features(Z, y)[: sel.value]
    return (
        cols,
        probe_scorer(Z[:, cols], y, seed=seed),
        {"k": sel.value, "latents": cols[:16].tolist(), "selection": sel.as_dict()},
    )


def _bag_of_words(r: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    from interplab.methods.probing.concept import count_features

    X, vocab = count_features(r["train"]["texts"])
    varies = X.std(0) > 0  # words seen in every or no training sentence carry nothing
    vocab = [w for w, v in zip(vocab, varies.tolist()) if v]
    X, _ = count_features(r["train"]["texts"], vocab)
    s, info = _tuned_probe(X, r["train"]["labels"], seed)
    return (lambda split: s.score(count_features(r[split]["texts"], vocab)[0])), {
        "vocabulary": len(vocab),
        **info,
    }


def _scorer(
    arm: str, r: dict[str, Any], seed: int, sae_cfg: dict[str, Any] | None = None
) -> tuple[Any, float, dict[str, Any]]:
    """(split -> scores, training examples spent, details) for one arm on one seed."""
    from interplab.methods.probing import concept as c

    tr = r["train"]
    n = float(len(tr["labels"]))
    if arm == "interp:sae_probe":
        sae = _sae(sae_cfg or SAE)
        cols, s, info = _sparse_probe(sae.encode(tr["acts"]), tr["labels"], seed)
        return (lambda split: s.score(sae.encode(r[split]["acts"])[:, cols])), n, info
    if arm == "interp:diff_in_means":
        s, info = c.direction_scorer(tr["acts"], tr["labels"]), {"selection": None}
    elif arm == "baseline:linear_probe":
        s, info = _tuned_probe(tr["acts"], tr["labels"], seed)
    elif arm == "baseline:random":
        s = c.random_scorer(tr["acts"], seed=seed)
        return (lambda split: s.score(r[split]["acts"])), 0.0, {"selection": None}
    elif arm == "baseline:prompting":
        return (
            (lambda split: r[split]["pref"]),
            0.0,
            {"suffix": SUFFIX, "answers": list(ANSWERS), "selection": None},
        )
    elif arm == "baseline:bag_of_words":
        score, info = _bag_of_words(r, seed)
        return score, n, info
    else:  # oracle:in_distribution_probe
        o = r["oracle_train"]
        s, info = _tuned_probe(o["acts"], o["labels"], seed)
        return (lambda split: s.score(r[split]["acts"])), float(len(o["labels"])), info
    return (lambda split: s.score(r[split]["acts"])), n, info


def run(task: UtilityTask, arm: str, seeds: list[int]) -> ArmRun:
    """One arm of ``task`` on each seed (see the module docstring)."""
    import torch

    from interplab.methods.probing.concept import auroc

    if task.name not in SIZES:
        from interplab.errors import unknown_name

        raise unknown_name("concept task", task.name, tuple(SIZES))
    task.check_arm(arm)
    torch.set_num_threads(1)
    start = time.perf_counter()

    def one(seed: int) -> tuple[dict[str, float], float, dict[str, Any]]:
        r = _reads(task.name, seed)
        score, used, info = _scorer(arm, r, seed, SAE_OF[task.name])
        with torch.no_grad():
            return (
                {
                    "concept_auroc": auroc(score("held_out"), r["held_out"]["labels"]),
                    "concept_auroc_shifted": auroc(score("shifted"), r["shifted"]["labels"]),
                },
                used,
                info,
            )

    values, spent, per_seed, failed = run_seeds(
        ("concept_auroc", "concept_auroc_shifted"), seeds, one
    )
    n_test = SIZES[task.name][1]
    details = {
        "per_seed": per_seed,
        "site": f"L{LAYER}.resid_post",
        "model": MODEL,
        "seconds": time.perf_counter() - start,
        **_TIMES,
    }
    return ArmRun(
        values, {"concept_auroc": n_test, "concept_auroc_shifted": n_test}, spent, details, failed
    )
