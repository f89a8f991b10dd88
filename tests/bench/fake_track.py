"""A deterministic stand-in track for runner/store/report tests. Each job appends its key to
the file named by $FAKE_TRACK_LOG, so tests can count what really ran.

Methods: good / bad (finite scores), boom (raises), nan (a NaN row without a reason and an inf
row with one), threads (reports torch's thread count while the job runs), interrupt (Ctrl-C
in the middle of the job), unrecordable (a value that is not a number)."""

from __future__ import annotations

import os

from interplab.bench.track import Job, JobOutput, Metric, Track
from interplab.core.circuit import Circuit, Edge, Node

ORGANISMS = ("org-a", "org-b")
METHODS = ("good", "bad", "boom", "nan", "threads", "interrupt", "unrecordable")
ABLATIONS = ("zero", "resample")
SUITES = {"quick": {"organisms": ["org-a"], "methods": ["good", "bad"], "ablations": ["zero"]}}

TRUTH = Circuit.from_edges(
    [Edge(Node.tok_embed(), Node.attn_head(0, 0), "v"), Edge(Node.attn_head(0, 0), Node.logits())]
)


def run_job(job: Job) -> JobOutput:
    with open(os.environ["FAKE_TRACK_LOG"], "a") as fh:
        fh.write(job.key + "\n")
    if job.method == "boom":
        raise RuntimeError("the boom method always fails")
    if job.method == "interrupt":
        raise KeyboardInterrupt
    if job.method == "nan":
        return JobOutput(
            rows=[
                {"metric": "edge_auroc", "value": float("nan")},
                {"metric": "cpr", "value": float("inf"), "reason": "empty circuit"},
                {"metric": "cmd", "value": 0.5},
            ]
        )
    if job.method == "threads":
        import torch

        return JobOutput(rows=[{"metric": "threads", "value": torch.get_num_threads()}])
    if job.method == "unrecordable":
        return JobOutput(rows=[{"metric": "edge_auroc", "value": "high"}])
    auc = 0.9 if job.method == "good" else 0.4
    return JobOutput(
        rows=[{"metric": "edge_auroc", "value": auc}, {"metric": "cpr", "value": auc / 2}],
        artifacts={
            "roc": {"fpr": [0, 0.5, 1], "tpr": [0, auc, 1], "auc": auc},
            "faithfulness": {"percent": [1, 10, 100], "f": [0.1, auc, 1.0]},
            "true_circuit": TRUTH.to_json(),
            "circuit": Circuit.from_edges(
                [Edge(Node.pos_embed(), Node.attn_head(0, 0), "q")]
            ).to_json(),
        },
    )


TRACK = Track(
    name="fake",
    families=("fake",),
    organisms=ORGANISMS,
    methods=METHODS,
    ablations=ABLATIONS,
    suites=SUITES,
    score=run_job,
    metrics=(Metric("edge_auroc", headline=True), Metric("cpr"), Metric("cmd", better="lower")),
    section="interplab.report.circuits:section",
)


# ---- test helpers (not part of the track interface) ------------------------------------
def register(monkeypatch, log_path) -> None:
    """Make the track available as [fake] (and [fake2], the same track under a second name)
    and send its run log to ``log_path``."""
    from interplab.bench import tracks

    monkeypatch.setitem(tracks.TRACK_MODULES, "fake", "tests.bench.fake_track")
    monkeypatch.setitem(tracks.TRACK_MODULES, "fake2", "tests.bench.fake_track")
    monkeypatch.setenv("FAKE_TRACK_LOG", str(log_path))
