"""CompiledModel: a HookedTransformer that knows its program, vocabulary and ground truth.

Saved as a directory: ``weights.safetensors`` (the state dict) and ``compiled.json`` (config,
ground truth, output values). No pickle; files are written to a temp name then renamed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import torch

from interplab.compile import rasp
from interplab.compile.ground_truth import GroundTruth, decode_json_value, encode_json_value
from interplab.errors import ShapeError, WeightsError
from interplab.models.config import TransformerConfig
from interplab.models.transformer import HookedTransformer

WEIGHTS_FILE = "weights.safetensors"
SIDECAR_FILE = "compiled.json"


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
        for p in self.model.parameters():
            p.requires_grad_(False)
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
    """Write ``weights.safetensors`` and ``compiled.json`` into ``directory`` (atomically)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in model.model.state_dict().items()}
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".tmp", delete=False) as tmp:
        tmp_path = tmp.name
    save_file(tensors, tmp_path)
    os.replace(tmp_path, directory / WEIGHTS_FILE)
    sidecar = {"format": "interplab.compiled", "version": 1, "config": model.cfg.to_json(),
               "output_values": None if model.output_values is None
               else [encode_json_value(v) for v in model.output_values],
               "ground_truth": model.ground_truth.to_json()}
    _write_text_atomic(directory / SIDECAR_FILE, json.dumps(sidecar, indent=1))
    return directory


def load_compiled(directory: str | Path) -> CompiledModel:
    """Load a model written by :func:`save_compiled` (the program itself is not stored)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    weights, sidecar = directory / WEIGHTS_FILE, directory / SIDECAR_FILE
    for f in (weights, sidecar):
        if not f.exists():
            raise WeightsError(f"{f} is missing; a compiled model directory holds {WEIGHTS_FILE} "
                               f"and {SIDECAR_FILE}. Write one with `interplab compile PROGRAM --out DIR`.")
    try:
        data = json.loads(sidecar.read_text())
        cfg = TransformerConfig.from_json(data["config"])
        truth = GroundTruth.from_json(data["ground_truth"])
        state = load_file(str(weights))
    except (ValueError, KeyError) as exc:
        raise WeightsError(f"cannot read compiled model in {directory}: {exc}; recompile it") from exc
    out_values = data.get("output_values")
    out = None if out_values is None else tuple(decode_json_value(v) for v in out_values)
    return CompiledModel(cfg, state, truth, out)


def _write_text_atomic(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as tmp:
        tmp.write(text)
        tmp_path = tmp.name
    os.replace(tmp_path, path)
