"""``interplab circuit``: edge-level circuit discovery on a pretrained language model.

Mounted by ``cli/main.py`` with ``register(app)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from interplab.cli import _common
from interplab.cli._common import (
    check_output_path,
    check_outputs,
    html_file_option,
    json_file_option,
    progress_option,
    say,
    set_threads,
    task_options,
    threads_option,
    write_json,
)
from interplab.errors import ConfigError, unknown_name

ABLATION_CHOICES = ("mean", "resample", "zero")


def _ablations(text: str) -> tuple[str, ...]:
    names = tuple(a.strip() for a in text.split(",") if a.strip())
    if not names:
        raise ConfigError("--ablation needs at least one of mean, resample, zero")
    for a in names:
        if a not in ABLATION_CHOICES:
            raise unknown_name("ablation", a, ABLATION_CHOICES)
    return names


def _attention(model: Any, task: Any, result: dict[str, Any], n_heads: int = 6) -> dict[str, Any]:
    """Patterns of the circuit's strongest heads on the first prompt (for the viewer)."""
    from interplab.core.sites import Component, Site
    from interplab.report.viewer import attention_data

    block = next(iter(result["ablations"].values()))
    weight: dict[tuple[int, int], float] = {}
    for e in block["top_edges"]:
        for name in (e["sender"], e["receiver"]):
            if name.startswith("L") and ".H" in name:
                layer, head = name[1:].split(".H")
                weight[(int(layer), int(head))] = weight.get((int(layer), int(head)), 0.0) + abs(
                    e["score"]
                )
    heads = sorted(weight, key=lambda k: -weight[k])[:n_heads]
    if not heads:
        return None  # type: ignore[return-value]
    end = int(task.positions[0].max()) + 1
    tokens = task.clean[:1, :end]
    _, cache = model.run_with_cache(
        tokens, [Site(Component.ATTN_PATTERN, layer) for layer in sorted({h[0] for h in heads})]
    )
    tok = getattr(model, "tokenizer", None)
    text = [tok.decode([int(i)]) if tok is not None else str(int(i)) for i in tokens[0]]
    return attention_data(
        text, [(f"L{l}.H{h}", cache[Site(Component.ATTN_PATTERN, l)][0, h]) for l, h in heads]
    )


CIRCUIT_METHODS = ("eap", "eap_ig", "edge_pruning")


def _methods(text: str) -> tuple[str, ...]:
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    if not names:
        raise ConfigError("--method needs at least one of " + ", ".join(CIRCUIT_METHODS))
    for m in names:
        if m not in CIRCUIT_METHODS:
            raise unknown_name("method", m, CIRCUIT_METHODS)
    return names


def _fmt(value: float, ci: Any) -> str:
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def circuit(
    model: str = typer.Argument(
        "smollm2-135m", help="Pretrained language model (see `interplab models`)."
    ),
    task: str = typer.Option("ioi", "--task", help="ioi or induction (repeated random tokens)."),
    method: str = typer.Option(
        "eap_ig",
        "--method",
        help="Comma-separated: eap (one gradient), eap_ig (integrated gradients), "
        "edge_pruning (learned edge masks; minutes on SmolLM2).",
    ),
    ablation: str = typer.Option(
        "mean,resample",
        "--ablation",
        help="Comma-separated ablations to score and check under: mean, resample, zero.",
    ),
    steps: int = typer.Option(5, "--steps", help="EAP-IG integration steps."),
    rule: str = typer.Option("midpoint", "--rule", help="EAP-IG rule: midpoint or gauss_legendre."),
    n_prompts: int = typer.Option(
        32, "--n-prompts", help="Prompt pairs scored, and as many held-out pairs checked."
    ),
    batch_size: int = typer.Option(
        8, "--batch-size", help="Prompts per forward/backward chunk (memory grows with it)."
    ),
    random_seeds: int = typer.Option(
        1, "--random-seeds", help="Random edge orders averaged for the baseline."
    ),
    node_patching: bool = typer.Option(
        False,
        "--node-patching/--no-node-patching",
        help="Also rank by node-level activation patching (one forward "
        "per head/MLP: ~300 forwards on SmolLM2).",
    ),
    top: int = typer.Option(
        300, "--top", help="Edges drawn in the circuit graph (pruned like every circuit)."
    ),
    seed: int = typer.Option(0, "--seed", help="Prompt sampling seed (held-out: seed + 1)."),
    threads: int | None = threads_option(),
    progress: bool = progress_option("Progress bars on stderr."),
    json_out: Path | None = json_file_option(
        "Write every edge's signed score, the curves and the summary as JSON."
    ),
    html_out: Path | None = html_file_option(
        "Write the interactive page (self-contained, offline)."
    ),
    neuronpedia_out: Path | None = typer.Option(
        None, "--neuronpedia", help="Write the drawn circuit in Neuronpedia's graph JSON."
    ),
) -> None:
    """Find a circuit over the model's full edge graph and check it the way MIB does.

    Scores every edge (SmolLM2-135M: 123,211 edges) under each ablation on --n-prompts prompts, then measures MIB's faithfulness curves on as many held-out prompts (seed + 1): circuits of 0.1% to 100% of the edges, pruned of edges that cannot reach the logits, ranked by signed score (MIB's CPR, higher better) and by absolute score (MIB's CMD, lower better), beside a random edge order; with 95% bootstrap intervals over prompts. Also printed: f at 1%, 2% and 5% of the edges, and the f of the drawn --top circuit.

    Whole-run wall time, 32 prompts, 2 threads on a 2-core machine (benchmarks/real_circuit.py): the default (EAP-IG, 5 steps, mean and resample) 324 s, 2.3 GB peak: model load 9 s, scoring 122 s, faithfulness 189 s (50 circuits of 32 held-out prompts); --ablation mean alone about half that. edge_pruning trains a mask for many minutes per ablation.

    Example: interplab circuit smollm2-135m --task ioi --json c.json --html c.html
    """
    from interplab.eval.circuit_study import circuit_study
    from interplab.tasks import TASKS, make_task

    if task not in TASKS:
        raise unknown_name("task", task, tuple(TASKS))
    methods = _methods(method)
    for name, value, low in (
        ("--steps", steps, 1),
        ("--n-prompts", n_prompts, 1),
        ("--batch-size", batch_size, 1),
        ("--random-seeds", random_seeds, 1),
        ("--top", top, 1),
    ):
        if value < low:
            raise ConfigError(f"{name} must be at least {low}, got {value}")
    ablations = _ablations(ablation)
    check_outputs(json_out, html_out)  # before any work: a bad path fails in milliseconds
    check_output_path(neuronpedia_out, "--neuronpedia")
    echo = say(json_out)
    set_threads(threads)
    lm = _common.load_lm(model)  # looked up at call time: tests replace it
    tok = getattr(lm, "tokenizer", None)
    options = task_options(task, lm)
    data = make_task(task, tok, n=n_prompts, seed=seed, **options)
    held_out = make_task(task, tok, n=n_prompts, seed=seed + 1, **options)  # curves: other prompts
    typer.echo(
        f"{task}: {len(data)} prompts of {data.seq_len} tokens (curves on {len(held_out)} "
        f"held-out prompts); {', '.join(methods)} under {', '.join(ablations)}",
        err=True,
    )
    result = circuit_study(
        lm,
        data,
        eval_task=held_out,
        methods=methods,
        ablations=ablations,
        steps=steps,
        rule=rule,
        batch_size=batch_size,
        n_random=random_seeds,
        node_patching=node_patching,
        top=top,
        progress=progress,
        model_name=model,
    )
    echo(
        f"{result['n_edges']:,} edges; scoring {result['score_seconds']:.0f} s, "
        f"faithfulness {result['curve_seconds']:.0f} s; MIB CPR (signed ranking, higher "
        "better) and CMD (absolute ranking, lower better), f at 1% / 2% / 5% of edges, "
        "95% intervals over held-out prompts:"
    )
    for abl, block in result["ablations"].items():
        for name, row in block["summary"].items():
            f_at = "  ".join(f"{float(s):.0%} {v[0]:.2f}" for s, v in row["f_at"].items())
            tag = " (baseline)" if row["baseline"] else ""
            echo(
                f"{abl:>9} {name + tag:<22} CPR {_fmt(row['mib_cpr'], row['mib_cpr_ci'])}  "
                f"CMD {_fmt(row['mib_cmd'], row['mib_cmd_ci'])}  f: {f_at}"
            )
        d = block["drawn"]
        echo(
            f"{abl:>9} drawn circuit: top {d['top']} edges of {d['method']} -> {d['n_kept']} "
            f"after pruning ({d['fraction']:.2%} of edges), f = {_fmt(d['f'], d['f_ci'])}"
        )
    write_json(json_out, result)
    if neuronpedia_out is not None:
        from interplab.models.io import atomic_write_text
        from interplab.report.neuronpedia import to_neuronpedia

        end = int(data.positions[0].max()) + 1
        toks = [
            tok.decode([int(i)]) if tok is not None else str(int(i)) for i in data.clean[0, :end]
        ]
        graph = to_neuronpedia(
            result,
            toks,
            n_layers=lm.cfg.n_layers,
            n_heads=lm.cfg.n_heads,
            slug=f"{model}-{task}-{methods[0]}",
        )
        atomic_write_text(neuronpedia_out, json.dumps(graph))
        echo(f"wrote {neuronpedia_out}")
    if html_out is not None:
        from interplab.report.circuit_page import circuit_report
        from interplab.report.real_models import write

        page = circuit_report(result, attention=_attention(lm, data, result))
        echo(f"wrote {write(html_out, page)}")


def register(app: typer.Typer) -> None:
    """Add ``circuit`` to ``app``."""
    app.command("circuit")(circuit)
