"""The decision model a rationale explains: raw rows in, class scores out.

:class:`DecisionModel` wraps either a torch module (a :class:`~interplab.models.tabular.TabularNet`
or any module mapping float rows [batch, feature] to one logit, one probability, or K ≥ 2 class
logits / probabilities) or a scikit-learn-style object with ``predict_proba`` (K ≥ 2 columns).

    model.classes              the K class names (``outcomes``)
    model.class_scores(x)      [n, K] scores: logits or log-probabilities (only differences count)
    model.predict(x)           [n] the predicted class index
    model.versus(t, against)   a *binary* DecisionModel whose logit is a contrast of two scores:
                                 against = a class      s_t − s_against
                                 against = "rest"       s_t − logsumexp_{j≠t} s_j (one-vs-rest log-odds)
                                 against = "any"        s_t − max_{j≠t} s_j  (> 0 iff t is predicted)
    model.logit(x)             binary models only: the logit of ``outcomes[1]`` (every attribution,
                               recourse and claim works through it)

A model with K == 2 behaves exactly as a binary decision always has: its logit is the one the
wrapped model gives (``outcomes[1]`` when > 0). A model with K > 2 has no single logit; explain
and recourse pick a contrast with :meth:`DecisionModel.versus` (its gradient methods see the
contrast through a small wrapper module that keeps ``encode``/``head``/``groups`` and, for a
class-vs-class contrast of a linear model, ``linear``). Outputs are checked: a "probability"
outside [0, 1], or rows of ``predict_proba`` that do not sum to 1, raise
:class:`~interplab.errors.ConfigError`. Classes are named by name or index (a name wins; the
words "rest" and "any" are contrasts, not classes, as ``against``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from interplab.data.tabular import Feature
from interplab.errors import ConfigError, ShapeError, UnknownNameError, unknown_name

Tensor = torch.Tensor
EPS = 1e-12
#: the contrasts ``versus`` accepts besides a class
CONTRASTS = ("rest", "any")
BINARY = ("refuse", "approve")


@dataclass(frozen=True, eq=False)
class Contrast:
    """How a binary model was derived from a K-class one: ``parent.versus(target, against)``
    (``target``: a class index of the parent; ``against``: a class index, "rest" or "any")."""

    parent: DecisionModel
    target: int
    against: int | str

    @property
    def target_name(self) -> str:
        return self.parent.classes[self.target]

    @property
    def against_name(self) -> str:
        """A class name, or "rest" / "any"."""
        return self.against if isinstance(self.against, str) else self.parent.classes[self.against]

    @property
    def text(self) -> str:
        """The contrast in words: "'c' rather than 'r'" (or the other classes / any other class)."""
        return rather_than(self.target_name, self.against_name, self.parent.classes)


def rather_than(target: str, against: str, classes: Sequence[str], sign: int = 1) -> str:
    """ "'t' rather than 'a'" (``sign`` < 0: the other way round); ``against`` "rest" reads "the
    other classes", "any" reads "any other class"."""
    if against in CONTRASTS:
        other = "the other classes" if against == "rest" else "any other class"
        return f"'{target}' rather than {other}" if sign > 0 else f"{other} rather than '{target}'"
    return (
        f"'{target}' rather than '{against}'" if sign > 0 else f"'{against}' rather than '{target}'"
    )


@dataclass
class DecisionModel:
    """A decision among ``outcomes`` (K ≥ 2 class names). Binary (K == 2): ``outcomes[1]`` when
    the logit is > 0 (probability > 0.5). ``logit_fn`` (binary) and/or ``scores_fn`` ([n, K]
    class scores) must be given; ``contrast``: set on a model made by :meth:`versus`."""

    features: tuple[Feature, ...]
    logit_fn: Callable[[Tensor], Tensor] | None = None
    outcomes: tuple[str, ...] = BINARY
    module: Any = None  # a torch module, for gradient methods
    scores_fn: Callable[[Tensor], Tensor] | None = field(default=None, repr=False)
    contrast: Contrast | None = field(default=None, repr=False)
    #: what ``module`` (and its ``head``) returns: "logit" (one logit or K class logits) or
    #: "probability"; how :meth:`versus` reads it
    module_output: str = field(default="logit", repr=False)
    #: the scikit-learn-style estimator :meth:`from_predict_proba` wraps (None otherwise, and on
    #: a :meth:`versus` contrast): for explainers that read the estimator itself (shap_tree)
    estimator: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.features = tuple(self.features)
        self.outcomes = tuple(str(o) for o in self.outcomes)
        k = len(self.outcomes)
        if k < 2 or len(set(self.outcomes)) != k:
            raise ConfigError(f"a decision needs ≥ 2 distinct class names, got {self.outcomes}")
        if self.logit_fn is None and self.scores_fn is None:
            raise ConfigError("a DecisionModel needs logit_fn (binary) or scores_fn (K classes)")
        if k > 2:
            if self.logit_fn is not None and not isinstance(self.logit_fn, _NoSingleLogit):
                raise ConfigError(
                    f"a single logit decides between 2 outcomes, not {k}; pass scores_fn "
                    "for K classes"
                )
            # any binary method handed this model fails with one clear line
            self.logit_fn = _NoSingleLogit(self.outcomes)
        elif self.logit_fn is None:
            scores = self.scores_fn
            assert scores is not None
            self.logit_fn = lambda x: _diff(scores(x))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_torch(
        cls,
        module: torch.nn.Module,
        features: Sequence[Feature],
        *,
        output: str = "logit",
        outcomes: Sequence[str] | None = None,
    ) -> DecisionModel:
        """``output``: "logit" (one logit per row, or K ≥ 2 class logits [batch, K]) or
        "probability" (one probability, or [batch, K] probabilities). ``outcomes``: the K class
        names (default: refuse/approve for K == 2, "0".."K-1" otherwise). The module is run once
        on two probe rows to learn K; inputs are cast to the module's parameter dtype."""
        if output not in ("logit", "probability"):
            raise ConfigError(f"output must be 'logit' or 'probability', not {output!r}")
        features = tuple(features)
        dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), None)

        def run(x: Tensor) -> Tensor:
            out = module(x.to(dtype) if dtype is not None else x)
            return out.double() if out.is_floating_point() else out

        k = _probe(lambda x: run(x), features, "the torch model")
        names = _names(outcomes, k, None)
        to_scores = _torch_scores(output, "the torch model")
        if k == 2:

            def logit(x: Tensor) -> Tensor:
                out = run(x)
                if out.dim() == 2 and out.shape[1] == 2:
                    if output == "probability":
                        return _logit_of_proba(out, "the torch model")
                    return out[:, 1] - out[:, 0]
                out = out.reshape(x.shape[0])
                return _logit_of_p(out, "the torch model") if output == "probability" else out

            return cls(
                features, logit, names, module, lambda x: to_scores(run(x)), module_output=output
            )
        return cls(
            features,
            None,
            names,
            _ScoresModule(module, output, names),
            lambda x: to_scores(run(x)),
            module_output=output,
        )

    @classmethod
    def from_predict_proba(
        cls,
        estimator: Any,
        features: Sequence[Feature],
        *,
        outcomes: Sequence[str] | None = None,
    ) -> DecisionModel:
        """A scikit-learn-style classifier: ``predict_proba(numpy [n, feature]) -> [n, K]``, K ≥ 2
        (class names default to refuse/approve for K == 2, else ``estimator.classes_``)."""
        if not hasattr(estimator, "predict_proba"):
            raise ConfigError(
                f"{type(estimator).__name__} has no predict_proba; pass a classifier "
                "or use DecisionModel.from_torch"
            )
        who = type(estimator).__name__
        features = tuple(features)

        def proba(x: Tensor) -> Tensor:
            return torch.as_tensor(
                np.asarray(estimator.predict_proba(x.detach().cpu().numpy())), dtype=torch.float64
            )

        k = _probe(proba, features, who)
        names = _names(outcomes, k, getattr(estimator, "classes_", None))
        if k == 2:

            def logit(x: Tensor) -> Tensor:
                return _logit_of_proba(proba(x), who)

            def scores2(x: Tensor) -> Tensor:
                p = _check_proba(proba(x), who)[:, 1].clamp(EPS, 1 - EPS)
                return torch.stack([torch.log1p(-p), torch.log(p)], 1)

            return cls(features, logit, names, None, scores2, estimator=estimator)
        return cls(
            features,
            None,
            names,
            None,
            lambda x: _check_proba(proba(x), who).clamp_min(EPS).log(),
            estimator=estimator,
        )

    # ------------------------------------------------------------------ classes
    @property
    def classes(self) -> tuple[str, ...]:
        """The K class names (for a binary model: ``outcomes``)."""
        return self.outcomes

    @property
    def n_classes(self) -> int:
        return len(self.outcomes)

    def class_index(self, c: int | str) -> int:
        """A class by name or index (a name wins over an index written as text); an unknown
        class raises UnknownNameError listing the classes."""
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            if 0 <= int(c) < self.n_classes:
                return int(c)
        elif isinstance(c, str):
            if c in self.classes:
                return self.classes.index(c)
            if c.strip().lstrip("-").isdigit() and 0 <= int(c) < self.n_classes:
                return int(c)
        raise UnknownNameError(
            f"unknown class {c!r}: the classes are "
            + ", ".join(f"{i}={name!r}" for i, name in enumerate(self.classes))
            + " (give a name or an index)"
        )

    def class_scores(self, x: Tensor) -> Tensor:
        """[n, K] class scores (logits or log-probabilities; softmax gives the probabilities)."""
        with torch.no_grad():
            return self._scores(x.double()).double()

    def probabilities(self, x: Tensor) -> Tensor:
        """[n, K] class probabilities (the softmax of the class scores)."""
        return torch.softmax(self.class_scores(x), 1)

    def predict(self, x: Tensor) -> Tensor:
        """[n] the predicted class index (binary: 1 when the logit is > 0)."""
        if self.n_classes == 2:
            return self.decide(x).long()
        return self.class_scores(x).argmax(1)

    def runner_up(self, x: Tensor, target: int | str | None = None) -> int:
        """The highest-scoring class on the row ``x`` [feature] other than ``target`` (default:
        the predicted class)."""
        s = self.class_scores(x.reshape(1, -1).double())[0]
        t = int(s.argmax()) if target is None else self.class_index(target)
        s[t] = -float("inf")
        return int(s.argmax())

    def versus(self, target: int | str, against: int | str) -> DecisionModel:
        """The binary model of ``target`` against ``against`` (a class, "rest" or "any"; see the
        module docstring); its outcomes are (the against side's name, the target's name)."""
        t = self.class_index(target)
        a: int | str
        if isinstance(against, str) and against in CONTRASTS:
            a = against
        else:
            a = self.class_index(against)
            if a == t:
                raise ConfigError(
                    f"target and against are the same class ({self.classes[t]!r}); "
                    "contrast it with another class, 'rest' or 'any'"
                )
        scores = self._scores
        contrast = Contrast(self, t, a)

        def logit(x: Tensor) -> Tensor:
            return _contrast(scores(x), t, a)

        side = self.classes[a] if isinstance(a, int) else f"not {self.classes[t]}"
        module = None
        if self.module is not None:
            inner = self.module.inner if isinstance(self.module, _ScoresModule) else self.module
            module = _ContrastModule(
                inner, self.module_output, t, a, self.n_classes, f"{side} vs {self.classes[t]}"
            )
        return DecisionModel(
            self.features, logit, (side, self.classes[t]), module, contrast=contrast
        )

    def _scores(self, x: Tensor) -> Tensor:
        """Differentiable [n, K] scores (no ``no_grad``: gradient methods go through it)."""
        if self.scores_fn is not None:
            return self.scores_fn(x)
        assert self.logit_fn is not None
        logit = self.logit_fn(x).reshape(x.shape[0])
        return torch.stack([torch.zeros_like(logit), logit], 1)

    # ------------------------------------------------------------------ binary decisions
    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def index(self, name: str) -> int:
        if name not in self.names:
            raise unknown_name("feature", name, self.names)
        return self.names.index(name)

    def logit(self, x: Tensor) -> Tensor:
        assert self.logit_fn is not None  # set in __post_init__ (K > 2: refuses)
        with torch.no_grad():
            return self.logit_fn(x.double()).double()

    def decide(self, x: Tensor) -> Tensor:
        return self.logit(x) > 0

    def check_row(self, x: Tensor) -> Tensor:
        """A row [feature] checked against the features (shape, ranges, category codes)."""
        x = torch.as_tensor(x, dtype=torch.float64).reshape(-1)
        if x.shape[0] != len(self.features):
            raise ShapeError(f"a row needs {len(self.features)} features, got {x.shape[0]}")
        bad = []
        for f, v in zip(self.features, x.tolist()):
            lo, hi = f.span
            if not lo - 1e-9 <= v <= hi + 1e-9 or (f.discrete and not float(v).is_integer()):
                bad.append(
                    f"{f.name}={v:g} (allowed {lo:g}..{hi:g}{', integer codes' if f.discrete else ''})"
                )
        if bad:
            raise ConfigError("row values out of range: " + "; ".join(bad))
        return x


# ----------------------------------------------------------------------------- helpers
def _diff(s: Tensor) -> Tensor:
    return s[:, 1] - s[:, 0]


def _contrast(s: Tensor, t: int, a: int | str) -> Tensor:
    """The contrast of class ``t`` against ``a`` from scores [n, K] (see the module docstring)."""
    if isinstance(a, int):
        return s[:, t] - s[:, a]
    others = torch.cat([s[:, :t], s[:, t + 1 :]], 1)
    if a == "rest":
        return s[:, t] - torch.logsumexp(others, 1)
    return s[:, t] - others.max(1).values


def _probe_rows(features: Sequence[Feature]) -> Tensor:
    """Two legal rows (every feature at the low end of its range; two, so that a module with
    batch statistics runs)."""
    return torch.tensor([[f.span[0] for f in features]] * 2, dtype=torch.float64)


def _probe(fn: Callable[[Tensor], Tensor], features: Sequence[Feature], who: str) -> int:
    """K: the number of classes the model's output on one probe row implies."""
    try:
        with torch.no_grad():
            out = fn(_probe_rows(features))
    except ConfigError:
        raise
    except Exception as exc:  # a user's model: any failure becomes one clear line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"{who} failed on a row of {len(features)} features: {type(exc).__name__}: {msg}"
        ) from None
    out = torch.as_tensor(out)
    if out.dim() <= 1 or (out.dim() == 2 and out.shape[1] == 1):
        return 2
    if out.dim() == 2 and out.shape[0] == 2:
        return int(out.shape[1])
    raise ConfigError(
        f"{who} must return one score per row or [rows, K] class scores, got shape "
        f"{tuple(out.shape)} for 2 rows"
    )


def _names(outcomes: Sequence[str] | None, k: int, classes: Any) -> tuple[str, ...]:
    if outcomes is not None:
        names = tuple(str(o) for o in outcomes)
        if len(names) != k:
            raise ConfigError(
                f"outcomes names {len(names)} classes ({', '.join(names)}) but the model "
                f"returns {k} class scores per row"
            )
        return names
    if k == 2:
        return BINARY
    if classes is not None and len(classes) == k:
        return tuple(str(c) for c in classes)
    return tuple(str(j) for j in range(k))


def _torch_scores(output: str, who: str) -> Callable[[Tensor], Tensor]:
    """A module's output -> [n, K] scores: one logit l -> [0, l]; one probability p ->
    [log(1 − p), log p]; [n, K] logits as they are; [n, K] probabilities -> their logs."""

    def to_scores(out: Tensor) -> Tensor:
        if out.dim() == 2 and out.shape[1] >= 2:
            if output == "probability":
                return _check_proba(out, who).clamp_min(EPS).log()
            return out
        out = out.reshape(out.shape[0])
        if output == "probability":
            p = _logit_of_p(out, who)  # validates; log-odds = log p − log(1 − p)
            return torch.stack([torch.zeros_like(p), p], 1)
        return torch.stack([torch.zeros_like(out), out], 1)

    return to_scores


class _NoSingleLogit:
    """The logit function of a K > 2 model: refuses with one line (pick a contrast)."""

    def __init__(self, classes: tuple[str, ...]):
        self.classes = classes

    def __call__(self, x: Tensor) -> Tensor:
        raise ConfigError(
            f"this model decides between {len(self.classes)} classes "
            f"({', '.join(self.classes)}), so it has no single logit: pick a contrast with "
            "model.versus(target, against) (against: a class, 'rest' or 'any'); "
            "explain() picks the predicted class and its runner-up itself"
        )


class _ScoresModule(torch.nn.Module):
    """A K-class torch model held for :meth:`DecisionModel.versus`. It passes on none of the
    module's ``encode``/``head``/``linear``, and running it refuses (a binary method handed a
    K-class model must pick a contrast, never read class 0's weights as "the" logit)."""

    def __init__(self, inner: torch.nn.Module, output: str, classes: tuple[str, ...]):
        super().__init__()
        self.inner = inner
        self.output = output
        self.refuse = _NoSingleLogit(classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.refuse(x)


class _ContrastModule(torch.nn.Module):
    """A torch module's contrast (:meth:`DecisionModel.versus`) as one logit per row; keeps
    ``encode``/``groups`` and wraps ``head`` so gradient methods work in the encoded space, and,
    for a class-vs-class contrast of a linear head of raw logits, exposes ``linear`` (the
    difference of the two classes' weights) for exact linear SHAP."""

    def __init__(
        self, inner: torch.nn.Module, output: str, t: int, a: int | str, k: int, name: str
    ):
        super().__init__()
        self.inner, self.t, self.a, self.name = inner, t, a, name
        self.to_scores = _torch_scores(output, "the torch model")
        if all(getattr(inner, n, None) is not None for n in ("encode", "head", "groups")):
            self.encode = inner.encode
            self.groups = inner.groups
            self.head = self._head
        lin = getattr(inner, "linear", None)
        if isinstance(lin, torch.nn.Linear) and isinstance(a, int) and output == "logit":
            w, b = lin.weight.detach(), lin.bias.detach() if lin.bias is not None else None
            if w.shape[0] == 1 and k == 2:  # one logit l = scores [0, l]
                sign = 1.0 if t == 1 else -1.0
                dw, db = sign * w[0], (sign * b[0] if b is not None else None)
            elif w.shape[0] == k:
                dw, db = w[t] - w[a], (b[t] - b[a] if b is not None else None)
            else:
                dw = None
            if dw is not None:
                contrast = torch.nn.Linear(w.shape[1], 1, bias=db is not None).to(w.dtype)
                with torch.no_grad():
                    contrast.weight.copy_(dw[None])
                    if db is not None:
                        contrast.bias.copy_(db.reshape(1))
                self.linear = contrast

    def _head(self, z: Tensor) -> Tensor:
        head: Callable[[Tensor], Tensor] = getattr(self.inner, "head")  # noqa: B009
        return _contrast(self.to_scores(head(z)), self.t, self.a)

    def forward(self, x: Tensor) -> Tensor:
        return _contrast(self.to_scores(self.inner(x)), self.t, self.a)


def _check_proba(p: Tensor, who: str) -> Tensor:
    if p.dim() != 2 or p.shape[1] < 2:
        raise ConfigError(
            f"{who}'s predict_proba must return [n, K] probabilities (K ≥ 2), got shape "
            f"{tuple(p.shape)}"
        )
    if not bool(torch.isfinite(p).all()) or bool((p < -1e-9).any()):
        raise ConfigError(
            f"{who}'s output is not a probability: values range "
            f"{float(p.min()):.3g}..{float(p.max()):.3g}, expected [0, 1]"
        )
    if not bool(torch.allclose(p.sum(1), torch.ones(p.shape[0], dtype=p.dtype), atol=1e-6)):
        raise ConfigError(
            f"{who}'s output is not a probability: rows sum to "
            f"{float(p.sum(1).min()):.3g}..{float(p.sum(1).max()):.3g}, expected 1"
        )
    return p


def _logit_of_p(p: Tensor, who: str) -> Tensor:
    p = p.double()
    if not bool(torch.isfinite(p).all()) or bool((p < -1e-9).any()) or bool((p > 1 + 1e-9).any()):
        raise ConfigError(
            f"{who}'s output is not a probability: values range "
            f"{float(p.min()):.3g}..{float(p.max()):.3g}, expected [0, 1]. Pass "
            "output='logit' for raw scores"
        )
    p = p.clamp(EPS, 1 - EPS)
    return torch.log(p) - torch.log1p(-p)


def _logit_of_proba(p: Tensor, who: str) -> Tensor:
    if p.dim() != 2 or p.shape[1] != 2:
        raise ConfigError(
            f"{who}'s predict_proba must return [n, 2] probabilities for a binary decision, "
            f"got shape {tuple(p.shape)}"
        )
    if not bool(torch.allclose(p.sum(1), torch.ones(p.shape[0], dtype=p.dtype), atol=1e-6)):
        raise ConfigError(
            f"{who}'s output is not a probability: rows sum to "
            f"{float(p.sum(1).min()):.3g}..{float(p.sum(1).max()):.3g}, expected 1"
        )
    return _logit_of_p(p[:, 1], who)
