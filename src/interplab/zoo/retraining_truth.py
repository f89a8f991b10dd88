"""The retraining ground truth of a data-attribution organism: what really happens to the test
outputs when training examples are left out. Computed only with the organism's own training
code (:func:`~interplab.models.classifiers.train_classifier`), never with an attribution method.

    subsets   n_subsets random subsets of the training set, each exactly ``subset_fraction`` of it
              (masks from a seed of their own); the classifier retrained on each (subset j from
              init seed ``seed + j % n_init_seeds``) and its output (the label margin,
              :func:`~interplab.models.classifiers.margin`) measured on every test point:
              ``outputs [n_subsets, n_test]`` — the LDS ground truth
    loo       a seeded sample of n_loo training points; the classifier retrained without each:
              ``loo_effect [n_loo, n_test] = full output − output without the point``
    planted   the classifier retrained without the planted examples: the margins of the
              triggered inputs' planted labels with and without them (the planted behaviour)

Stored as ``truth.safetensors`` + ``truth.json`` in the organism's directory, written atomically
after every chunk of retrainings: an interrupted build resumes where it stopped. ``truth.json``
records the organism's fingerprint; a truth built for another model is refused, never
overwritten or deleted. A build (or a resumed one) holds the entry's file lock
(:func:`interplab.models.weights_cache.entry_lock`, ``<directory>.truth.lock``) and reads the
sidecar again once it holds it, so parallel jobs wanting the same truth build it once.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from interplab.core.threads import one_thread
from interplab.errors import ConfigError, WeightsError
from interplab.models import weights_cache
from interplab.models.classifiers import margin, train_classifier
from interplab.models.io import atomic_write_text, load_tensors, save_tensors
from interplab.zoo.data_attribution import DAOrganism

Tensor = torch.Tensor
TRUTH_FILE, TRUTH_SIDECAR = "truth.safetensors", "truth.json"
CHUNK = 10
MASK_SEED_OFFSET = 7_919
LOO_SEED_OFFSET = 104_729


@dataclass(frozen=True)
class RetrainingTruth:
    masks: Tensor  # [n_subsets, n_train] bool
    outputs: Tensor  # [n_subsets, n_test]
    loo_index: Tensor  # [n_loo] indices into train
    loo_effect: Tensor  # [n_loo, n_test]
    full_output: Tensor  # [n_test]
    triggered_with: Tensor  # [n_triggered] target margin, full model
    triggered_without: Tensor  # [n_triggered] target margin, retrained without the planted examples
    fingerprint: str


def subset_masks(org: DAOrganism) -> Tensor:
    s = org.spec
    gen = torch.Generator().manual_seed(s.data_seed + MASK_SEED_OFFSET)
    k = round(s.subset_fraction * s.n_train)
    masks = torch.zeros(s.n_subsets, s.n_train, dtype=torch.bool)
    for j in range(s.n_subsets):
        masks[j, torch.randperm(s.n_train, generator=gen)[:k]] = True
    return masks


def loo_indices(org: DAOrganism) -> Tensor:
    s = org.spec
    gen = torch.Generator().manual_seed(s.data_seed + LOO_SEED_OFFSET)
    return torch.randperm(s.n_train, generator=gen)[: min(s.n_loo, s.n_train)].sort().values


def _retrain_output(
    org: DAOrganism, keep: Tensor, x: Tensor, labels: Tensor, seed_shift: int = 0
) -> Tensor:
    spec = org.spec.classifier
    if seed_shift:
        spec = dataclasses.replace(spec, seed=spec.seed + seed_shift)
    d = org.data
    model = train_classifier(spec, d.x_train[keep], d.y_train[keep])
    with torch.no_grad():
        return margin(model.logits(x), labels)


def _check(org: DAOrganism, meta: dict, path: Path) -> None:
    if meta.get("fingerprint") != org.fingerprint:
        raise ConfigError(
            f"the ground truth in {path} was built for another model (fingerprint "
            f"{meta.get('fingerprint')!r}, this organism's is {org.fingerprint!r}); it is left "
            "untouched: point to the organism it belongs to, or move it away to rebuild"
        )


def load_truth(directory: str | Path, org: DAOrganism) -> RetrainingTruth | None:
    """The complete truth stored in ``directory`` for ``org``; None when absent or unfinished.
    Raises ConfigError when it belongs to another model."""
    directory = Path(directory)
    meta = _read_meta(directory)
    if meta is None:
        return None
    _check(org, meta, directory / TRUTH_SIDECAR)
    if not meta.get("complete"):
        return None
    return _from_tensors(load_tensors(directory / TRUTH_FILE), org.fingerprint)


def _read_meta(directory: Path) -> dict | None:
    path = directory / TRUTH_SIDECAR
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path} is not valid JSON ({exc}); move it away to rebuild") from None


def _from_tensors(t: dict[str, Tensor], fp: str) -> RetrainingTruth:
    return RetrainingTruth(
        t["masks"].bool(),
        t["outputs"],
        t["loo_index"],
        t["loo_effect"],
        t["full_output"],
        t["triggered_with"],
        t["triggered_without"],
        fp,
    )


def build_truth(
    org: DAOrganism,
    directory: str | Path | None = None,
    *,
    progress: bool = True,
    stop_after: int | None = None,
) -> RetrainingTruth:
    """Load the truth from ``directory`` (default: the organism's own), or build / finish it
    (resuming a partial build), with a progress bar. ``stop_after``: raise KeyboardInterrupt after
    that many retrainings, as Ctrl-C would (tests simulate an interruption with it)."""
    directory = Path(directory or org.directory)
    done = _complete(org, directory)
    if done is not None:
        return done
    with weights_cache.entry_lock(directory, "truth"):
        meta = _read_meta(directory)  # read again under the lock: another process may have built it
        if meta is not None:
            _check(org, meta, directory / TRUTH_SIDECAR)
            if meta.get("complete"):
                return _from_tensors(load_tensors(directory / TRUTH_FILE), org.fingerprint)
        with one_thread():
            return _build(org, directory, meta, progress, stop_after)


def _complete(org: DAOrganism, directory: Path) -> RetrainingTruth | None:
    """The finished truth in ``directory`` (no lock needed: it is only ever written whole), or None."""
    meta = _read_meta(directory)
    if meta is None:
        return None
    _check(org, meta, directory / TRUTH_SIDECAR)
    return (
        _from_tensors(load_tensors(directory / TRUTH_FILE), org.fingerprint)
        if meta.get("complete")
        else None
    )


def _build(
    org: DAOrganism, directory: Path, meta: dict | None, progress: bool, stop_after: int | None
) -> RetrainingTruth:
    from tqdm.auto import tqdm

    s, d = org.spec, org.data
    state = _initial_state(org) if meta is None else load_tensors(directory / TRUTH_FILE)
    done_s, done_l = (0, 0) if meta is None else (meta["subsets_done"], meta["loo_done"])
    total = s.n_subsets + len(state["loo_index"]) + 1
    bar = tqdm(
        total=total,
        initial=done_s + done_l,
        desc=f"ground truth {org.name} (retrainings)",
        disable=not progress,
        leave=False,
    )
    count = 0
    try:
        while done_s < s.n_subsets or done_l < len(state["loo_index"]):
            for _ in range(CHUNK):
                if stop_after is not None and count >= stop_after:
                    raise KeyboardInterrupt("stopped by stop_after")
                if done_s < s.n_subsets:
                    state["outputs"][done_s] = _retrain_output(
                        org,
                        state["masks"][done_s].bool(),
                        d.x_test,
                        d.y_test,
                        done_s % s.n_init_seeds,
                    )
                    done_s += 1
                elif done_l < len(state["loo_index"]):
                    keep = torch.ones(s.n_train, dtype=torch.bool)
                    keep[state["loo_index"][done_l]] = False
                    state["loo_effect"][done_l] = state["full_output"] - _retrain_output(
                        org, keep, d.x_test, d.y_test
                    )
                    done_l += 1
                else:
                    break
                count += 1
                bar.update(1)
            _save(directory, org, state, done_s, done_l, complete=False)
    finally:
        bar.close()
    keep = torch.ones(s.n_train, dtype=torch.bool)
    keep[d.planted] = False
    state["triggered_without"] = _retrain_output(org, keep, d.x_triggered, d.triggered_labels)
    _save(directory, org, state, done_s, done_l, complete=True)
    return _from_tensors(state, org.fingerprint)


def _initial_state(org: DAOrganism) -> dict[str, Tensor]:
    s, d = org.spec, org.data
    loo = loo_indices(org)
    with torch.no_grad():
        full = margin(org.model.logits(d.x_test), d.y_test)
        trig = margin(org.model.logits(d.x_triggered), d.triggered_labels)
    return {
        "masks": subset_masks(org).to(torch.uint8),
        "outputs": torch.zeros(s.n_subsets, s.n_test, dtype=torch.float64),
        "loo_index": loo,
        "loo_effect": torch.zeros(len(loo), s.n_test, dtype=torch.float64),
        "full_output": full,
        "triggered_with": trig,
        "triggered_without": torch.full_like(trig, float("nan")),
    }


def _save(
    directory: Path,
    org: DAOrganism,
    state: dict[str, Tensor],
    done_s: int,
    done_l: int,
    complete: bool,
) -> None:
    save_tensors(
        directory / TRUTH_FILE,
        {k: v.to(torch.uint8) if k == "masks" else v for k, v in state.items()},
    )
    meta = {
        "format": "interplab-retraining-truth",
        "version": 1,
        "organism": org.name,
        "fingerprint": org.fingerprint,
        "subsets_done": done_s,
        "loo_done": done_l,
        "n_subsets": org.spec.n_subsets,
        "n_loo": len(state["loo_index"]),
        "complete": complete,
    }
    atomic_write_text(directory / TRUTH_SIDECAR, json.dumps(meta, indent=1, sort_keys=True))
