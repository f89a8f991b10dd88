"""``interplab trace-data``: the training examples most responsible for one output, checked.

Mounted by ``cli/main.py`` with ``register(app)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.cli._common import (
    check_outputs,
    html_file_option,
    json_file_option,
    progress_option,
    say,
    to_stdout,
    write_json,
)
from interplab.errors import ConfigError

SPLITS = ("test", "triggered")
#: organisms traced with --prompt (interplab.zoo.copyright): a fine-tuned language model
COPYRIGHT_ORGANISMS = ("smollm2-ft", "smollm2-ft-tiny")
#: --max-new-tokens range
MAX_NEW_TOKENS = 256


def _load(organism: str | None, model_dir: Path | None) -> Any:
    from interplab.zoo.data_attribution import load_or_train, load_organism_dir

    if (organism is None) == (model_dir is None):
        raise ConfigError(
            "give exactly one of ORGANISM (e.g. digits-logreg; see `interplab trace-data "
            "--help`) or --model-dir DIR (a saved data-attribution organism)"
        )
    if organism is not None:
        return load_or_train(organism)
    assert model_dir is not None  # exactly one of the two was given (checked above)
    return load_organism_dir(model_dir)


def trace(org: Any, truth: Any, method: str, index: int, split: str, k: int, seed: int = 0) -> dict:
    """Everything the command prints: the test point, its top-k training examples, the checks."""
    import torch

    from interplab.eval import data_attribution as E
    from interplab.methods.data_attribution import attribute_data

    d = org.data
    x, y = (d.x_test, d.y_test) if split == "test" else (d.x_triggered, d.triggered_labels)
    if not 0 <= index < len(x):
        raise ConfigError(
            f"--index {index} is out of range: the {split} split of {org.name} has "
            f"{len(x)} points (0..{len(x) - 1})"
        )
    if not 1 <= k <= len(d.x_train):
        raise ConfigError(f"--top must be in 1..{len(d.x_train)}, got {k}")
    train = (d.x_train, d.y_train)
    att = attribute_data(org.model, train, (x, y), method=method, self_influence=True, seed=seed)
    with torch.no_grad():
        predicted = int(org.model.logits(x[index : index + 1]).argmax())
    flipped, planted = set(d.flipped.tolist()), set(d.planted.tolist())
    text = org.spec.data == "passages"

    def shown(row: Any) -> dict:
        if text:  # one-hot context -> its token ids
            return {"tokens": row.view(-1, org.spec.classifier.n_classes).argmax(-1).tolist()}
        return {"pixels": [round(float(v), 3) for v in row]}

    top = [
        {
            "train_index": i,
            "score": s,
            "label": int(d.y_train[i]),
            "true_digit": int(d.y_clean[i]),
            "flipped": i in flipped,
            "planted": i in planted,
            **shown(d.x_train[i]),
        }
        for i, s in att.top(index, k)
    ]
    checks: dict[str, Any] = {}
    if truth is not None and split == "test":
        rho, _ = E.spearman_rows(
            (att.scores[index : index + 1].double() @ truth.masks.double().T),
            truth.outputs[:, index : index + 1].double().T,
        )
        loo, _ = E.spearman_rows(
            att.scores[index : index + 1, truth.loo_index].double(),
            truth.loo_effect[:, index : index + 1].double().T,
        )
        checks["lds_this_point"] = float(rho[0])
        checks["loo_correlation_this_point"] = float(loo[0])
        checks["lds_all_test_points"] = E.lds(att.scores, truth.masks, truth.outputs).to_json()
        checks["n_subsets"] = len(truth.masks)
    if split == "triggered":
        mine = d.planted[d.planted_group == d.triggered_group[index]]
        checks["planted_recall_this_point"] = float(
            torch.isin(att.scores[index].topk(len(mine)).indices, mine).double().mean()
        )
    if att.self_influence is not None:
        checks["mislabel_recall_at_10"] = E.mislabel_recall_at(
            att.self_influence, d.flipped
        ).to_json()
    return {
        "organism": org.name,
        "method": method,
        "split": split,
        "index": index,
        "label_attributed": int(y[index]),
        "predicted": predicted,
        "input_kind": "tokens" if text else "digits",
        **shown(x[index]),
        "top": top,
        "checks": checks,
        "seconds": att.seconds,
        "n_train": len(d.x_train),
    }


def trace_data(
    organism: str | None = typer.Argument(
        None,
        help="A data-attribution organism: digits-logreg, "
        "digits-mlp, digits-logreg-1000, digits-mlp-1000, passages-mlp, "
        "passages-transformer; or smollm2-ft / smollm2-ft-tiny (SmolLM2 fine-tuned on a "
        "corpus with planted passages, facts and a style) with --prompt.",
    ),
    index: int | None = typer.Option(
        None,
        "--index",
        "-i",
        help="Which point of the split to explain (default 0); with --model, which test row "
        "(default: every test row).",
        show_default=False,
    ),
    method: str | None = typer.Option(
        None,
        "--method",
        "-m",
        help="grad_dot, grad_cos, tracin, if_exact, "
        "if_cg, if_lissa, ekfac, trak, representer, random, nn_input, nn_representation "
        "(default: ekfac for an organism, trak for --model); with smollm2-ft: trak (default), "
        "tracin, ekfac, grad_cos.",
        show_default=False,
    ),
    split: str = typer.Option(
        "test",
        help="test: held-out digits (checked against retraining); "
        "triggered: inputs that reproduce a planted behaviour (digits with the trigger; the "
        "prompts of a planted passage), checked against the planted examples.",
    ),
    top: int = typer.Option(
        10, "--top", "-k", "--k", help="How many training examples (documents) to show."
    ),
    model_dir: Path | None = typer.Option(
        None, help="A saved organism directory instead of ORGANISM."
    ),
    truth_dir: Path | None = typer.Option(
        None,
        help="Where the retraining ground truth lives "
        "(default: beside the organism; built there on first use).",
    ),
    no_truth: bool = typer.Option(
        False, "--no-truth", help="Skip the retraining checks (no ground-truth build)."
    ),
    seed: int = typer.Option(0, help="Seed of random projections / the random baseline."),
    model: Path | None = typer.Option(
        None,
        "--model",
        help="Your own TorchScript classifier (.pt/.pth, torch.jit.save; a torch.save pickle "
        "only with --trust) instead of ORGANISM; give --train, --test and --label.",
    ),
    train_csv: Path | None = typer.Option(
        None, "--train", help="With --model: the CSV of rows the model was trained on."
    ),
    test_csv: Path | None = typer.Option(
        None, "--test", help="With --model: the CSV of rows whose outputs to trace."
    ),
    label: str | None = typer.Option(
        None, "--label", help="With --model: the CSV column holding each row's class."
    ),
    features: Path | None = typer.Option(
        None,
        "--features",
        help="With --model: TOML describing the CSV's columns (kinds, categories, classes).",
    ),
    trust: bool = typer.Option(
        False,
        "--trust",
        help="Load a pickle model file (torch.save): it can run code when loaded; only for "
        "files you made.",
    ),
    prompt: str | None = typer.Option(
        None,
        "--prompt",
        "-p",
        help="With smollm2-ft / smollm2-ft-tiny: the text to continue; the model's greedy "
        "continuation is what gets attributed to the fine-tuning documents.",
    ),
    baseline: str = typer.Option(
        "bm25",
        "--baseline",
        help="With --prompt: the baseline ranked beside the method: bm25 or ngram_overlap "
        "(word overlap), embedding_nn, loss_membership, random.",
    ),
    max_new_tokens: int = typer.Option(
        32, "--max-new-tokens", help="With --prompt: how many tokens to generate (1..256)."
    ),
    progress: bool = progress_option(
        "With --prompt: progress bars (loading, per-document gradients) on stderr."
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        help="With --prompt: torch CPU threads (default: the usable cores not already busy, "
        "at most 4).",
        show_default=False,
    ),
    json_out: Path | None = json_file_option("Write the result as JSON"),
    html_out: Path | None = html_file_option("Write a self-contained HTML page here."),
) -> None:
    """Which training examples made the model give this output? Top-k, scored and checked.

    Attributes the label margin of one input to the training examples, then checks the
    method against truth it never saw: the model retrained on 100 random halves of the
    training set (LDS) and without single examples (leave-one-out), the planted examples
    (trigger digits, protected passages) and the 10% flipped labels (self-influence).

    The first run per organism builds that ground truth (30-100 s, with a progress bar;
    an interrupted build resumes) and caches it beside the organism.

    Examples:

        interplab trace-data digits-logreg --index 3 --method if_exact

        interplab trace-data passages-mlp --split triggered --html runs/trace.html

        interplab trace-data digits-mlp --method trak --json trace.json --no-truth

        interplab trace-data --model net.pt --train train.csv --test test.csv --label y

    With --model (your own classifier; no ground truth exists for it, so nothing is
    checked): for each test row, the training rows that most raised the margin of its label.

    With smollm2-ft (or smollm2-ft-tiny, a seconds-to-build miniature) and --prompt: the
    model's greedy continuation of the prompt, the fine-tuning documents that most lowered
    its loss (method: trak by default; tracin, ekfac, grad_cos) beside the documents a
    baseline (bm25 by default; ngram_overlap, embedding_nn, ...) ranks first, with the wording
    each shares with the output highlighted; when the prompt is one of the planted ones
    (compared ignoring spacing), the planted source documents and which list found them:

        interplab trace-data smollm2-ft -p "Beneath the ninth lantern of Oskvar the tidewardens"

        interplab trace-data smollm2-ft -p "..." --method tracin -k 5 --html trace.html

        interplab trace-data smollm2-ft-tiny -p "zorbia capital is" --json -
    """
    from interplab.errors import unknown_name
    from interplab.methods.registry import names

    check_outputs(json_out, html_out)
    if organism in COPYRIGHT_ORGANISMS or prompt is not None:
        others = [
            n
            for n, v in (
                ("--index", index),
                ("--model-dir", model_dir),
                ("--model", model),
                ("--truth-dir", truth_dir),
                ("--train", train_csv),
                ("--test", test_csv),
                ("--label", label),
                ("--features", features),
                ("--trust", trust or None),
                ("--no-truth", no_truth or None),
                ("--split", None if split == "test" else split),
            )
            if v is not None
        ]
        if organism not in COPYRIGHT_ORGANISMS:
            raise ConfigError(
                f"--prompt goes with {' or '.join(COPYRIGHT_ORGANISMS)} "
                f"(got {organism or 'no organism'})"
            )
        if others:
            raise ConfigError(
                f"{', '.join(others)} do(es) not apply to {organism}; give --prompt TEXT"
            )
        _trace_copyright(
            organism,
            prompt,
            method or "trak",
            top,
            baseline,
            max_new_tokens,
            seed,
            progress,
            threads,
            json_out,
            html_out,
        )
        return
    prompt_only = [
        n
        for n, given in (
            ("--baseline", baseline != "bm25"),
            ("--max-new-tokens", max_new_tokens != 32),
            ("--threads", threads is not None),
        )
        if given
    ]
    if prompt_only:
        raise ConfigError(
            f"{', '.join(prompt_only)} go(es) with {' or '.join(COPYRIGHT_ORGANISMS)} --prompt"
        )
    method = method or ("trak" if model is not None else "ekfac")
    if method not in names("data_attribution"):
        raise unknown_name("data-attribution method", method, names("data_attribution"))
    if model is not None:
        if organism is not None or model_dir is not None:
            raise ConfigError("give ORGANISM, --model-dir or --model, not several")
        _trace_model_file(
            model,
            train_csv,
            test_csv,
            label,
            features,
            trust,
            method,
            index,
            top,
            seed,
            json_out,
            html_out,
        )
        return
    given = [
        n
        for n, v in (
            ("--train", train_csv),
            ("--test", test_csv),
            ("--label", label),
            ("--features", features),
            ("--trust", trust or None),
        )
        if v is not None
    ]
    if given:
        raise ConfigError(f"{', '.join(given)} go(es) with --model FILE")
    index = 0 if index is None else index
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {SPLITS}, got {split!r}")
    org = _load(organism, model_dir)
    n = len(org.data.x_test if split == "test" else org.data.x_triggered)
    if not 0 <= index < n:
        raise ConfigError(
            f"--index {index} is out of range: the {split} split of {org.name} has {n} "
            f"points (0..{n - 1})"
        )
    truth = None
    if not no_truth:
        from interplab.zoo.retraining_truth import build_truth

        truth = build_truth(org, truth_dir)
    data = trace(org, truth, method, index, split, top, seed)
    echo = say(json_out)  # with --json -, stdout carries the JSON only
    echo(
        f"{org.name} {split}[{index}]: label {data['label_attributed']}, predicted "
        f"{data['predicted']}; top {top} training examples by {method}:"
    )
    for row in data["top"]:
        tags = " ".join(
            t for t, on in (("FLIPPED", row["flipped"]), ("PLANTED", row["planted"])) if on
        )
        echo(
            f"  train[{row['train_index']:>4}] score {row['score']:+.4g}  label {row['label']} "
            f"(digit {row['true_digit']}) {tags}"
        )
    for name, value in data["checks"].items():
        shown = (
            value
            if not isinstance(value, dict)
            else (f"{value['value']:.3f} [{value['low']:.3f}, {value['high']:.3f}] n={value['n']}")
        )
        echo(f"  {name}: {f'{shown:.3f}' if isinstance(shown, float) else shown}")
    write_json(json_out, data, indent=None if to_stdout(json_out) else 1)
    if html_out is not None:
        from interplab.models.io import atomic_write_text
        from interplab.report.data_attribution import trace_page

        atomic_write_text(html_out, trace_page(data))
        echo(f"wrote {html_out}")


#: test rows printed (all go to --json / --html)
MAX_PRINTED = 20


def trace_model_file(
    model: Path,
    train_csv: Path,
    test_csv: Path,
    label: str | None,
    features: Path | None = None,
    trust: bool = False,
    method: str = "trak",
    index: int | None = None,
    k: int = 10,
    seed: int = 0,
) -> dict:
    """The training rows of ``train_csv`` that most raised the margin of each ``test_csv``
    row's label under the user's torch classifier ``model`` (all test rows, or row ``index``)."""
    import torch

    from interplab.methods.data_attribution import attribute_data
    from interplab.models.foreign import class_indices, fit_model, load_model, read_table

    if label is None:
        raise ConfigError(
            "--model needs --label NAME: the column of --train and --test holding each row's class"
        )
    loaded = load_model(model, trust=trust)
    if loaded.kind != "torch":
        raise ConfigError(
            f"{model} is a scikit-learn model; trace-data needs the model's gradients: give a "
            "torch classifier saved with torch.jit.save(torch.jit.script(net), 'net.pt')"
        )
    train = read_table(train_csv, features_path=features, label=label)
    found = fit_model(loaded, train)
    test = read_table(test_csv, like=train, label=label)
    assert train.labels is not None and test.labels is not None  # label given (checked above)
    y_train = class_indices(train.labels, found.classes, train_csv)
    y_test = class_indices(test.labels, found.classes, test_csv)
    n_test, n_train = len(y_test), len(y_train)
    if index is not None and not 0 <= index < n_test:
        raise ConfigError(
            f"--index {index} is out of range: {test_csv} has {n_test} rows (0..{n_test - 1})"
        )
    if not 1 <= k <= n_train:
        raise ConfigError(f"--top must be in 1..{n_train}, got {k}")
    chosen = list(range(n_test)) if index is None else [index]
    net = found.class_logits()
    if method == "ekfac" and not any(
        isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) for m in net.modules()
    ):
        raise ConfigError(
            f"--method ekfac needs the model's nn.Linear / nn.Conv2d layers, which {model} "
            f"({found.format}) does not expose; use --method trak, if_cg or grad_dot"
        )
    x_train, x_test = train.rows.float(), test.rows[chosen].float()
    try:
        att = attribute_data(
            net, (x_train, y_train), (x_test, y_test[chosen]), method=method, seed=seed
        )
    except (TypeError, AttributeError, NotImplementedError, RuntimeError) as exc:
        # a method that needs more of the model than a file gives (its layers, its training)
        text = str(exc).strip().splitlines()
        raise ConfigError(
            f"--method {method} cannot run on {model} ({type(exc).__name__}: "
            f"{text[0] if text else ''}); try --method trak or grad_dot"
        ) from None
    with torch.no_grad():
        predicted = net(x_test).argmax(-1).tolist()

    def shown(rows: torch.Tensor, i: int) -> dict:
        return {f.name: f.show(v) for f, v in zip(train.features, rows[i].tolist())}

    tests = []
    for t, i in enumerate(chosen):
        top = [
            {
                "train_index": j,
                "score": score,
                "label": found.classes[int(y_train[j])],
                "row": shown(train.rows, j),
            }
            for j, score in att.top(t, k)
        ]
        tests.append(
            {
                "index": i,
                "label_attributed": found.classes[int(y_test[i])],
                "predicted": found.classes[predicted[t]],
                "row": shown(test.rows, i),
                "top": top,
            }
        )
    return {
        "model": str(model),
        "train": str(train_csv),
        "test": str(test_csv),
        "label": label,
        "method": method,
        "classes": list(found.classes),
        "features": [f.to_dict() for f in train.features],
        "notes": list(found.notes),
        "n_train": n_train,
        "n_test": n_test,
        "tests": tests,
        "seconds": att.seconds,
    }


def _trace_model_file(
    model: Path,
    train_csv: Path | None,
    test_csv: Path | None,
    label: str | None,
    features: Path | None,
    trust: bool,
    method: str,
    index: int | None,
    top: int,
    seed: int,
    json_out: Path | None,
    html_out: Path | None,
) -> None:
    missing = [n for n, v in (("--train", train_csv), ("--test", test_csv)) if v is None]
    if missing:
        raise ConfigError(f"--model needs {' and '.join(missing)} (CSV files of rows)")
    assert train_csv is not None and test_csv is not None
    data = trace_model_file(
        model, train_csv, test_csv, label, features, trust, method, index, top, seed
    )
    echo = say(json_out)
    for note in data["notes"]:
        echo(f"note: {note}")
    echo(
        f"{model}: top {top} of {data['n_train']} training rows by {method} for "
        f"{len(data['tests'])} test row(s) (score: how much the row raised the margin of the "
        "test row's label)"
    )
    for t in data["tests"][:MAX_PRINTED]:
        shown = " ".join(f"{k}={v}" for k, v in list(t["row"].items())[:6])
        echo(
            f"test[{t['index']}] label {t['label_attributed']}, predicted {t['predicted']}: "
            f"{shown}{' ...' if len(t['row']) > 6 else ''}"
        )
        for r in t["top"]:
            shown = " ".join(f"{k}={v}" for k, v in list(r["row"].items())[:6])
            echo(
                f"  train[{r['train_index']:>4}] score {r['score']:+.4g}  label {r['label']}  "
                f"{shown}{' ...' if len(r['row']) > 6 else ''}"
            )
    if len(data["tests"]) > MAX_PRINTED:
        echo(f"... {len(data['tests']) - MAX_PRINTED} more test rows in --json / --html")
    write_json(json_out, data, indent=None if to_stdout(json_out) else 1)
    if html_out is not None:
        from interplab.models.io import atomic_write_text
        from interplab.report.data_attribution import table_trace_page

        atomic_write_text(html_out, table_trace_page(data))
        echo(f"wrote {html_out}")


def continuation_query(org: Any, prompt: str, generated: str, item: Any = None) -> Any:
    """One attribution query (:class:`interplab.eval.copyright.Queries` of length 1): ``prompt``
    followed by the model's ``generated`` continuation, only the continuation's tokens labelled,
    so the attributed quantity is the continuation's loss given the prompt; ``item``: the
    planted item the prompt is (its kind, key and sources), or None."""
    from interplab.eval import copyright as ec

    p_ids, c_ids = list(org.tokenizer.encode(prompt)), list(org.tokenizer.encode(generated))
    if not p_ids:
        raise ConfigError(f"--prompt {prompt!r} encodes to no tokens; give some text")
    if not c_ids:
        raise ConfigError(
            f"{org.name} generated nothing after this prompt (it ended the text at once); "
            "there is no continuation to attribute"
        )
    pad = getattr(org.tokenizer, "pad_id", None)
    tokens, labels = ec.prompt_labels(p_ids, c_ids, len(p_ids) + len(c_ids), int(pad or 0))
    return ec.Queries(
        keys=(item.key if item else "prompt",),
        kinds=(item.kind if item else "query",),
        sources=(tuple(int(s) for s in item.sources) if item else (),),
        prompts=(prompt,),
        outputs=(generated,),
        matches_target=(bool(item) and generated.strip().startswith(item.target.strip()),),
        tokens=tokens[None],
        labels=labels[None],
        continuation="generated",
    )


def _normal(text: str) -> str:
    return " ".join(text.split())


def planted_item(org: Any, prompt: str) -> Any:
    """The organism's planted item whose prompt is ``prompt`` up to spacing (runs of spaces and
    newlines compare equal, so a planted "Question: ...\nAnswer: ..." can be typed on one
    line), or None. Case counts: the model sees it."""
    for item in org.corpus.items:
        if _normal(item.prompt) == _normal(prompt):
            return item
    return None


def _merge(spans: list[tuple[int, int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def trace_copyright(
    org: Any,
    prompt: str,
    method: str = "trak",
    k: int = 10,
    baseline: str = "bm25",
    max_new_tokens: int = 32,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Everything ``trace-data smollm2-ft --prompt`` shows: the greedy continuation, the top-k
    documents by ``method`` and by the overlap ``baseline`` (scores, kinds, shared spans), and
    the planted truth with which list found its sources when ``prompt`` is a planted one."""
    from interplab.eval import copyright as ec
    from interplab.report.copyright_page import shared_spans

    docs = org.corpus.docs
    if not 1 <= k <= len(docs):
        raise ConfigError(f"--k must be in 1..{len(docs)} (the fine-tuning documents), got {k}")
    generated = org.generate(prompt, max_new_tokens=max_new_tokens)
    item = planted_item(org, prompt)
    query = continuation_query(org, prompt, generated, item)
    run = ec.run_method(org, query, method, seed=seed, progress=progress)
    base = ec.run_baseline(org, query, baseline, seed=seed)
    scores, base_scores = run.scores[0].tolist(), base.scores[0].tolist()
    text_spans: list[tuple[int, int]] = []

    def rows(values: list[float]) -> list[dict]:
        order = sorted(range(len(values)), key=lambda i: (-values[i], i))[:k]
        out = []
        for i in order:
            in_doc, in_text = shared_spans(docs[i], generated)
            text_spans.extend(in_text)
            out.append(
                {
                    "doc": i,
                    "score": float(values[i]),
                    "kind": org.corpus.kinds[i],
                    "spans": [list(s) for s in in_doc],
                }
            )
        return out

    top, baseline_top = rows(scores), rows(base_scores)
    planted = None
    if item is not None:
        shown_m = {r["doc"] for r in top}
        shown_b = {r["doc"] for r in baseline_top}
        planted = {
            "kind": item.kind,
            "key": item.key,
            "target": item.target,
            "sources": list(item.sources),
            "found_by_method": [s for s in item.sources if s in shown_m],
            "found_by_baseline": [s for s in item.sources if s in shown_b],
            "generated_matches_target": bool(query.matches_target[0]),
            "prompt_exact": prompt == item.prompt,
        }
    return {
        "organism": org.name,
        "prompt": prompt,
        "generated": generated,
        "method": method,
        "baseline": baseline,
        "k": k,
        "top": top,
        "baseline_top": baseline_top,
        "planted": planted,
        "generated_spans": _merge(text_spans),
        "baseline_query": query.texts[0],
        "n_docs": len(docs),
        "seconds": run.seconds,
        "baseline_seconds": base.seconds,
    }


def _snippet(doc: str, spans: list[list[int]], width: int = 70) -> str:
    start = spans[0][0] if spans else 0
    text = " ".join(doc[start:].split())
    return (("..." if start else "") + text)[:width] + ("..." if len(text) > width else "")


def _trace_copyright(
    organism: str,
    prompt: str | None,
    method: str,
    k: int,
    baseline: str,
    max_new_tokens: int,
    seed: int,
    progress: bool,
    threads: int | None,
    json_out: Path | None,
    html_out: Path | None,
) -> None:
    from interplab.cli._common import set_threads
    from interplab.errors import unknown_name

    if prompt is None or not prompt.strip():
        raise ConfigError(
            f"{organism} needs --prompt TEXT (non-empty): the text whose continuation to trace"
        )
    from interplab.eval.copyright import BASELINES, METHODS

    if method not in METHODS:
        raise unknown_name(f"attribution method for {organism}", method, METHODS)
    if baseline not in BASELINES:
        raise unknown_name("baseline", baseline, BASELINES)
    if k < 1:
        raise ConfigError(f"--k must be at least 1, got {k}")
    if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise ConfigError(f"--max-new-tokens must be in 1..{MAX_NEW_TOKENS}, got {max_new_tokens}")
    set_threads(threads)
    from interplab.zoo.copyright import load

    org = load(organism, seed=0, progress=progress)
    data = trace_copyright(org, prompt, method, k, baseline, max_new_tokens, seed, progress)
    echo = say(json_out)
    echo(f"{org.name}: prompt {prompt!r}")
    echo(f"generated: {data['generated']!r}")
    planted = data["planted"]
    if planted is not None:
        planted_prompt = next(i.prompt for i in org.corpus.items if i.key == planted["key"])
        echo(
            f"planted {planted['kind']} {planted['key']!r}: source documents "
            f"{planted['sources']}; target {planted['target']!r}"
            + ("" if planted["generated_matches_target"] else " (the output differs from it)")
        )
        if not planted["prompt_exact"]:
            echo(
                "note: your prompt differs from the planted one in spacing only; the model saw "
                f"yours (the planted prompt: {planted_prompt!r})"
            )
    sources = set(planted["sources"]) if planted else set()
    for name, rows in ((method, data["top"]), (baseline, data["baseline_top"])):
        echo(f"top {len(rows)} of {data['n_docs']} documents by {name}:")
        for rank, r in enumerate(rows, 1):
            tag = " SOURCE" if r["doc"] in sources else ""
            echo(
                f"  #{rank:<2} doc[{r['doc']:>4}] {r['score']:+.4g} {r['kind']:<7}{tag} "
                f"{_snippet(org.corpus.docs[r['doc']], r['spans'])!r}"
            )
    if planted is not None:
        n = len(planted["sources"])
        echo(
            f"planted sources in the top {k}: {method} {len(planted['found_by_method'])}/{n}, "
            f"{baseline} {len(planted['found_by_baseline'])}/{n}"
        )
    write_json(json_out, data, indent=None if to_stdout(json_out) else 1)
    if html_out is not None:
        from interplab.models.io import atomic_write_text
        from interplab.report.copyright_page import copyright_page

        atomic_write_text(html_out, copyright_page(data, org.corpus.docs))
        echo(f"wrote {html_out}")


def register(app: typer.Typer) -> None:
    app.command("trace-data")(trace_data)
