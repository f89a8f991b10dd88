"""RASP: a tiny language for sequence programs, and its reference evaluator.

A RASP program is a DAG of *expressions*. An :class:`SOp` (sequence operation) denotes one value
per input position; a :class:`Selector` denotes a boolean matrix ``[query, key]``.

    tokens, indices                        the input values and their positions (0-based)
    Map(f, x)                              f applied per position
    SequenceMap(f, x, y)                   f(x_i, y_i) per position
    LinearSequenceMap(x, y, a, b)          a * x_i + b * y_i (numerical)
    Full(c) / ConstantSOp(c)               c at every position
    Select(keys, queries, predicate)       selected[q][k] = predicate(keys[k], queries[q])
    SelectorAnd / SelectorOr / SelectorNot (also ``&``, ``|``, ``~`` on selectors)
    Aggregate(selector, x)                 categorical: the unique selected value;
                                           numerical: the mean of the selected values
    SelectorWidth(selector)                how many keys each query selects

Shorthand (as in Tracr): operators on SOps build the same expressions as the long form, with a
readable label (``"tokens == 'x'"``, ``"(length - indices) - 1"``):

    tokens == "x"        Map(lambda t: t == "x", tokens)         also != < <= > >=
    x * 2, 1 - x         Map(lambda v: v * 2, x), ...            also + - * / // % ** and -x
    x + y                SequenceMap(lambda a, b: a + b, x, y)   (numerical x, y: LinearSequenceMap)
    x & y, x | y, ~x     logical and / or / not of values        (on selectors: And / Or / Not)

An SOp has no truth value (``if tokens == "x":`` raises :class:`ProgramError`): compare values
inside a function, or build an SOp with the shorthand.

Every SOp is *categorical* (a finite set of values, one residual direction per value) or
*numerical* (one residual direction holding the number). Every expression has a readable
``label``: the name given with ``.named(...)`` or ``kind_N`` from a process-wide counter.
Library programs name every expression, so their labels are stable across processes.
Constructors check their arguments: an argument of the wrong kind (``Map(f, 3)``) raises
:class:`ProgramError` naming the argument, what it must be and what was given.

Missing values: an Aggregate that selects nothing yields its ``default`` (``None`` for a
categorical Aggregate, the zero vector in a compiled model; ``0`` for a numerical one unless
given); Maps and SequenceMaps of ``None`` yield ``None`` (categorical output) or ``0``
(numerical output); ``None`` never satisfies a Select predicate.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from interplab.compile.rasp_eval import (  # noqa: F401 (the reference evaluator: re-exported)
    EvaluationError,
    aggregate_values,
    eval_node,
    evaluate,
    evaluate_all,
    walk,
)
from interplab.errors import CompileError

_ids = itertools.count(1)


class Encoding(str, enum.Enum):
    CATEGORICAL = "categorical"
    NUMERICAL = "numerical"


class Comparison(str, enum.Enum):
    """Predicates of Select, read as ``predicate(key, query)``."""

    EQ = "EQ"
    LT = "LT"
    LEQ = "LEQ"
    GT = "GT"
    GEQ = "GEQ"
    NEQ = "NEQ"
    TRUE = "TRUE"
    FALSE = "FALSE"

    def __call__(self, key: Any, query: Any) -> bool:
        if key is None or query is None:
            return False
        return _COMPARISONS[self](key, query)


_COMPARISONS: dict[Comparison, Callable[[Any, Any], bool]] = {
    Comparison.EQ: lambda k, q: k == q,
    Comparison.LT: lambda k, q: k < q,
    Comparison.LEQ: lambda k, q: k <= q,
    Comparison.GT: lambda k, q: k > q,
    Comparison.GEQ: lambda k, q: k >= q,
    Comparison.NEQ: lambda k, q: k != q,
    Comparison.TRUE: lambda k, q: True,
    Comparison.FALSE: lambda k, q: False,
}


class ProgramError(CompileError, TypeError):
    """A RASP expression was built from arguments of the wrong kind (raised at construction)."""


_WANTED = {
    "sop": "an SOp (tokens, indices, Full(c), Map, SequenceMap, Aggregate, SelectorWidth, ...: "
    "one value per position)",
    "selector": "a Selector (Select(keys, queries, predicate), or &, |, ~ of selectors)",
    "function": "a function (e.g. a lambda)",
    "predicate": "a Comparison (e.g. Comparison.EQ) or a function predicate(key, query) -> bool",
    "number": "a number",
    "value": "a hashable value (a number, string, bool or tuple)",
}


_IS: dict[str, Callable[[Any], bool]] = {
    "sop": lambda v: isinstance(v, SOp),
    "selector": lambda v: isinstance(v, Selector),
    "function": lambda v: callable(v) and not isinstance(v, Expr),
    "predicate": lambda v: isinstance(v, Comparison) or (callable(v) and not isinstance(v, Expr)),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "value": lambda v: not isinstance(v, Expr) and is_hashable(v),
}


def is_hashable(value: Any) -> bool:
    """Whether ``value`` can be a categorical value (a dict key)."""
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _describe(value: Any) -> str:
    if isinstance(value, Expr):
        return f"{type(value).__name__} {value.label!r}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _check_args(expr: Expr, *args: tuple[str, Any, str]) -> None:
    """Raise ProgramError listing every ``(field, value, kind)`` whose value is not of ``kind``
    (one of "sop", "selector", "function", "predicate", "number")."""
    problems = []
    for role, value, kind in args:
        if not _IS[kind](value):
            hint = ""
            if kind == "sop" and isinstance(value, (int, float, str)):
                hint = f" (for a constant, use Full({value!r}))"
            elif kind == "sop" and isinstance(value, Selector):
                hint = " (turn a selector into values with Aggregate or SelectorWidth)"
            elif kind == "selector" and isinstance(value, SOp):
                hint = f" (build one with Select(keys, queries, predicate) from {value.label!r})"
            elif (
                kind == "predicate"
                and isinstance(value, str)
                and value.upper() in Comparison.__members__
            ):
                hint = f" (use Comparison.{value.upper()})"
            problems.append(f"{role} must be {_WANTED[kind]}, got {_describe(value)}{hint}")
    encoding = getattr(expr, "encoding", Encoding.CATEGORICAL)
    if not isinstance(encoding, Encoding):
        problems.append(
            f"encoding must be Encoding.CATEGORICAL or Encoding.NUMERICAL (or use "
            f"numerical(...)/categorical(...)), got {_describe(encoding)}"
        )
    if problems:
        raise ProgramError(f"cannot build {type(expr).__name__}: " + "; ".join(problems))


_INPUT_KINDS = ("sop", "selector")  # the argument kinds that are inputs of an expression
_E = TypeVar("_E", bound="Expr")  # an expression's own type (what .named() returns)


@dataclass(frozen=True, eq=False)
class Expr:
    """Base of every RASP expression. Identity-hashed; ``label`` is its readable name."""

    name: str | None = field(default=None, kw_only=True)
    uid: int = field(default_factory=lambda: next(_ids), kw_only=True, repr=False)
    #: readable description given by the shorthand operators (``"tokens == 'x'"``); the label
    #: of an unnamed expression built by them (made unique with `` #2``, `` #3``, ...)
    text: str | None = field(default=None, kw_only=True, repr=False)

    kind = "expr"
    #: the ``(field, kind)`` pairs the constructor checks (kinds as in ``_check_args``); the
    #: SOp and Selector fields among them are the expression's inputs (``children``), in order
    _args: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __post_init__(self) -> None:
        if self._args:
            _check_args(self, *((role, getattr(self, role), kind) for role, kind in self._args))

    @property
    def children(self) -> tuple[Expr, ...]:
        return tuple(getattr(self, role) for role, kind in self._args if kind in _INPUT_KINDS)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.text:
            return _text_label(self.uid, self.text)
        return f"{self.kind}_{self.uid}"

    def __call__(self, xs: Sequence[Any]) -> Any:
        """Evaluate on one input, as in Tracr (``make_length()("abc") == [3, 3, 3]``)."""
        return evaluate_all(self, list(xs))[self.label]

    def named(self: _E, name: str) -> _E:
        """A copy of this expression called ``name`` (use the copy, not the original)."""
        return dataclasses.replace(self, name=name, uid=next(_ids))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r})"


@dataclass(frozen=True, eq=False, repr=False)
class SOp(Expr):
    encoding: Encoding = field(default=Encoding.CATEGORICAL, kw_only=True)

    @property
    def is_numerical(self) -> bool:
        return self.encoding is Encoding.NUMERICAL

    # Shorthand: each operator builds a Map (SOp with a constant) or a SequenceMap (two SOps).
    __hash__ = Expr.__hash__  # identity, although == builds an expression

    def __bool__(self) -> bool:
        raise ProgramError(
            f"an SOp has no truth value: {self.label!r} stands for one value per position, so "
            "`if`, `and`, `or`, `not` cannot read it. Compare inside a function "
            "(Map(lambda t: t == 'x', tokens)) or combine SOps with & | ~"
        )

    def __eq__(self, other: Any) -> SOp:  # type: ignore[override]
        return _binary(self, other, "==", lambda a, b: a == b)

    def __ne__(self, other: Any) -> SOp:  # type: ignore[override]
        return _binary(self, other, "!=", lambda a, b: a != b)

    def __lt__(self, other: Any) -> SOp:
        return _binary(self, other, "<", lambda a, b: a < b)

    def __le__(self, other: Any) -> SOp:
        return _binary(self, other, "<=", lambda a, b: a <= b)

    def __gt__(self, other: Any) -> SOp:
        return _binary(self, other, ">", lambda a, b: a > b)

    def __ge__(self, other: Any) -> SOp:
        return _binary(self, other, ">=", lambda a, b: a >= b)

    def __add__(self, other: Any) -> SOp:
        return _binary(self, other, "+", lambda a, b: a + b, linear=(1.0, 1.0))

    def __radd__(self, other: Any) -> SOp:
        return _binary(other, self, "+", lambda a, b: a + b, linear=(1.0, 1.0))

    def __sub__(self, other: Any) -> SOp:
        return _binary(self, other, "-", lambda a, b: a - b, linear=(1.0, -1.0))

    def __rsub__(self, other: Any) -> SOp:
        return _binary(other, self, "-", lambda a, b: a - b, linear=(1.0, -1.0))

    def __mul__(self, other: Any) -> SOp:
        return _binary(self, other, "*", lambda a, b: a * b)

    def __rmul__(self, other: Any) -> SOp:
        return _binary(other, self, "*", lambda a, b: a * b)

    def __truediv__(self, other: Any) -> SOp:
        return _binary(self, other, "/", lambda a, b: a / b)

    def __rtruediv__(self, other: Any) -> SOp:
        return _binary(other, self, "/", lambda a, b: a / b)

    def __floordiv__(self, other: Any) -> SOp:
        return _binary(self, other, "//", lambda a, b: a // b)

    def __rfloordiv__(self, other: Any) -> SOp:
        return _binary(other, self, "//", lambda a, b: a // b)

    def __mod__(self, other: Any) -> SOp:
        return _binary(self, other, "%", lambda a, b: a % b)

    def __rmod__(self, other: Any) -> SOp:
        return _binary(other, self, "%", lambda a, b: a % b)

    def __pow__(self, other: Any) -> SOp:
        return _binary(self, other, "**", lambda a, b: a**b)

    def __rpow__(self, other: Any) -> SOp:
        return _binary(other, self, "**", lambda a, b: a**b)

    def __and__(self, other: Any) -> SOp:
        return _binary(self, other, "&", lambda a, b: a and b)

    def __rand__(self, other: Any) -> SOp:
        return _binary(other, self, "&", lambda a, b: a and b)

    def __or__(self, other: Any) -> SOp:
        return _binary(self, other, "|", lambda a, b: a or b)

    def __ror__(self, other: Any) -> SOp:
        return _binary(other, self, "|", lambda a, b: a or b)

    def __invert__(self) -> SOp:
        return Map(lambda a: not a, self, text=_short(f"~{_operand(self)}"))

    def __neg__(self) -> SOp:
        return Map(lambda a: -a, self, text=_short(f"-{_operand(self)}"))


@dataclass(frozen=True, eq=False, repr=False)
class _InputType(SOp):
    """Base of the program's inputs (tokens, indices): labelled by their kind."""

    @property
    def label(self) -> str:
        return self.kind


@dataclass(frozen=True, eq=False, repr=False)
class TokensType(_InputType):
    kind = "tokens"


@dataclass(frozen=True, eq=False, repr=False)
class IndicesType(_InputType):
    kind = "indices"


tokens = TokensType()
indices = IndicesType()


@dataclass(frozen=True, eq=False, repr=False)
class Full(SOp):
    """The constant ``value`` at every position."""

    value: Any = None
    kind = "full"


ConstantSOp = Full


@dataclass(frozen=True, eq=False, repr=False)
class Map(SOp):
    """``f`` applied per position. ``simplify`` is accepted for Tracr code and unused (nested
    Maps stay separate MLPs, so each keeps its label and site)."""

    f: Callable[[Any], Any] = None  # type: ignore[assignment]
    inner: SOp = None  # type: ignore[assignment]
    simplify: bool = field(default=True, repr=False)
    kind = "map"
    _args = (("f", "function"), ("inner", "sop"))


@dataclass(frozen=True, eq=False, repr=False)
class SequenceMap(SOp):
    f: Callable[[Any, Any], Any] = None  # type: ignore[assignment]
    left: SOp = None  # type: ignore[assignment]
    right: SOp = None  # type: ignore[assignment]
    kind = "sequence_map"
    _args = (("f", "function"), ("left", "sop"), ("right", "sop"))


@dataclass(frozen=True, eq=False, repr=False)
class LinearSequenceMap(SOp):
    """``a * left + b * right``; numerical by default."""

    left: SOp = None  # type: ignore[assignment]
    right: SOp = None  # type: ignore[assignment]
    a: float = 1.0
    b: float = 1.0
    encoding: Encoding = field(default=Encoding.NUMERICAL, kw_only=True)
    kind = "linear_sequence_map"
    _args = (("left", "sop"), ("right", "sop"), ("a", "number"), ("b", "number"))


@dataclass(frozen=True, eq=False, repr=False)
class Selector(Expr):
    kind = "selector"

    def __and__(self, other: Selector) -> SelectorAnd:
        return SelectorAnd(self, other)

    def __or__(self, other: Selector) -> SelectorOr:
        return SelectorOr(self, other)

    def __invert__(self) -> SelectorNot:
        return SelectorNot(self)


@dataclass(frozen=True, eq=False, repr=False)
class Select(Selector):
    keys: SOp = None  # type: ignore[assignment]
    queries: SOp = None  # type: ignore[assignment]
    predicate: Comparison | Callable[[Any, Any], bool] = Comparison.EQ
    kind = "select"
    _args = (("keys", "sop"), ("queries", "sop"), ("predicate", "predicate"))

    def holds(self, key: Any, query: Any) -> bool:
        if key is None or query is None:
            return False
        return bool(self.predicate(key, query))


@dataclass(frozen=True, eq=False, repr=False)
class _SelectorPair(Selector):
    """Base of the selectors that combine two selectors (And, Or)."""

    left: Selector = None  # type: ignore[assignment]
    right: Selector = None  # type: ignore[assignment]
    _args = (("left", "selector"), ("right", "selector"))


@dataclass(frozen=True, eq=False, repr=False)
class SelectorAnd(_SelectorPair):
    kind = "selector_and"


@dataclass(frozen=True, eq=False, repr=False)
class SelectorOr(_SelectorPair):
    kind = "selector_or"


@dataclass(frozen=True, eq=False, repr=False)
class SelectorNot(Selector):
    inner: Selector = None  # type: ignore[assignment]
    kind = "selector_not"
    _args = (("inner", "selector"),)


@dataclass(frozen=True, eq=False, repr=False)
class Aggregate(SOp):
    """``default``: the value where the selector selects nothing (``None``, which a numerical
    Aggregate reads as 0, unless given)."""

    selector: Selector = None  # type: ignore[assignment]
    sop: SOp = None  # type: ignore[assignment]
    default: Any = None
    kind = "aggregate"
    _args = (("selector", "selector"), ("sop", "sop"))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.default is not None:
            _check_args(self, ("default", self.default, "number" if self.is_numerical else "value"))

    @property
    def has_default(self) -> bool:
        """Whether ``default`` differs from what selecting nothing gives anyway (None / 0)."""
        return self.default is not None and not (self.is_numerical and self.default == 0)

    @property
    def empty_value(self) -> Any:
        """What a query that selects nothing reads: ``default``, or None / 0 without one."""
        if self.default is not None:
            return self.default
        return 0 if self.is_numerical else None


@dataclass(frozen=True, eq=False, repr=False)
class SelectorWidth(SOp):
    selector: Selector = None  # type: ignore[assignment]
    kind = "selector_width"
    _args = (("selector", "selector"),)


def first_select(selector: Selector) -> Select:
    """The leftmost :class:`Select` under ``selector``."""
    while not isinstance(selector, Select):
        selector = selector.children[0]  # type: ignore[assignment]
    return selector


def numerical(sop: SOp) -> SOp:
    """A copy of ``sop`` with numerical encoding (one residual direction holding the number)."""
    return dataclasses.replace(sop, encoding=Encoding.NUMERICAL, uid=next(_ids))


def categorical(sop: SOp) -> SOp:
    """A copy of ``sop`` with categorical encoding (one residual direction per value)."""
    return dataclasses.replace(sop, encoding=Encoding.CATEGORICAL, uid=next(_ids))


# ---------------------------------------------------------------------------- shorthand

_TEXT_LABELS: dict[int, str] = {}
_TEXT_USES: dict[str, int] = {}
MAX_TEXT_LABEL = 60


def _text_label(uid: int, text: str) -> str:
    """The label of an unnamed shorthand expression: its text, suffixed `` #n`` from the second
    expression with the same text on (labels must be unique within a program)."""
    if uid not in _TEXT_LABELS:
        n = _TEXT_USES[text] = _TEXT_USES.get(text, 0) + 1
        _TEXT_LABELS[uid] = text if n == 1 else f"{text} #{n}"
    return _TEXT_LABELS[uid]


def _operand(value: Any) -> str:
    if isinstance(value, Expr):
        label = value.label
        return f"({label})" if " " in label else label
    return repr(value)


def _short(text: str) -> str | None:
    return text if len(text) <= MAX_TEXT_LABEL else None


def _binary(
    left: Any,
    right: Any,
    op: str,
    f: Callable[[Any, Any], Any],
    linear: tuple[float, float] | None = None,
) -> SOp:
    """``left op right`` where one side (or both) is an SOp: a Map of the SOp with the constant
    bound, or a SequenceMap of two SOps (a LinearSequenceMap for + and - of numerical SOps)."""
    text = _short(f"{_operand(left)} {op} {_operand(right)}")
    for side in (left, right):
        if isinstance(side, Selector):
            other = right if side is left else left
            raise ProgramError(
                f"cannot build `{_operand(left)} {op} {_operand(right)}`: {side.label!r} is a "
                f"Selector and {_describe(other)} is not"
                + (
                    " (combine selectors with & | ~ only with selectors; turn a selector into "
                    "values with Aggregate or SelectorWidth)"
                    if op in "&|"
                    else " (turn a selector into values with Aggregate or SelectorWidth)"
                )
            )
        if isinstance(side, Expr) and not isinstance(side, SOp):  # pragma: no cover - defensive
            raise ProgramError(f"cannot build `{text}`: {_describe(side)} is not an SOp")
    if isinstance(left, SOp) and isinstance(right, SOp):
        if linear is not None and left.is_numerical and right.is_numerical:
            return LinearSequenceMap(left, right, linear[0], linear[1], text=text)
        return SequenceMap(f, left, right, text=text)
    if isinstance(left, SOp):
        return Map(lambda a, c=right: f(a, c), left, text=text)  # type: ignore[misc]  # mypy: lambda with a default
    return Map(lambda b, c=left: f(c, b), right, text=text)  # type: ignore[misc]  # mypy: lambda with a default
