"""CompiledModel: a HookedTransformer that knows its program, vocabulary and ground truth.

Saved with :mod:`interplab.models.io` as a model directory: ``model.safetensors`` (the state
dict) and ``model.json`` (config, plus ``extra.compiled``: ground truth and output values), so
any native-model loader reads it as a plain HookedTransformer. No pickle; atomic writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from interplab.compile import rasp
from interplab.compile.ground_truth import GroundTruth, decode_json_value, encode_json_value
from interplab.errors import ShapeError, WeightsError
from interplab.models.config import TransformerConfig
from interplab.models.io import load_model, save_model
from interplab.models.transformer import HookedTransformer

COMPILED_FORMAT = "interplab.compiled"


class CompiledModel(HookedTransformer):
    """A compiled RASP program: a regular HookedModel plus ``ground_truth``, ``encode``/``decode``.

    Inputs to ``run``/``run_with_cache`` are token ids [batch, pos] from :meth:`encode`
    (BOS at position 0, so ``pos = len(input) + 1``)."""

    def __init__(self, cfg: TransformerConfig, state_dict: dict[str, torch.Tensor],
                 ground_truth: GroundTruth, output_values: tuple[Any, ...] | None,
                 program: rasp.SOp | None = None, name: str | None = None):
        super().__init__(cfg, name=name or ground_truth.program)
        self.model.load_state_dict(state_dict)
        self.model.eval()
        self.ground_truth = ground_truth
        self.output_values = output_values
        self.program = program
        self._token_ids = {_hashable(v): i + 1 for i, v in enumerate(ground_truth.vocab)}

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
            raise ShapeError(f"encode takes inputs of one length (compiled attention is "
                             f"bidirectional, so padding would be read); got lengths "
                             f"{sorted(lengths)}. Group inputs by length first.")
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
        return [[self.output_values[int(i)] if float(b) > 0.5 else None for b, i in zip(br, ir)]
                for br, ir in zip(best, idx)]

    def __call__(self, inputs: Sequence[Sequence[Any]]) -> list[list[Any]]:
        """Run on raw input values and decode: the compiled program's outputs."""
        with torch.no_grad():
            return self.decode(self.run(self.encode(inputs)))

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def _hashable(value: Any) -> Any:
    return (type(value).__name__, value)


def save_compiled(directory: str | Path, model: CompiledModel) -> Path:
    """Write ``model.safetensors`` and the ``model.json`` sidecar into ``directory`` (atomically,
    via :func:`interplab.models.io.save_model`; the ground truth goes in the sidecar's "extra")."""
    extra = {"compiled": {
        "format": COMPILED_FORMAT, "version": 1,
        "output_values": None if model.output_values is None
        else [encode_json_value(v) for v in model.output_values],
        "ground_truth": model.ground_truth.to_json()}}
    return save_model(directory, model, extra=extra)


def load_compiled(directory: str | Path) -> CompiledModel:
    """Load a model written by :func:`save_compiled` (the program's code is not stored; its
    ground truth, vocabulary and output values are)."""
    hooked, extra = load_model(directory)
    data = extra.get("compiled")
    if not isinstance(data, dict) or data.get("format") != COMPILED_FORMAT:
        raise WeightsError(f"{directory} holds a model but not a compiled RASP program (its sidecar "
                           "has no compiled ground truth); write one with `interplab compile "
                           "PROGRAM --out DIR`")
    try:
        truth = GroundTruth.from_json(data["ground_truth"])
    except (ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"cannot read the ground truth in {directory}: {exc}; recompile it") from None
    out_values = data.get("output_values")
    out = None if out_values is None else tuple(decode_json_value(v) for v in out_values)
    return CompiledModel(hooked.cfg, hooked.model.state_dict(), truth, out)
