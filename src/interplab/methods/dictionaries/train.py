"""Train a sparse dictionary: ``train_dictionary(source, DictionaryConfig(...)) -> TrainedDictionary``.

Seeded and resumable: batch ``step`` comes from ``source.batch(step, batch_size)`` (a pure
function of the step), resampling draws from a generator seeded by ``(seed, step)``, and a
checkpoint holds the weights, the Adam moments and the per-latent "steps since fired" counters.
So a run that stops and resumes from its last checkpoint ends with the same weights as one
that never stopped.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from interplab.errors import ConfigError, ShapeError
from interplab.methods.base import Cost, Result
from interplab.methods.dictionaries.checkpoint import (
    checkpoint_dirs,
    read_checkpoint,
    write_checkpoint,
)
from interplab.methods.dictionaries.config import RESUMABLE_CHANGES, DictionaryConfig
from interplab.methods.dictionaries.modules import SparseDictionary
from interplab.methods.dictionaries.sources import as_source

Tensor = torch.Tensor


@dataclass(frozen=True, eq=False)
class TrainedDictionary(Result):
    """A trained dictionary and how it got there.

    Attributes:
        dictionary: the module (eval mode).
        config: its DictionaryConfig.
        history: one row every ``log_every`` steps: step, loss, mse (squared error per sample),
            l0 (active latents per sample), variance_explained, dead_fraction (latents silent
            for the last ``log_every`` steps), resampled (latents resampled so far).
        steps: steps trained in total.
        resumed_from: the checkpoint step this run resumed from, or None.
        seconds: training wall time in total (across resumes); ``cost``: the dictionary's
            forward and backward passes in this run (one each per step, over one batch).
    """

    dictionary: SparseDictionary
    config: DictionaryConfig
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    resumed_from: int | None = None

    @property
    def samples_per_second(self) -> float:
        return (
            self.steps * self.config.batch_size / self.seconds if self.seconds > 0 else float("nan")
        )


def train_dictionary(
    source: Any,
    config: DictionaryConfig,
    *,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool = False,
    callback: Callable[[int, dict[str, float] | None], None] | None = None,
) -> TrainedDictionary:
    """Train a dictionary on activations from ``source``.

    Args:
        source: a :class:`~interplab.methods.dictionaries.sources.ModelSource` (a site of a
            HookedModel), a ground-truth organism (SyntheticFeatures, SuperpositionModel),
            a tensor [n, d_in], or any ActivationSource.
        config: architecture and schedule; ``d_in`` (and ``d_out``) must match the source.
        checkpoint_dir: where checkpoints go; with ``resume`` the run continues from the newest
            one there. A corrupt newest checkpoint raises WeightsError.
        progress: show a tqdm progress bar.
        callback: called as ``callback(step, history_row_or_None)`` after every step
            (raise from it to stop training early).
    """
    src = as_source(source, transcoder=config.is_transcoder)
    _check_widths(src, config)
    dictionary = SparseDictionary(config)
    opt = torch.optim.Adam(dictionary.parameters(), lr=config.lr)
    since_fired = torch.zeros(config.d_latent, dtype=torch.long)
    state: dict[str, Any] = {"step": 0, "history": [], "seconds": 0.0, "resampled": 0}
    root = Path(checkpoint_dir) if checkpoint_dir is not None else None
    resumed_from = None
    if root is not None and resume and checkpoint_dirs(root):
        state, since_fired = _restore(checkpoint_dirs(root)[-1], config, dictionary, opt)
        resumed_from = state["step"]

    from tqdm.auto import tqdm

    bar = tqdm(
        total=config.steps,
        initial=state["step"],
        disable=not progress,
        desc="dictionary",
        unit="step",
        leave=False,
    )
    started = time.perf_counter()
    seconds_before = state["seconds"]
    # Near-zero Adam moments of rarely firing latents go subnormal and slow CPU math ~3x.
    flushed = torch.set_flush_denormal(True)
    try:
        for step in range(state["step"], config.steps):
            x, y = src.batch(step, config.batch_size)
            latents, loss, mse, fired = _train_step(dictionary, opt, x, y)
            since_fired = torch.where(fired, torch.zeros_like(since_fired), since_fired + 1)
            done = step + 1
            if config.resample_every and done % config.resample_every == 0 and done < config.steps:
                dead = since_fired >= config.resample_every
                state["resampled"] += _resample(dictionary, opt, x, y, dead, config.seed, done)
                since_fired[dead] = 0
            row = None
            if done % config.log_every == 0 or done == config.steps:
                row = _history_row(
                    done, loss, mse, latents, y, since_fired, config, state["resampled"]
                )
                state["history"].append(row)
                bar.set_postfix(mse=f"{row['mse']:.4g}", l0=f"{row['l0']:.3g}")
            state["step"] = done
            state["seconds"] = seconds_before + time.perf_counter() - started
            if root is not None and (
                (config.checkpoint_every and done % config.checkpoint_every == 0)
                or done == config.steps
            ):
                _save(root, dictionary, opt, since_fired, state, config)
            bar.update(1)
            if callback is not None:
                callback(done, row)
    finally:
        bar.close()
        if flushed:
            torch.set_flush_denormal(False)  # torch's default
    dictionary.eval()
    ran = state["step"] - (resumed_from or 0)
    return TrainedDictionary(
        dictionary,
        config,
        state["history"],
        state["step"],
        resumed_from,
        cost=Cost(forward=ran, backward=ran),
        seconds=state["seconds"],
    )


def _check_widths(src: Any, config: DictionaryConfig) -> None:
    problems = []
    if src.d_in != config.d_in:
        problems.append(
            f"the source's activations have width {src.d_in} but DictionaryConfig(d_in={config.d_in})"
        )
    if src.d_out != config.out_width:
        problems.append(
            f"the target has width {src.d_out} but the dictionary outputs {config.out_width}"
        )
    if problems:
        where = f" at site {src.site}" if hasattr(src, "site") else ""
        raise ShapeError(
            f"dictionary does not fit its source{where}: "
            + "; ".join(problems)
            + f". Use DictionaryConfig(d_in={src.d_in}"
            + (f", d_out={src.d_out}" if config.is_transcoder else "")
            + ", ...)."
        )


def _train_step(
    d: SparseDictionary, opt: torch.optim.Optimizer, x: Tensor, y: Tensor
) -> tuple[Tensor, float, float, Tensor]:
    """One optimizer step on batch ``(x, y)``.

    Returns the batch's latents [batch, latent], the loss and the MSE as floats, and which
    latents fired on the batch [latent] (bool). ReLU and TopK dictionaries take the manual
    path (:func:`_manual_grads`); JumpReLU's straight-through estimator goes through autograd.
    """
    if d.config.activation in ("relu", "topk"):
        latents, loss, mse, fired = _manual_grads(d, x, y)
    else:
        latents, loss, mse, fired = _autograd_grads(d, x, y)
    if d.config.normalize_decoder:
        d.project_decoder_grad()
    opt.step()
    if d.config.normalize_decoder:
        d.normalize_decoder()
    return latents, loss, mse, fired


def _autograd_grads(
    d: SparseDictionary, x: Tensor, y: Tensor
) -> tuple[Tensor, float, float, Tensor]:
    """Loss and parameter gradients by autograd (any activation)."""
    pre = d.pre_activations(x)
    latents = d.activate(pre)
    recon = d.decode(latents)
    mse = ((recon - y) ** 2).sum(-1).mean()
    loss = mse + d.sparsity_penalty(pre, latents)
    for p in d.parameters():
        p.grad = None
    loss.backward()
    latents = latents.detach()
    return latents, float(loss.detach()), float(mse.detach()), (latents > 0).any(0)


@torch.no_grad()
def _manual_grads(d: SparseDictionary, x: Tensor, y: Tensor) -> tuple[Tensor, float, float, Tensor]:
    """The gradients autograd would give for a ReLU (+ L1) or TopK dictionary, written out.

    Loss: ``mean_b ||ŷ_b - y_b||² + λ mean_b sum_j z_bj`` ("relu"; ``|z| = z`` as ``z ≥ 0``),
    with ``z = act(c W_enc + b_enc)``, ``c = x - b_dec`` (autoencoder) or ``x`` (transcoder),
    ``ŷ = z W_dec + b_dec``. With ``g = 2(ŷ - y)/n`` and ``m = [z > 0]`` (for ReLU and TopK
    alike, the latents that let gradient through):

        ∇W_dec = zᵀ g      ∇z = g W_decᵀ + λ/n      ∇pre = ∇z ⊙ m
        ∇W_enc = cᵀ ∇pre   ∇b_enc = Σ_b ∇pre       ∇b_dec = Σ_b g − ∇b_enc W_encᵀ

    The last term is the centring's share of ∇b_dec, ``−Σ_b (∇pre W_encᵀ)``, taken as a
    matrix-vector product after the sum: this saves the [n, latent] x [latent, d_in] matmul
    autograd spends on the gradient of ``c``. Bias adds are folded into ``addmm``; the ReLU
    runs in place; one column sum gives both the L1 value and which latents fired.
    """
    cfg = d.config
    n = x.shape[0]
    centred = x if cfg.is_transcoder else x - d.b_dec
    pre = torch.addmm(d.b_enc, centred, d.W_enc)
    latents = pre.relu_() if cfg.activation == "relu" else d.activate(pre)
    recon = torch.addmm(d.b_dec, latents, d.W_dec)
    diff = recon - y
    mse = diff.pow(2).sum(-1).mean()
    per_latent = latents.sum(0)  # z ≥ 0, so > 0 exactly where a latent fired
    g_recon = diff.mul_(2.0 / n)
    if cfg.activation == "relu":
        l1 = torch.full((), cfg.l1_coefficient, dtype=d.W_dec.dtype) / n
        loss = mse + cfg.l1_coefficient * (per_latent.sum() / n)
        g_latents = torch.addmm(l1, g_recon, d.W_dec.t())
    else:
        loss = mse
        g_latents = torch.mm(g_recon, d.W_dec.t())
    g_pre = torch.ops.aten.threshold_backward(g_latents, latents, 0)
    g_b_enc = g_pre.sum(0)
    d.W_dec.grad = torch.mm(latents.t(), g_recon)
    d.W_enc.grad = torch.mm(centred.t(), g_pre)
    d.b_enc.grad = g_b_enc
    g_b_dec = g_recon.sum(0)
    if not cfg.is_transcoder:
        g_b_dec = g_b_dec - torch.mv(d.W_enc, g_b_enc)
    d.b_dec.grad = g_b_dec
    return latents, float(loss), float(mse), per_latent > 0


def _history_row(
    step: int,
    loss: float,
    mse: float,
    latents: Tensor,
    y: Tensor,
    since_fired: Tensor,
    config: DictionaryConfig,
    resampled: int,
) -> dict[str, float]:
    var = float(((y - y.mean(0)) ** 2).sum(-1).mean())
    return {
        "step": step,
        "loss": loss,
        "mse": mse,
        "l0": float((latents > 0).float().sum(-1).mean()),
        "variance_explained": 1.0 - mse / var if var > 0 else float("nan"),
        "dead_fraction": float((since_fired >= min(step, config.log_every)).float().mean()),
        "resampled": resampled,
    }


@torch.no_grad()
def _resample(
    d: SparseDictionary,
    opt: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    dead: Tensor,
    seed: int,
    step: int,
) -> int:
    """Point dead latents at badly reconstructed inputs (sampled ∝ error²); reset their Adam moments."""
    n_dead = int(dead.sum())
    if n_dead == 0:
        return 0
    recon = d(x)
    err = ((recon - y) ** 2).sum(-1)
    gen = torch.Generator().manual_seed(hash((seed, step, 2)) & 0x7FFF_FFFF_FFFF)
    idx = torch.multinomial(err**2 + 1e-12, n_dead, replacement=True, generator=gen)
    alive = ~dead
    enc_norm = float(d.W_enc[:, alive].norm(dim=0).mean()) if alive.any() else 1.0
    resid = (y - recon)[idx]
    inp = (x if d.config.is_transcoder else x - d.b_dec)[idx]
    d.W_dec[dead] = resid / resid.norm(dim=1, keepdim=True).clamp_min(1e-12)
    d.W_enc[:, dead] = (inp / inp.norm(dim=1, keepdim=True).clamp_min(1e-12)).T * enc_norm * 0.2
    d.b_enc[dead] = 0.0
    slices: list[tuple[torch.nn.Parameter, Any]] = [
        (d.W_dec, dead),
        (d.W_enc, (slice(None), dead)),
        (d.b_enc, dead),
    ]
    if d.config.activation == "jumprelu":
        d.log_threshold[dead] = math.log(d.config.jumprelu_threshold)
        slices.append((d.log_threshold, dead))
    for param, index in slices:
        st = opt.state.get(param, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in st:
                st[key][index] = 0.0
    return n_dead


def _save(
    root: Path,
    d: SparseDictionary,
    opt: torch.optim.Optimizer,
    since_fired: Tensor,
    state: dict[str, Any],
    config: DictionaryConfig,
) -> None:
    tensors = {f"dict.{k}": v for k, v in d.state_dict().items()}
    for idx, st in opt.state_dict()["state"].items():
        for key, value in st.items():
            tensors[f"opt.{idx}.{key}"] = torch.as_tensor(value)
    tensors["since_fired"] = since_fired
    write_checkpoint(
        root, state["step"], tensors, {**state, "config": config.to_json()}, config.keep_checkpoints
    )


def _restore(path: Path, config: DictionaryConfig, d: SparseDictionary, opt: torch.optim.Optimizer):
    from interplab.errors import WeightsError

    tensors, state = read_checkpoint(path)
    saved = state.get("config", {})
    changed = sorted(
        k for k, v in config.to_json().items() if k not in RESUMABLE_CHANGES and saved.get(k) != v
    )
    if changed:
        raise ConfigError(
            f"checkpoint {path} was written with a different config ({', '.join(f'{k}: {saved.get(k)!r} -> {getattr(config, k)!r}' for k in changed)}); "
            "resume with the same config, pass resume=False, or use another checkpoint_dir"
        )
    weights = {k[len("dict.") :]: v for k, v in tensors.items() if k.startswith("dict.")}
    try:
        d.load_state_dict(weights)
        opt_state = opt.state_dict()
        per_param: dict[int, dict[str, Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, idx, key = k.split(".", 2)
                per_param.setdefault(int(idx), {})[key] = v
        opt_state["state"] = per_param
        opt.load_state_dict(opt_state)
        since_fired = tensors["since_fired"].long()
    except (RuntimeError, KeyError, ValueError) as exc:
        raise WeightsError(
            f"checkpoint {path} does not match this dictionary ({exc}). Delete it or "
            "pass resume=False to start over."
        ) from None
    state = {k: state[k] for k in ("step", "history", "seconds", "resampled")}
    return state, since_fired
