"""Text that exists offline, cut into token windows for training dictionaries on a language model.

stdlib_docstrings()   docstrings of the installed Python standard library, read with ``ast``
                      from the .py files (nothing is imported or executed), in sorted file order
read_corpus(path)     every .txt / .md / .rst / .py file under ``path`` (or the file itself)
token_windows(...)    the texts tokenized, joined with the end-of-text token, cut into
                      non-overlapping windows [n, ctx]; a seeded split into train and held-out
"""

from __future__ import annotations

import ast
import sysconfig
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from interplab.errors import ConfigError

SUFFIXES = (".txt", ".md", ".rst", ".py")


def stdlib_docstrings(max_chars: int = 2_000_000) -> list[str]:
    """Module, class and function docstrings of the standard library (up to ``max_chars``)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out, total = [], 0
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts or "test" in path.parts or "tests" in path.parts:
            continue
        for doc in _docstrings(path):
            out.append(doc)
            total += len(doc)
            if total >= max_chars:
                return out
    if not out:
        raise ConfigError(f"found no docstrings under the standard library at {root}")
    return out


def _docstrings(path: Path) -> Iterator[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (SyntaxError, ValueError, OSError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc and len(doc) > 40:
                yield doc


def read_corpus(path: str | Path, max_chars: int = 2_000_000) -> list[str]:
    """Texts from a file or a directory (files ending in .txt/.md/.rst/.py, sorted)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"corpus path {path} does not exist")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES)
    out, total = [], 0
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace").strip()
        if text:
            out.append(text)
            total += len(text)
            if total >= max_chars:
                break
    if not out:
        raise ConfigError(
            f"corpus path {path} holds no text (looked for non-empty {', '.join(SUFFIXES)} "
            "files); give a file or directory with text, or use the default stdlib corpus"
        )
    return out


def token_windows(
    tokenizer: Any,
    texts: Sequence[str],
    ctx: int,
    *,
    sep: int | None = None,
    max_windows: int | None = None,
) -> torch.Tensor:
    """Non-overlapping windows [n, ctx] of the concatenated token stream."""
    if not isinstance(ctx, int) or ctx < 2:
        raise ConfigError(f"the context length must be an int >= 2, got {ctx!r}")
    ids: list[int] = []
    need = None if max_windows is None else max_windows * ctx
    for text in texts:
        ids += tokenizer.encode(text) + ([sep] if sep is not None else [])
        if need is not None and len(ids) >= need:
            break
    n = len(ids) // ctx
    if max_windows is not None:
        n = min(n, max_windows)
    if n < 2:
        raise ConfigError(f"the corpus gives {len(ids)} tokens, fewer than two windows of {ctx}")
    return torch.tensor(ids[: n * ctx]).view(n, ctx)


def split(
    windows: torch.Tensor, held_out: float = 0.1, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held_out) windows, a seeded random split (at least one window each)."""
    n = windows.shape[0]
    k = min(n - 1, max(1, int(round(held_out * n))))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return windows[perm[k:]], windows[perm[:k]]


class WindowSource:
    """Activations of ``site`` (and ``target_site`` for a transcoder) of a language model on token
    windows [n, ctx], skipping the first ``skip`` positions of every window: a model's first
    position is its attention sink, whose residual norm is orders of magnitude larger and would
    dominate the reconstruction loss and variance explained. Batches are a pure function of
    ``(seed, step)`` (resumable), one step's activations in memory at a time."""

    def __init__(
        self,
        model: Any,
        site: Any,
        windows: torch.Tensor,
        target_site: Any = None,
        seed: int = 0,
        skip: int = 1,
    ) -> None:
        model.check_site(site)
        if target_site is not None:
            model.check_site(target_site)
        if windows.shape[1] <= skip:
            raise ConfigError(
                f"windows of {windows.shape[1]} tokens leave nothing after skipping {skip}"
            )
        self.model, self.site, self.target_site = model, site, target_site
        self.windows, self.seed, self.skip = windows, seed, skip
        x, y = self._run(windows[:1])
        self.d_in, self.d_out = x.shape[-1], y.shape[-1]

    def _run(self, toks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sites = [self.site] + ([self.target_site] if self.target_site is not None else [])
        _, cache = self.model.run_with_cache(toks, sites)
        x = cache[self.site][:, self.skip :].reshape(-1, cache[self.site].shape[-1]).float()
        y = (
            x
            if self.target_site is None
            else cache[self.target_site][:, self.skip :]
            .reshape(-1, cache[self.target_site].shape[-1])
            .float()
        )
        return x, y

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        per = self.windows.shape[1] - self.skip
        n = min(self.windows.shape[0], -(-batch_size // per))
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + int(step)) & 0x7FFF_FFFF)
        x, y = self._run(self.windows[torch.randperm(self.windows.shape[0], generator=gen)[:n]])
        return x[:batch_size], y[:batch_size]
