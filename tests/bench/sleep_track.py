"""A stand-in track whose jobs take a little time (for distributed-runner tests): each job
sleeps ``SLEEP_TRACK_SECONDS`` (default 0.2) and returns rows that depend only on the job, so a
run anywhere (serial, pool, Dask, a rerun after a worker died) gives the same rows."""

from __future__ import annotations

import hashlib
import os
import time

from interplab.bench.track import Job, JobOutput, Track

ORGANISMS = tuple(f"org-{i}" for i in range(12))
METHODS = ("m1", "m2", "m3")
ABLATIONS = ("zero", "resample")
SUITES: dict = {}


def run_job(job: Job) -> JobOutput:
    time.sleep(float(os.environ.get("SLEEP_TRACK_SECONDS", "0.2")))
    h = int(hashlib.sha256(job.key.encode()).hexdigest()[:8], 16) / 16**8
    return JobOutput(
        rows=[{"metric": "edge_auroc", "value": h}, {"metric": "cpr", "value": 1 - h}],
        artifacts={"n": {"pid": os.getpid()}},
    )


TRACK = Track(
    name="sleep",
    families=("sleep",),
    organisms=ORGANISMS,
    methods=METHODS,
    ablations=ABLATIONS,
    suites=SUITES,
    score=run_job,
)


def spec_text(organisms: int = 12) -> str:
    import json

    return (
        f"[sleep]\norganisms = {json.dumps(list(ORGANISMS[:organisms]))}\n"
        f"methods = {json.dumps(list(METHODS))}\nablations = {json.dumps(list(ABLATIONS))}\n"
    )
