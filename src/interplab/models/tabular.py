"""Small decision models on tabular rows, and the planted rules some of them are trained on.

:class:`TabularNet` maps raw rows [batch, feature] (see :mod:`interplab.data.tabular`) to
the logit of the positive outcome [batch], in two steps a user can address separately:

    encode   numeric / ordinal -> (x - mean) / std,  categorical -> one-hot      [batch, d_enc]
    head     an MLP (hidden widths) or, with no hidden layer, one linear map      [batch]

Everything is float64 so that exact identities (a linear model's Shapley values) hold to 1e-9.
Training is full-batch Adam on one torch thread, seeded: seconds on a CPU.

Planted rules (the truth of the rule organisms; they never call a method):

    SCORECARD   German credit relabelled by a sparse points table: refuse when the points
                reach ``SCORECARD_CUTOFF``; only its four features decide
    PATCH       8×8 digits where a bright 3-pixel patch in the top-left corner, planted in half
                of the images, decides the positive class ("patched") whatever the digit
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from interplab.core.threads import one_thread
from interplab.data.tabular import Feature, TabularData

Tensor = torch.Tensor


class TabularNet(nn.Module):
    """Raw rows -> encoded columns -> logit of ``outcomes[1]`` (see the module docstring)."""

    # buffers registered in __init__; declared here for the type checker
    mean: Tensor
    std: Tensor

    def __init__(
        self,
        features: Sequence[Feature],
        hidden: Sequence[int] = (),
        *,
        mean: Tensor | None = None,
        std: Tensor | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.features = tuple(features)
        self.hidden = tuple(int(h) for h in hidden)
        d = len(self.features)
        self.register_buffer(
            "mean", torch.zeros(d, dtype=torch.float64) if mean is None else mean.double()
        )
        self.register_buffer(
            "std", torch.ones(d, dtype=torch.float64) if std is None else std.double()
        )
        self.groups: list[list[int]] = []
        col = 0
        for f in self.features:
            width = len(f.values) if f.kind == "categorical" else 1
            self.groups.append(list(range(col, col + width)))
            col += width
        self.d_enc = col
        gen = torch.Generator().manual_seed(seed)
        layers: list[nn.Module] = []
        width = col
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.GELU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers).double()
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(
                    torch.randn(p.shape, generator=gen, dtype=torch.float64)
                    * (p.shape[-1] ** -0.5 if p.dim() > 1 else 0.0)
                )

    @property
    def linear(self) -> nn.Linear | None:
        """The single linear map of a model with no hidden layer (None for an MLP)."""
        return cast(nn.Linear, self.net[0]) if not self.hidden else None

    def encode(self, x: Tensor) -> Tensor:
        scaled = (x - self.mean) / self.std
        cols, run = [], 0  # consecutive non-categorical features are copied as one slice
        for j, f in enumerate(self.features):
            if f.kind == "categorical":
                if run < j:
                    cols.append(scaled[:, run:j])
                cols.append(
                    nn.functional.one_hot(
                        x[:, j].round().long().clamp(0, len(f.values) - 1), len(f.values)
                    ).double()
                )
                run = j + 1
        if run < len(self.features):
            cols.append(scaled[:, run:])
        return torch.cat(cols, 1)

    def head(self, z: Tensor) -> Tensor:
        return self.net(z)[:, 0]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encode(x.double()))


@dataclass(frozen=True)
class TrainConfig:
    hidden: tuple[int, ...] = (32, 16)
    steps: int = 600
    lr: float = 0.01
    weight_decay: float = 1e-3
    batch_size: int | None = None  # None: full batch
    smoothing: float = 0.0  # label smoothing (keeps a rule-fitting MLP's logits moderate)
    seed: int = 0


def fit(data_x: Tensor, y: Tensor, features: Sequence[Feature], cfg: TrainConfig) -> TabularNet:
    """Train a :class:`TabularNet` on rows ``data_x`` [n, feature] and labels ``y`` [n] (0/1)."""
    with one_thread():
        torch.manual_seed(cfg.seed)
        mean, std = data_x.mean(0), data_x.std(0).clamp_min(1e-9)
        model = TabularNet(features, cfg.hidden, mean=mean, std=std, seed=cfg.seed)
        target = y.double()
        if not cfg.hidden:  # logistic regression: a convex problem, solved to convergence
            opt = torch.optim.LBFGS(
                model.parameters(),
                lr=1.0,
                max_iter=500,
                tolerance_grad=1e-12,
                tolerance_change=1e-14,
                line_search_fn="strong_wolfe",
            )

            def closure() -> Tensor:
                opt.zero_grad()
                loss = (
                    nn.functional.binary_cross_entropy_with_logits(model(data_x), target)
                    + cfg.weight_decay * cast(nn.Linear, model.net[0]).weight.square().sum()
                )
                loss.backward()
                return loss

            opt.step(closure)
        else:
            adam = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(adam, cfg.steps)
            gen = torch.Generator().manual_seed(cfg.seed + 1)
            target = target * (1 - 2 * cfg.smoothing) + cfg.smoothing
            for _ in range(cfg.steps):
                batch = (
                    torch.randint(0, len(data_x), (cfg.batch_size,), generator=gen)
                    if cfg.batch_size
                    else slice(None)
                )
                adam.zero_grad()
                nn.functional.binary_cross_entropy_with_logits(
                    model(data_x[batch]), target[batch]
                ).backward()
                adam.step()
                sched.step()
    return model.eval()


# ----------------------------------------------------------------------------- planted rules
#: feature -> (kind, condition, points); refuse when the points reach SCORECARD_CUTOFF.
SCORECARD: dict[str, tuple[str, object, int]] = {
    "checking_account": ("in", (0, 1), 2),  # balance below 200 DM (or overdrawn)
    "duration": (">", 18.0, 2),  # longer than 18 months
    "savings": ("in", (0,), 1),  # savings below 100 DM
    "credit_amount": (">", 2500.0, 1),  # more than 2,500 DM
}
SCORECARD_CUTOFF = 4


def scorecard_points(x: Tensor, names: Sequence[str]) -> Tensor:
    """Per-feature points [n, len(SCORECARD)] of the scorecard, in SCORECARD's order."""
    cols = []
    for name, (op, cond, pts) in SCORECARD.items():
        v = x[:, list(names).index(name)]
        hit = torch.isin(v.round().long(), torch.tensor(cond)) if op == "in" else v > float(cond)  # type: ignore[arg-type]
        cols.append(hit.double() * pts)
    return torch.stack(cols, 1)


def product_sample(x: Tensor, n: int, seed: int) -> Tensor:
    """``n`` synthetic rows whose features are drawn independently from the rows ``x`` (the
    product of the marginals): fills the feature space so a model learns a rule, not the rows."""
    gen = torch.Generator().manual_seed(seed)
    return x[torch.randint(0, x.shape[0], (n, x.shape[1]), generator=gen), torch.arange(x.shape[1])]


def scorecard_approves(x: Tensor, names: Sequence[str]) -> Tensor:
    """1 = approve (points below the cutoff) [n]."""
    return (scorecard_points(x, names).sum(1) < SCORECARD_CUTOFF).long()


PATCH_PIXELS = ((0, 0), (0, 1), (1, 0))
PATCH_MIN_SUM = 30.0


def patch_index() -> list[int]:
    return [r * 8 + c for r, c in PATCH_PIXELS]


def plant_patch(data: TabularData, seed: int) -> TabularData:
    """Digits with the corner patch planted at random intensities in half of the images (label 1
    when the patch pixels sum to at least PATCH_MIN_SUM) and partial, dim patches elsewhere."""
    gen = torch.Generator().manual_seed(seed)
    x = data.x.clone()
    n, idx = x.shape[0], patch_index()
    planted = torch.rand(n, generator=gen) < 0.5
    bright = torch.randint(10, 17, (n, len(idx)), generator=gen).double()
    dim = torch.randint(0, 9, (n, len(idx)), generator=gen).double() * (
        torch.rand(n, len(idx), generator=gen) < 0.5
    )
    x[:, idx] = torch.where(planted[:, None], bright, dim)
    y = (x[:, idx].sum(1) >= PATCH_MIN_SUM).long()
    return TabularData(
        "digits_patch",
        data.features,
        x,
        y,
        ("plain", "patched"),
        data.source + "; corner patch planted by interplab",
        data.digest + f"-patch{seed}",
    )
