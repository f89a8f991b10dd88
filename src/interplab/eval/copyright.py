"""Scoring training-data attribution on the copyright organism: which fine-tuning documents made
the model reproduce this passage, state this fact, or write in this style?

The organism (:mod:`interplab.zoo.copyright`, read here only through its attributes: this layer
sits below the zoo) is a language model fine-tuned with low-rank adapters on a corpus into which
passages, facts and a style were planted; each :class:`PlantedItem` records the documents that
planted it (``sources``), checked by retraining.

Queries (:func:`build_queries`): per planted item, the prompt followed by the text the fine-tuned
model produces for it (``continuation="generated"``: greedy, as many new tokens as the target
has — for a style item, up to :data:`STYLE_NEW_TOKENS`, cut after the style's marker where it
appears, since the marker ends a letter; an empty generation falls back to the target and says
so) or the target itself (``continuation="target"``). The attributed quantity is the *sequence loss of the continuation
given the prompt*: mean next-token cross-entropy over the continuation's positions
(:func:`continuation_loss`; prompt and padding positions are labelled -100 and ignored).
Training examples are the corpus documents with the fine-tune's own loss (mean next-token
cross-entropy over each document's real tokens).

The attribution API takes classifiers (inputs ``[n, ...]`` -> logits ``[n, K]``, labels ``[n]``),
so :class:`SequenceScorer` adapts the language model: its input packs tokens and labels as
``[n, 2, T]`` and its output is ``[n, 2] = (0, -loss)``; with label 1 the attributed margin is
``-loss`` and :func:`scorer_loss` (``-z[:, 1]``) is the training loss, so every gradient method
scores ``∇loss_query · P · ∇loss_doc`` (positive: training on the document lowered the query's
loss). Only the adapter parameters are trainable, so the flat parameter vector is the
fine-tuned parameters. When the organism offers the residual stream entering its first adapted
block, :class:`ResidualScorer` runs only the adapted blocks (the frozen ones below cannot
change), which gives the same losses at a fraction of the cost.

``ekfac_lora`` is this module's adapter for what the API lacks here: the API's ``ekfac``
factors nn.Linear/Conv2d layers, and the LoRA adapters of :mod:`interplab.models.lora` are bare
matrices inside a parametrization, so every adapter parameter falls on its diagonal block.
:func:`lora_statistics` captures each adapted matmul's input and output gradient in batched
backward passes (a torch function mode), which gives each adapter's A and B maps as EK-FAC
layers and the exact per-example gradients without vmap; :func:`lora_ekfac` is the EK-FAC over
them.

Scores: :func:`recall_at_k` per item = the share of its source documents among the top
``max(k, |sources|)`` documents (ties at the cut-off share the remaining places: the expected
recall under a random order of tied documents, so a constant score earns the random rate, not
the luck of the index order); :func:`recall_by_kind` = the mean over the items of each kind with
a 95% percentile-bootstrap interval over items (n = items of that kind).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from interplab.errors import ConfigError, ShapeError, unknown_name
from interplab.eval import stats

# the linear datamodeling score over subset retrainings (outputs from :func:`subset_outputs`):
# the data-attribution track's estimator, one piece of code for both tracks
from interplab.eval.data_attribution import lds as lds
from interplab.methods.registry import register

Tensor = torch.Tensor
IGNORE = -100
KINDS = ("passage", "fact", "style")
K = 10
#: the gradient methods, run through :func:`~interplab.methods.data_attribution.attribute_data`
METHODS = ("trak", "ekfac", "ekfac_lora", "grad_cos", "tracin")
#: fixed settings, chosen before any score was seen (EK-FAC: the empirical Fisher of the
#: sequence loss, the only Fisher the classifier adapter can express). The API's ``ekfac``
#: factors nn.Linear/Conv2d layers only; low-rank adapters registered as bare matrices
#: (:mod:`interplab.models.lora`) land on its diagonal, so ``ekfac_lora`` (:func:`lora_ekfac`)
#: factors each adapter's A and B maps as EK-FAC layers and scores through the same API parts.
METHOD_SETTINGS: dict[str, dict[str, Any]] = {"ekfac": {"fisher": "empirical"}}
BASELINES = ("ngram_overlap", "bm25", "embedding_nn", "loss_membership", "random")
CONTINUATIONS = ("generated", "target")
#: new tokens generated for a style item (its marker, the sign-off, ends a letter; the
#: generation is cut after the marker when it appears): the organism's verification budget
STYLE_NEW_TOKENS = 64
#: checkpoints TracIn and TRAK use (evenly spaced, the last = the final weights): fixed for cost
CHECKPOINTS = 4


# --------------------------------------------------------------------------- losses and queries
def continuation_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-example mean next-token cross-entropy [n] of logits [n, T, V] against labels [n, T]
    (``labels[:, t]`` is the token expected after position t; -100 = ignored). An example with
    no labelled position has loss 0."""
    if logits.ndim != 3 or labels.shape != logits.shape[:2]:
        raise ShapeError(
            f"continuation_loss needs logits [n, T, V] and labels [n, T], got "
            f"{tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    keep = labels != IGNORE
    logp = logits.log_softmax(-1)
    picked = logp.gather(-1, labels.clamp_min(0)[..., None])[..., 0]
    return -(picked * keep).sum(-1) / keep.sum(-1).clamp_min(1)


def doc_labels(tokens: Tensor, mask: Tensor) -> Tensor:
    """Next-token labels [n, T] of right-padded documents: ``tokens[:, t + 1]`` where both
    positions are real tokens, else -100 (the fine-tune's loss: every real next token)."""
    if tokens.shape != mask.shape or tokens.ndim != 2:
        raise ShapeError(
            f"tokens and mask must both be [n, T], got {tuple(tokens.shape)}, {tuple(mask.shape)}"
        )
    labels = torch.full_like(tokens, IGNORE)
    both = mask[:, 1:].bool() & mask[:, :-1].bool()
    labels[:, :-1] = torch.where(both, tokens[:, 1:], torch.full_like(tokens[:, 1:], IGNORE))
    return labels


def prompt_labels(prompt: Sequence[int], continuation: Sequence[int], length: int, pad: int):
    """(tokens [length], labels [length]) of prompt + continuation, right-padded with ``pad``:
    only the continuation's tokens are labelled (each at the position before it)."""
    ids = list(prompt) + list(continuation)
    if not prompt:
        raise ConfigError(
            "a query needs a non-empty prompt (the continuation is predicted from it)"
        )
    if len(ids) > length:
        raise ShapeError(f"prompt + continuation has {len(ids)} tokens, more than {length}")
    tokens = torch.full((length,), pad, dtype=torch.long)
    tokens[: len(ids)] = torch.tensor(ids, dtype=torch.long)
    labels = torch.full((length,), IGNORE, dtype=torch.long)
    p, c = len(prompt), len(continuation)
    if c:
        labels[p - 1 : p + c - 1] = torch.tensor(list(continuation), dtype=torch.long)
    return tokens, labels


@dataclass(frozen=True)
class Queries:
    """The attributed outputs, one per planted item (see the module docstring)."""

    keys: tuple[str, ...]
    kinds: tuple[str, ...]
    sources: tuple[tuple[int, ...], ...]
    prompts: tuple[str, ...]
    outputs: tuple[str, ...]  # the continuation attributed (generated or target text)
    matches_target: tuple[bool, ...]  # the output starts with the target (style: contains it)
    tokens: Tensor  # [n, T]
    labels: Tensor  # [n, T]
    continuation: str
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def texts(self) -> list[str]:
        """What the text baselines compare with the documents: prompt and output together (the
        whole exchange a lawyer would hold)."""
        return [f"{p} {o}".strip() for p, o in zip(self.prompts, self.outputs)]


def _pad_id(tokenizer: Any) -> int:
    for name in ("pad_id", "eos_id"):
        v = getattr(tokenizer, name, None)
        if isinstance(v, int) and v >= 0:
            return v
    return 0


def _strip_prompt(prompt: str, out: str) -> str:
    return out[len(prompt) :] if out.startswith(prompt) else out


def build_queries(
    organism: Any, continuation: str = "generated", *, length: int | None = None
) -> Queries:
    """One query per planted item of ``organism.corpus`` (see the module docstring); ``length``:
    the padded token length (default the longest query)."""
    if continuation not in CONTINUATIONS:
        raise unknown_name("continuation", continuation, CONTINUATIONS)
    tok = organism.tokenizer
    items = list(organism.corpus.items)
    if not items:
        raise ConfigError("the organism's corpus has no planted items to attribute")
    pairs, outputs, matches, notes = [], [], [], []
    for item in items:
        target_ids = tok.encode(item.target)
        out, use_target = item.target, True
        if continuation == "generated":
            budget = STYLE_NEW_TOKENS if item.kind == "style" else len(target_ids)
            gen = _strip_prompt(item.prompt, organism.generate(item.prompt, max_new_tokens=budget))
            marker = item.target.strip()
            if item.kind == "style" and marker and marker in gen:  # the letter up to its marker
                gen = gen[: gen.index(marker) + len(marker)]
            if gen.strip():
                out, use_target = gen, False
            else:
                notes.append(f"{item.key}: empty generation, the target is attributed instead")
        found = item.target.strip() in out if item.kind == "style" else None
        matches.append(found if found is not None else out.strip().startswith(item.target.strip()))
        outputs.append(out)
        pairs.append((tok.encode(item.prompt), target_ids if use_target else tok.encode(out)))
    longest = max(len(p) + len(c) for p, c in pairs)
    length = longest if length is None else length
    pad = _pad_id(tok)
    rows = [prompt_labels(p, c, length, pad) for p, c in pairs]
    return Queries(
        keys=tuple(i.key for i in items),
        kinds=tuple(i.kind for i in items),
        sources=tuple(tuple(int(s) for s in i.sources) for i in items),
        prompts=tuple(i.prompt for i in items),
        outputs=tuple(outputs),
        matches_target=tuple(matches),
        tokens=torch.stack([r[0] for r in rows]),
        labels=torch.stack([r[1] for r in rows]),
        continuation=continuation,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- the model adapter
class SequenceScorer(torch.nn.Module):
    """A language model (tokens [n, T] -> logits [n, T, V]) as the classifier the attribution API
    takes: input ``[n, 2, T]`` = (tokens, labels), output ``[n, 2]`` = (0, -continuation loss).
    Its parameters are the language model's (names prefixed ``lm.``)."""

    def __init__(self, lm: torch.nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, x: Tensor) -> Tensor:
        loss = continuation_loss(self.lm(x[:, 0]), x[:, 1])
        return torch.stack([torch.zeros_like(loss), -loss], -1)


class ResidualScorer(torch.nn.Module):
    """:class:`SequenceScorer` from the residual stream entering the first adapted block: input
    ``[n, T, d + 1]`` = (residual, labels as floats), output ``[n, 2]`` = (0, -loss). The blocks
    below the adapters are frozen and cannot change, so their output is computed once per
    sequence (:func:`residual_inputs`) instead of in every gradient pass; the language model must
    accept ``PartialRun(resid, start)`` (interplab's Llama)."""

    def __init__(self, lm: torch.nn.Module, start: int):
        super().__init__()
        self.lm = lm
        self.start = start

    def forward(self, x: Tensor) -> Tensor:
        from interplab.models.pretrained.llama import PartialRun

        labels = x[..., -1].round().long()
        loss = continuation_loss(self.lm(PartialRun(x[..., :-1], self.start)), labels)
        return torch.stack([torch.zeros_like(loss), -loss], -1)


def scorer_loss(z: Tensor, y: Tensor) -> Tensor:
    """The training loss [n] in :class:`SequenceScorer`'s output: the sequence loss itself."""
    return -z[:, 1]


def pack(tokens: Tensor, labels: Tensor, length: int) -> Tensor:
    """[n, 2, length] = (tokens, labels), right-padded (pad token 0, label -100)."""
    n, t = tokens.shape
    if t > length:
        raise ShapeError(f"sequences of {t} tokens do not fit {length}")
    out = torch.zeros(n, 2, length, dtype=torch.long)
    out[:, 1] = IGNORE
    out[:, 0, :t] = tokens
    out[:, 1, :t] = labels
    return out


def uses_residual(organism: Any) -> bool:
    """Whether the organism offers the residual entering its adapters (then
    :class:`ResidualScorer` runs only the adapted blocks)."""
    return hasattr(organism, "residual_entering_adapters") and hasattr(
        organism, "first_adapted_layer"
    )


def scorer(organism: Any) -> torch.nn.Module:
    """The classifier adapter of the organism's model (:class:`ResidualScorer` when the
    organism offers the residual entering its adapters, else :class:`SequenceScorer`)."""
    if uses_residual(organism):
        return ResidualScorer(organism.model, int(organism.first_adapted_layer))
    return SequenceScorer(organism.model)


def _residual_rows(organism: Any, packed: Tensor, batch_size: int = 16) -> Tensor:
    parts = []
    for s in range(0, len(packed), batch_size):
        rows = packed[s : s + batch_size]
        resid = organism.residual_entering_adapters(rows[:, 0]).detach()
        parts.append(torch.cat([resid, rows[:, 1, :, None].to(resid.dtype)], -1))
    return torch.cat(parts)


def attribution_data(
    organism: Any, queries: Queries
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """(train, test) pairs for ``attribute_data`` on :func:`scorer`: the documents (with the
    fine-tune's loss) and the queries, packed to one common length, labels all 1. Packed as
    ``[n, 2, T]`` token ids and labels, or, for :class:`ResidualScorer`, ``[n, T, d + 1]``."""
    docs, mask = organism.doc_tokens, organism.doc_mask
    length = max(docs.shape[1], queries.tokens.shape[1])
    x_train = pack(docs.long(), doc_labels(docs.long(), mask), length)
    x_test = pack(queries.tokens, queries.labels, length)
    if uses_residual(organism):
        x_train, x_test = _residual_rows(organism, x_train), _residual_rows(organism, x_test)

    def ones(n: int) -> Tensor:
        return torch.ones(n, dtype=torch.long)

    return (x_train, ones(len(x_train))), (x_test, ones(len(x_test)))


def scorer_checkpoints(organism: Any, n: int | None = None) -> list[dict[str, Tensor]]:
    """The organism's adapter checkpoints keyed as the scorer's parameters: ``n`` of them evenly
    spaced along training and ending at the final weights (all when None or fewer exist)."""
    ckpts = list(organism.checkpoints)
    if not ckpts:
        raise ConfigError("the organism has no checkpoints (TracIn and TRAK sum over them)")
    if n is not None and n < len(ckpts):
        if n < 1:
            raise ConfigError(f"the number of checkpoints must be ≥ 1, got {n}")
        last = len(ckpts) - 1
        picks = sorted({round(last * (i + 1) / n) for i in range(n)})
        ckpts = [ckpts[i] for i in picks]
    return [{f"lm.{k}": v for k, v in sd.items()} for sd in ckpts]


# --------------------------------------------------------------------------- cost measurement
def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@contextlib.contextmanager
def peak_memory(interval: float = 0.02) -> Iterator[dict[str, float]]:
    """Samples the process's resident memory while the block runs; ``out["peak_mb"]`` = the peak
    above the level at entry (MiB; 0 where /proc is not readable). A sampled peak: short spikes
    between samples can be missed."""
    out: dict[str, float] = {"peak_mb": 0.0}
    start = _rss_bytes()
    peak = [start]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], _rss_bytes())
        out["peak_mb"] = max(0.0, (peak[0] - start) / 2**20)


# --------------------------------------------------------------------------- EK-FAC over LoRA
class _MatmulCapture(torch.overrides.TorchFunctionMode):
    """Records (input, output) of every ``x @ W`` whose ``W`` is the output of one of the
    watched adapter parametrizations (the adapted weight ``W + s A B``)."""

    def __init__(self, weights: dict[int, int]):
        super().__init__()
        self.weights = weights
        self.calls: list[tuple[int, Tensor, Tensor]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if (
            getattr(func, "__name__", "") in ("matmul", "__matmul__")
            and len(args) == 2
            and id(args[1]) in self.weights
        ):
            self.calls.append((self.weights[id(args[1])], args[0].detach(), out))
        return out


def _adapters(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The adapter parametrizations of ``module``: submodules with ``lora_A`` [d_in, r],
    ``lora_B`` [r, d_out] and ``scale`` (the update ``scale * A @ B``)."""
    return [
        (name, m)
        for name, m in module.named_modules()
        if isinstance(getattr(m, "lora_A", None), torch.nn.Parameter)
        and isinstance(getattr(m, "lora_B", None), torch.nn.Parameter)
        and hasattr(m, "scale")
    ]


def _lora_layer_grads(
    module: torch.nn.Module, adapters: list, x: Tensor, y: Tensor
) -> list[list[tuple[Tensor, Tensor]]]:
    """Per adapter, per call: (activations, output gradients) of its A map and of its B map,
    ``([n, P, d_in], [n, P, r])`` and ``([n, P, r], [n, P, d_out])``: A's gradient is
    ``sum_p x_p^T (s g_p B^T)`` and B's is ``sum_p (s x_p A)^T g_p`` for the adapted matmul's
    input x and output gradient g."""
    seen: dict[int, int] = {}
    keep: list[Tensor] = []

    def hook(k: int):
        def fn(_m, _args, out):
            seen[id(out)] = k
            keep.append(out)

        return fn

    handles = [m.register_forward_hook(hook(k)) for k, (_, m) in enumerate(adapters)]
    try:
        with _MatmulCapture(seen) as cap:
            z = module(x)
        loss = scorer_loss(z, y).sum()
        outs = [o for _, _, o in cap.calls]
        grads = torch.autograd.grad(loss, outs, allow_unused=True) if outs else ()
    finally:
        for h in handles:
            h.remove()
    per: list[list[tuple[Tensor, Tensor]]] = [[] for _ in adapters]
    for (k, xin, out), g in zip(cap.calls, grads):
        m = adapters[k][1]
        a_w, b_w, s = m.lora_A.detach(), m.lora_B.detach(), float(m.scale)
        g = torch.zeros_like(out) if g is None else g.detach()
        n = len(x)
        xin, g = xin.reshape(n, -1, xin.shape[-1]), g.reshape(n, -1, g.shape[-1])
        per[k].append((xin, s * g @ b_w.T))  # the A map
        per[k].append((s * xin @ a_w, g))  # the B map
    return per


def _lora_blocks(module: torch.nn.Module, spec: Any, n_params: int) -> tuple[list, list[Tensor]]:
    """The adapters and, per adapter map (A then B of each), its indices [in, out] in theta.
    ConfigError when a trainable parameter is not an adapter's A or B."""
    adapters = _adapters(module)
    offsets = spec.offsets()
    blocks = []
    for name, m in adapters:
        for part in ("lora_A", "lora_B"):
            key = f"{name}.{part}"
            if key not in offsets:
                raise ConfigError(f"{key} is not a trainable parameter of the scorer")
            d_in, d_out = getattr(m, part).shape
            blocks.append(offsets[key] + torch.arange(d_in * d_out).view(d_in, d_out))
    covered = sum(b.numel() for b in blocks)
    if covered != n_params:
        raise ConfigError(
            f"the adapters cover {covered} of {n_params} trainable parameters: every trainable "
            "parameter must be an adapter's lora_A or lora_B"
        )
    return adapters, blocks


def lora_statistics(
    module: torch.nn.Module, spec: Any, theta: Tensor, x: Tensor, y: Tensor, batch_size: int
) -> tuple[Tensor, list[Tensor], list[Tensor], list[Tensor]]:
    """One pass of batched backward passes over (x, y): the per-example loss gradients
    [n, params] (theta's layout; exact: each adapter map's gradient is the sum over positions
    of activation x output-gradient outer products) and, per adapter map, the activation and
    output-gradient covariances summed over positions and examples, with the indices."""
    adapters, blocks = _lora_blocks(module, spec, len(theta))
    dtype = theta.dtype
    flat = torch.zeros(len(x), len(theta), dtype=dtype)
    a_cov = [torch.zeros(b.shape[0], b.shape[0], dtype=dtype) for b in blocks]
    s_cov = [torch.zeros(b.shape[1], b.shape[1], dtype=dtype) for b in blocks]
    for start in range(0, len(x), batch_size):
        rows = slice(start, min(start + batch_size, len(x)))
        per = _lora_layer_grads(module, adapters, x[rows], y[rows])
        j = 0
        for calls in per:
            for part in range(2):  # the A map, then the B map
                g = torch.zeros(rows.stop - rows.start, *blocks[j].shape, dtype=dtype)
                for act, out_g in calls[part::2]:
                    a_cov[j] += torch.einsum("npi,npj->ij", act, act)
                    s_cov[j] += torch.einsum("npo,npq->oq", out_g, out_g)
                    g += torch.einsum("npi,npo->nio", act, out_g)
                flat[rows, blocks[j].flatten()] = g.reshape(len(g), -1)
                j += 1
    return flat, blocks, a_cov, s_cov


def lora_ekfac(
    blocks: list[Tensor],
    grads: Tensor,
    a_cov: list[Tensor],
    s_cov: list[Tensor],
    damping: float,
) -> Callable[[Tensor], Tensor]:
    """EK-FAC preconditioner ``(G + damping)^-1`` over the adapters' A and B maps, each one an
    EK-FAC layer (George et al. 2018): the eigenbases of the activation and output-gradient
    covariances (empirical Fisher of the training loss), and the eigenvalues corrected with the
    per-example gradients ``grads`` [n, params] in that basis (:func:`lora_statistics`)."""
    n = len(grads)
    factors = []
    for index, ac, sc in zip(blocks, a_cov, s_cov):
        qa = torch.linalg.eigh(ac / n)[1]
        qs = torch.linalg.eigh(sc / n)[1]
        lam = (qa.T @ grads[:, index] @ qs).pow(2).mean(0)
        factors.append((index, qa, qs, 1.0 / (lam + damping)))

    def apply(v: Tensor) -> Tensor:
        out = torch.empty_like(v)
        for index, qa, qs, inv in factors:
            rot = qa.T @ v[:, index] @ qs
            out[:, index] = qa @ (rot * inv) @ qs.T
        return out

    return apply


def _ekfac_lora_scores(module: torch.nn.Module, train, test, batch_size: int) -> Tensor:
    """Scores ``∇loss_query · P · ∇loss_doc`` with P the LoRA EK-FAC (the API's damping), every
    gradient from :func:`lora_statistics` (batched backward passes, no vmap)."""
    from interplab.methods.data_attribution.influence import DAMPING
    from interplab.models.module_classifier import evaluating, from_module

    with evaluating(module):
        model = from_module(module, train[0], loss=scorer_loss)
        g_docs, blocks, a_cov, s_cov = lora_statistics(
            module, model.spec, model.theta, train[0], train[1], batch_size
        )
        g_test = lora_statistics(module, model.spec, model.theta, test[0], test[1], batch_size)[0]
    precondition = lora_ekfac(blocks, g_docs, a_cov, s_cov, DAMPING)
    return precondition(g_test) @ g_docs.T


#: the registry family of :func:`ekfac_lora` (the API's data_attribution family is closed to it:
#: its tests run every member on small classifiers, which carry no adapters)
LORA_FAMILY = "lora_attribution"


@register(LORA_FAMILY, "ekfac_lora", kind="method", cost_unit="passes", metric="recall_at_10")
def ekfac_lora(
    module: torch.nn.Module,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    *,
    seed: int = 0,
    batch_size: int = 8,
) -> Any:
    """EK-FAC influence over each LoRA adapter's A and B maps (the data_attribution call shape:
    a scorer module, train and test pairs; returns a DataAttribution)."""
    from interplab.methods.base import Cost
    from interplab.methods.data_attribution.methods import DataAttribution

    start = time.perf_counter()
    scores = _ekfac_lora_scores(module, train, test, batch_size)
    passes = -(-len(train[0]) // batch_size) + -(-len(test[0]) // batch_size)
    return DataAttribution(
        "ekfac_lora",
        scores,
        None,
        cost=Cost(forward=passes, backward=passes),
        seconds=time.perf_counter() - start,
    )


@dataclass
class MethodRun:
    """One method's scores [n_queries, n_docs] and what they cost."""

    method: str
    scores: Tensor
    seconds: float
    n_queries: int
    peak_mb: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds_per_query(self) -> float:
        return self.seconds / max(1, self.n_queries)


def run_method(
    organism: Any,
    queries: Queries,
    method: str,
    *,
    seed: int = 0,
    batch_size: int = 8,
    checkpoints: int | None = CHECKPOINTS,
    progress: bool = False,
) -> MethodRun:
    """Scores of one gradient method (:data:`METHODS`) through ``attribute_data`` on
    :func:`scorer` (trak and tracin over ``checkpoints`` of the organism's checkpoints, evenly
    spaced and ending at the final weights; ekfac and grad_cos at the final weights);
    ``ekfac_lora``: :func:`lora_ekfac` (the API's damping; gradients from batched backward
    passes, :func:`lora_statistics`)."""
    from interplab.methods.data_attribution import attribute_data

    if method not in METHODS:
        raise unknown_name("copyright attribution method", method, METHODS)
    settings = dict(METHOD_SETTINGS.get(method, {}))
    ckpts = scorer_checkpoints(organism, checkpoints) if method in ("trak", "tracin") else None
    start = time.perf_counter()
    with peak_memory() as mem:
        train, test = attribution_data(organism, queries)
        if method == "ekfac_lora":
            scores = ekfac_lora(scorer(organism), train, test, batch_size=batch_size).scores
        else:
            scores = attribute_data(
                scorer(organism),
                train,
                test,
                method=method,
                loss=scorer_loss,
                checkpoints=ckpts,
                seed=seed,
                batch_size=batch_size,
                progress=progress,
                **settings,
            ).scores
    seconds = time.perf_counter() - start
    if ckpts is not None:
        settings["checkpoints"] = len(ckpts)
    return MethodRun(method, scores.double(), seconds, len(queries), mem["peak_mb"], settings)


def doc_losses(organism: Any, batch_size: int = 8) -> tuple[Tensor, Tensor]:
    """Each document's fine-tune loss under the base model (adapters off) and the fine-tuned
    one: ([n_docs], [n_docs])."""
    tokens, mask = organism.doc_tokens, organism.doc_mask

    def losses() -> Tensor:
        with torch.no_grad():
            return torch.cat(
                [
                    organism.sequence_loss(tokens[s : s + batch_size], mask[s : s + batch_size])
                    for s in range(0, len(tokens), batch_size)
                ]
            ).detach()

    tuned = losses()
    with organism.adapters_off():
        base = losses()
    return base, tuned


def run_baseline(
    organism: Any,
    queries: Queries,
    name: str,
    *,
    seed: int = 0,
    embed: Callable[[Sequence[str]], Tensor] | None = None,
    losses: tuple[Tensor, Tensor] | None = None,
) -> MethodRun:
    """Scores of one text baseline (:data:`BASELINES`) on the corpus documents and the queries'
    texts (prompt + output). ``losses``: precomputed :func:`doc_losses` for loss_membership."""
    from interplab.methods.data_attribution import text_baselines as tb

    if name not in BASELINES:
        raise unknown_name("copyright baseline", name, BASELINES)
    docs, texts = list(organism.corpus.docs), queries.texts
    kwargs: dict[str, Any] = {"seed": seed}
    start = time.perf_counter()
    with peak_memory() as mem:
        if name == "embedding_nn" and embed is not None:
            kwargs["embed"] = embed
        if name == "loss_membership":
            kwargs["doc_losses"] = losses if losses is not None else doc_losses(organism)
        from interplab.methods import registry

        res = registry.get(tb.FAMILY, name).fn(docs, texts, **kwargs)
    seconds = time.perf_counter() - start
    return MethodRun(name, res.scores.double(), seconds, len(queries), mem["peak_mb"])


def seconds_per_doc_gradient(
    organism: Any, queries: Queries, batch_size: int = 8, how: str = "vmap"
) -> float:
    """Seconds of one document's loss gradient over the adapters (one batch of per-example
    gradients at the final weights, divided by its size): the cost a gradient method pays per
    document and checkpoint, amortised over every query it answers. ``how``: "vmap" (the
    attribution API's per-example gradients) or "capture" (:func:`lora_statistics`: batched
    backward passes, the adapters' factors included)."""
    from interplab.methods.data_attribution.gradients import loss_grads
    from interplab.models.module_classifier import evaluating, from_module

    if how not in ("vmap", "capture"):
        raise unknown_name("gradient path", how, ("vmap", "capture"))
    train, _ = attribution_data(organism, queries)
    x, y = train[0][:batch_size], train[1][:batch_size]
    module = scorer(organism)
    with evaluating(module):
        model = from_module(module, x, loss=scorer_loss)
        start = time.perf_counter()
        if how == "vmap":
            loss_grads(model.spec, model.theta, x, y)
        else:
            lora_statistics(module, model.spec, model.theta, x, y, batch_size)
        return (time.perf_counter() - start) / len(x)


# --------------------------------------------------------------------------- scores
def recall_at_k(scores: Tensor, sources: Sequence[Sequence[int]], k: int = K) -> Tensor:
    """[n_queries] recall of each query's sources among its top ``max(k, |sources|)`` documents;
    documents tied at the cut-off share its remaining places equally (expected recall under a
    random order of ties). Non-finite scores rank last."""
    if scores.ndim != 2 or len(scores) != len(sources):
        raise ShapeError(
            f"scores must be [n_queries, n_docs] with one row per query ({len(sources)}), "
            f"got {tuple(scores.shape)}"
        )
    if k < 1:
        raise ConfigError(f"k must be ≥ 1, got {k}")
    s = scores.double().nan_to_num(nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf)
    n_docs = s.shape[1]
    out = torch.empty(len(s), dtype=torch.float64)
    for q, src in enumerate(sources):
        if not src:
            raise ConfigError(f"query {q} has no source documents")
        if min(src) < 0 or max(src) >= n_docs:
            raise ConfigError(f"query {q}'s sources {tuple(src)} are outside 0..{n_docs - 1}")
        kq = min(max(k, len(src)), n_docs)
        row = s[q]
        cut = row.sort(descending=True).values[kq - 1]
        above, tied = row > cut, row == cut
        place = above.double() + tied.double() * (kq - int(above.sum())) / int(tied.sum())
        out[q] = place[list(src)].sum() / len(src)
    return out


def recall_by_kind(
    scores: Tensor, queries: Queries, k: int = K, seed: int = 0
) -> dict[str, stats.Estimate]:
    """Per kind present: the mean recall@k over its items with a 95% bootstrap interval over
    items (n = items of the kind)."""
    per_item = recall_at_k(scores, queries.sources, k)
    out = {}
    for kind in KINDS:
        idx = [i for i, kd in enumerate(queries.kinds) if kd == kind]
        if idx:
            out[kind] = stats.bootstrap_mean(per_item[idx], seed=seed)
    return out


def query_losses(organism: Any, queries: Queries, batch_size: int = 8) -> Tensor:
    """Each query's continuation loss [n_queries] under the organism's current adapters."""
    out = []
    with torch.no_grad():
        for s in range(0, len(queries), batch_size):
            logits = organism.model(queries.tokens[s : s + batch_size])
            out.append(continuation_loss(logits, queries.labels[s : s + batch_size]))
    return torch.cat(out)


def subset_outputs(
    organism: Any, queries: Queries, adapters: Sequence[Mapping[str, Tensor]]
) -> Tensor:
    """The attributed output of every query under each subset retraining's adapters
    [n_subsets, n_queries]: minus the continuation loss (higher = the subset taught the model
    the query's text), the sign of the methods' scores. The organism's adapters are restored."""
    from interplab.models import lora

    current = lora.adapter_state(organism.model)
    try:
        rows = []
        for state in adapters:
            lora.load_adapter_state(organism.model, dict(state))
            rows.append(-query_losses(organism, queries))
    finally:
        lora.load_adapter_state(organism.model, current)
    return torch.stack(rows)


def top_overlap(a: Tensor, b: Tensor, k: int = K) -> float:
    """Mean over rows of |top-k(a) ∩ top-k(b)| / k."""
    k = min(k, a.shape[1])
    ta, tb = a.topk(k, dim=1).indices, b.topk(k, dim=1).indices
    return float(sum(len(set(x.tolist()) & set(y.tolist())) for x, y in zip(ta, tb)) / (k * len(a)))


def spearman(a: Tensor, b: Tensor) -> float:
    """Mean over rows of the Spearman correlation of a and b (rows [n_docs])."""
    from interplab.eval.data_attribution import spearman_rows

    return float(spearman_rows(a.double(), b.double())[0].nanmean())


def summary(run: MethodRun, queries: Queries, k: int = K, seed: int = 0) -> dict[str, Any]:
    """A JSON-ready summary of one method's run: recall@k per kind, seconds, memory."""
    est = recall_by_kind(run.scores, queries, k, seed)
    per_item = recall_at_k(run.scores, queries.sources, k)
    return {
        "method": run.method,
        "recall": {kind: e.as_dict() for kind, e in est.items()},
        "per_item": {key: float(r) for key, r in zip(queries.keys, per_item)},
        "seconds": run.seconds,
        "seconds_per_query": run.seconds_per_query,
        "peak_mb": run.peak_mb,
        "settings": run.settings,
    }


def table(summaries: Mapping[str, Mapping[str, Any]]) -> str:
    """A plain-text table (method × kind) of :func:`summary` outputs."""
    lines = [f"{'method':18s} " + " ".join(f"{k:24s}" for k in KINDS) + " s/query"]
    for name, s in summaries.items():
        cells = []
        for kind in KINDS:
            e = s["recall"].get(kind)
            cells.append(
                f"{e['value']:.2f} [{e['low']:.2f}, {e['high']:.2f}] n={e['n']}".ljust(24)
                if e
                else "–".ljust(24)
            )
        lines.append(f"{name:18s} " + " ".join(cells) + f" {s['seconds_per_query']:.3g}")
    return "\n".join(lines)
