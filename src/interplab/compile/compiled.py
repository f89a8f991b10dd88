"""CompiledModel: a HookedTransformer that knows its program, vocabulary and ground truth.

Saved with :mod:`interplab.models.io` as a model directory: ``model.safetensors`` (the state
dict) and ``model.json`` (config, plus ``extra.compiled``: ground truth and output values), so
any native-model loader reads it as a plain HookedTransformer. No pickle; atomic writes.

Calling a compiled model (``model(["a", "b"])`` or ``model([["a", "b"], ["c"]])``) runs with one
torch thread when the work is small (:data:`ONE_THREAD_BELOW` multiply-adds): these models are
tiny, and torch's default thread count only adds synchronisation (up to two orders of magnitude
slower on a busy 2-core machine; ``benchmarks/compile_speed.py`` measures it). Set
``model.threads`` to an int to force a count, or to 0 to leave torch's setting alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from interplab.compile import rasp
from interplab.compile.ground_truth import GroundTruth, decode_json_value, encode_json_value
from interplab.errors import ShapeError, WeightsError
from interplab.models.config import TransformerConfig
from interplab.models.io import load_model, save_model
from interplab.models.transformer import HookedTransformer

COMPILED_FORMAT = "interplab.compiled"
#: a call whose parameters x positions is below this runs with one torch thread
ONE_THREAD_BELOW = 50_000_000
ACCEPTED_FORMS = (
    "one sequence of vocabulary values: model(['a', 'b']) -> one output list; "
    "a batch of sequences (lengths may differ): model([['a', 'b'], ['c']]) -> one "
    "output list per sequence"
)


class CompiledModel(HookedTransformer):
    """A compiled RASP program: a regular HookedModel plus ``ground_truth``, ``encode``/``decode``.

    Inputs to ``run``/``run_with_cache`` are token ids [batch, pos] from :meth:`encode`
    (BOS at position 0, so ``pos = len(input) + 1``)."""

    def __init__(
        self,
        cfg: TransformerConfig,
        state_dict: dict[str, torch.Tensor],
        ground_truth: GroundTruth,
        output_values: tuple[Any, ...] | None,
        program: rasp.SOp | None = None,
        name: str | None = None,
    ):
        super().__init__(cfg, name=name or ground_truth.program)
        self.model.load_state_dict(state_dict)
        self.model.eval()
        self.ground_truth = ground_truth
        self.output_values = output_values
        self.program = program
        self._token_ids = {_hashable(v): i + 1 for i, v in enumerate(ground_truth.vocab)}
        #: torch threads for calls: None picks one thread for small work, 0 leaves torch's
        #: setting, n > 0 uses n
        self.threads: int | None = None

    @property
    def vocab(self) -> tuple[Any, ...]:
        return self.ground_truth.vocab

    @property
    def max_len(self) -> int:
        return self.ground_truth.max_len

    @property
    def bos_id(self) -> int:
        return self.ground_truth.bos_id

    @property
    def numerical_output(self) -> bool:
        return self.output_values is None

    def encode(self, inputs: Sequence[Sequence[Any]]) -> torch.Tensor:
        """Token ids [batch, 1 + len] (int64) for equal-length inputs, BOS first."""
        inputs = [list(x) for x in inputs]
        lengths = {len(x) for x in inputs}
        if len(lengths) > 1:
            raise ShapeError(
                f"encode takes inputs of one length (a compiled model has no "
                f"padding mask); got lengths {sorted(lengths)}. Group inputs by "
                "length first, or call the model on raw values: model(batch) "
                "groups them for you."
            )
        problems = []
        rows = []
        for x in inputs:
            if len(x) > self.max_len:
                problems.append(f"input of length {len(x)} exceeds max_len={self.max_len}")
            row = [self.bos_id]
            for v in x:
                tid = self._token_ids.get(_hashable(v))
                if tid is None:
                    problems.append(f"{v!r} is not in the vocabulary {list(self.vocab)}")
                    tid = 0
                row.append(tid)
            rows.append(row)
        if problems:
            raise ShapeError("cannot encode inputs: " + "; ".join(sorted(set(problems))[:5]))
        return torch.tensor(rows, dtype=torch.long)

    def decode(self, logits: torch.Tensor) -> list[list[Any]]:
        """Output values per input position (BOS dropped) from logits [batch, pos, vocab_out].

        Categorical: the value of the largest logit, or None when no logit exceeds 0.5.
        Numerical: the single logit as a float."""
        logits = logits.detach().to(torch.float64)[:, 1:]
        if self.output_values is None:
            return [[float(x) for x in row[:, 0]] for row in logits]
        best, idx = logits.max(dim=-1)
        return [
            [self.output_values[int(i)] if float(b) > 0.5 else None for b, i in zip(br, ir)]
            for br, ir in zip(best, idx)
        ]

    # decodes to values, unlike HookedModel's call (a tensor): run() keeps that contract
    def __call__(self, inputs: Sequence[Any]) -> list[Any]:  # type: ignore[override]
        """Run on raw input values and decode: the compiled program's outputs.

        ``inputs`` is one sequence of vocabulary values (``["a", "b"]`` -> one output list) or a
        batch of sequences (``[["a", "b"], ["c"]]`` -> one output list each, in order; inputs of
        different lengths are run in groups of one length). Anything else raises ShapeError
        listing these forms."""
        single, batch = self._as_batch(inputs)
        outputs: list[Any] = [None] * len(batch)
        groups: dict[int, list[int]] = {}
        for i, x in enumerate(batch):
            groups.setdefault(len(x), []).append(i)
        with self.thread_setting(sum(len(x) + 1 for x in batch)), torch.no_grad():
            for idx in groups.values():
                decoded = self.decode(self.run(self.encode([batch[i] for i in idx])))
                for i, out in zip(idx, decoded):
                    outputs[i] = out
        return outputs[0] if single else outputs

    def _as_batch(self, inputs: Any) -> tuple[bool, list[list[Any]]]:
        """(is one sequence, the inputs as a batch of lists)."""

        def fail(why: str) -> ShapeError:
            return ShapeError(
                f"cannot run {self.name!r} on {_short(inputs)}: {why}. Accepted: "
                f"{ACCEPTED_FORMS}; the vocabulary is {list(self.vocab)}"
            )

        if isinstance(inputs, torch.Tensor):
            raise fail(
                "a tensor; model(...) takes raw values (run token ids from model.encode "
                "with model.run)"
            )
        if isinstance(inputs, (str, bytes)) or not isinstance(inputs, (list, tuple)):
            hint = (
                f" (for its characters as tokens pass list({inputs!r}))"
                if isinstance(inputs, str)
                else ""
            )
            kind = type(inputs).__name__
            raise fail(f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}, not a list{hint}")
        if not inputs:
            return False, []
        if all(self._is_token(v) for v in inputs):
            return True, [list(inputs)]
        if all(isinstance(x, (list, tuple)) for x in inputs):
            bad = [v for x in inputs for v in x if not self._is_token(v)]
            if bad:
                raise fail(f"{bad[0]!r} is not in the vocabulary" + _bos_hint(bad[0]))
            return False, [list(x) for x in inputs]
        bad = next(v for v in inputs if not self._is_token(v))
        why = (
            f"{bad!r} is neither a vocabulary value nor a list of them"
            + (
                " (a string is one token; pass list('...') for its characters)"
                if isinstance(bad, str)
                else ""
            )
            + _bos_hint(bad)
        )
        raise fail(why)

    def _is_token(self, value: Any) -> bool:
        try:
            return _hashable(value) in self._token_ids
        except TypeError:
            return False

    @contextlib.contextmanager
    def thread_setting(self, positions: int) -> Iterator[None]:
        """Torch threads for a call over ``positions`` positions (see ``threads``)."""
        want = self.threads
        if want is None:
            if getattr(self, "_param_count", None) is None:
                self._param_count = self.n_params
            want = 1 if self._param_count * positions < ONE_THREAD_BELOW else 0
        before = torch.get_num_threads()
        if want <= 0 or want == before:
            yield
            return
        torch.set_num_threads(want)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def _hashable(value: Any) -> Any:
    return (type(value).__name__, value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bos_hint(value: Any) -> str:
    if isinstance(value, str) and value.upper() == "BOS":
        return " (interplab adds BOS itself: drop the leading 'BOS' that Tracr's apply needs)"
    return ""


def save_compiled(directory: str | Path, model: CompiledModel) -> Path:
    """Write ``model.safetensors`` and the ``model.json`` sidecar into ``directory`` (atomically,
    via :func:`interplab.models.io.save_model`; the ground truth goes in the sidecar's "extra")."""
    extra = {
        "compiled": {
            "format": COMPILED_FORMAT,
            "version": 1,
            "output_values": None
            if model.output_values is None
            else [encode_json_value(v) for v in model.output_values],
            "ground_truth": model.ground_truth.to_json(),
        }
    }
    return save_model(directory, model, extra=extra)


def load_compiled(directory: str | Path) -> CompiledModel:
    """Load a model written by :func:`save_compiled` (the program's code is not stored; its
    ground truth, vocabulary and output values are)."""
    hooked, extra = load_model(directory)
    data = extra.get("compiled")
    if not isinstance(data, dict) or data.get("format") != COMPILED_FORMAT:
        raise WeightsError(
            f"{directory} holds a model but not a compiled RASP program (its sidecar "
            "has no compiled ground truth); write one with `interplab compile "
            "PROGRAM --out DIR`"
        )
    try:
        truth = GroundTruth.from_json(data["ground_truth"])
    except (ValueError, KeyError, TypeError) as exc:
        raise WeightsError(
            f"cannot read the ground truth in {directory}: {exc}; recompile it"
        ) from None
    out_values = data.get("output_values")
    out = None if out_values is None else tuple(decode_json_value(v) for v in out_values)
    return CompiledModel(hooked.cfg, hooked.model.state_dict(), truth, out)
