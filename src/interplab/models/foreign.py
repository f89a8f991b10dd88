"""A user's own model file and data, loaded safely: the model interplab never trained.

Model files (:func:`load_model`):

    .skops           a scikit-learn estimator saved with ``skops.io.dump``. Loaded only when
                     every type in it is trusted by skops's defaults or is a scikit-learn class;
                     anything else is refused in one line listing the types (``trust=True``
                     accepts them: only for files you made)
    .pt / .pth       a TorchScript module (``torch.jit.save(torch.jit.script(model), path)``),
                     loaded on the CPU. A plain ``torch.save`` file is a pickle (see below)
    .pkl / .pickle / .joblib
                     a pickle: it can run any code when loaded, so it is refused unless
                     ``trust=True``

Data (:func:`read_table`): a CSV with a header line, one row per decision. Each column becomes a
:class:`~interplab.data.tabular.Feature`, its kind inferred from the cells unless a small TOML
file (``features_path``) declares it:

    non-numeric strings      categorical; codes 0..k-1 in the labels' sorted order (the order
                             scikit-learn's OrdinalEncoder / LabelEncoder use)
    integers within 0..9     ordinal with levels "0".."max" (the cell is its own code, so the
                             model sees the values it was trained on)
    anything else numeric    numeric, its range the data's min..max

The TOML (every key optional)::

    label = "approved"                  # the label column (like --label), dropped from features
    classes = ["refuse", "approve"]     # names of the model's classes, in output order
    output = "logit"                    # TorchScript output: logit | probability (default: inferred)

    [features.age]                      # one table per CSV column, by its header name
    kind = "numeric"                    # numeric | ordinal | categorical
    range = [18, 75]                    # numeric: allowed [low, high] (default: the data's)
    integer = true
    immutable = true                    # recourse never changes it
    protected = true                    # a decision must not rest on it (checked)
    title = "age of the applicant"      # words for reports
    unit = "years"

    [features.housing]
    kind = "categorical"
    categories = ["rent", "own", "free"]   # codes 0..k-1 in this order; cells: names or codes

:func:`decision_from_files` loads both, checks that they fit (feature count, a probe
prediction) and returns a :class:`ForeignDecision`; the CLI turns it into a
``DecisionModel`` (this layer may not import methods). Every failure is one
:class:`~interplab.errors.ConfigError` line saying what is wrong and how to fix it.
"""

from __future__ import annotations

import csv
import importlib
import inspect
import math
import tomllib
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from interplab.data.tabular import KINDS, Feature
from interplab.errors import ConfigError, MissingExtraError

Tensor = torch.Tensor

SKOPS = (".skops",)
TORCHSCRIPT = (".pt", ".pth")
PICKLE = (".pkl", ".pickle", ".joblib")
ACCEPTED = (
    "a scikit-learn model saved with skops (.skops), a TorchScript module saved with "
    "torch.jit.save (.pt, .pth), or a pickle/joblib file (.pkl, .pickle, .joblib; only with --trust)"
)
PICKLE_REFUSAL = "this file can run code when loaded; pass --trust if you made it"
SKOPS_HINT = "pip install 'interplab[rationales]' (or skops>=0.16) to load .skops models"
#: integer columns whose values all lie in 0..MAX_ORDINAL are read as ordinal levels
MAX_ORDINAL = 9
#: the most data rows run through the model to probe it (shape check, output kind)
PROBE_ROWS = 64
FEATURE_KEYS = (
    "kind",
    "range",
    "categories",
    "levels",
    "integer",
    "immutable",
    "protected",
    "title",
    "unit",
)
TOP_KEYS = ("label", "classes", "output", "features")
MISSING = ("", "na", "nan", "null", "none")


# ----------------------------------------------------------------------------- model files
@dataclass(frozen=True)
class LoadedModel:
    """A loaded model file: ``kind`` is "sklearn" (has ``predict_proba``) or "torch"."""

    obj: Any
    kind: str
    path: Path
    format: str  # skops | torchscript | pickle


def load_model(path: str | Path, *, trust: bool = False) -> LoadedModel:
    """Load a user's model file (see the module docstring for the formats and the trust rules)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SKOPS + TORCHSCRIPT + PICKLE:
        raise ConfigError(
            f"{path}: unknown model format {suffix or '(no extension)'!r}; give {ACCEPTED}"
        )
    if not path.is_file():
        raise ConfigError(f"model file {path} does not exist (or is not a file)")
    if suffix in SKOPS:
        return _classify(_load_skops(path, trust), path, "skops")
    if suffix in TORCHSCRIPT:
        if _is_torchscript(path):
            return _classify(_load_torchscript(path), path, "torchscript")
        if not trust:
            raise ConfigError(
                f"{path} is not TorchScript but a torch.save pickle: {PICKLE_REFUSAL} "
                "(or save it with torch.jit.save(torch.jit.script(model), PATH))"
            )
        return _classify(_load_torch_pickle(path), path, "pickle")
    if not trust:
        raise ConfigError(
            f"{path} is a pickle: {PICKLE_REFUSAL} (or save a scikit-learn model with "
            "skops.io.dump(model, 'model.skops'))"
        )
    return _classify(_load_pickle(path), path, "pickle")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _load_skops(path: Path, trust: bool) -> Any:
    try:
        import skops.io as sio
    except ImportError as exc:  # pragma: no cover - skops is installed with the extra
        raise MissingExtraError(f"{path} is a skops file; {SKOPS_HINT}") from exc
    try:
        untrusted = list(sio.get_untrusted_types(file=path))
    except Exception as exc:  # a corrupt or foreign file: one line, not skops's traceback
        raise ConfigError(f"could not read {path} as a skops file ({_first_line(exc)})") from None
    refused = [t for t in untrusted if not _sklearn_class(t)]
    if refused and not trust:
        raise ConfigError(
            f"{path} holds types neither skops nor scikit-learn vouches for: "
            f"{', '.join(sorted(refused))}; loading them can run their code: pass --trust if "
            "you made the file"
        )
    try:
        return sio.load(path, trusted=untrusted)
    except Exception as exc:
        raise ConfigError(f"could not load {path} with skops ({_first_line(exc)})") from None


def _sklearn_class(name: str) -> bool:
    """True when ``name`` ("module.Class") is a class defined inside scikit-learn.

    Only classes: a function named in a skops file would be *called* or stored for calling,
    and scikit-learn has functions with effects (fetching data sets, reading files)."""
    module, _, attr = name.rpartition(".")
    if not (module == "sklearn" or module.startswith("sklearn.")) or not attr:
        return False
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return False
    return inspect.isclass(obj) and (obj.__module__ or "").startswith("sklearn")


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files with a ``code/`` folder and ``constants.pkl``;
    torch.save files are zips without them (or legacy pickles)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)


def _load_torchscript(path: Path) -> Any:
    try:
        with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript; still loads
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*jit")
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise ConfigError(f"could not load {path} as TorchScript ({_first_line(exc)})") from None
    return module.eval()


def _load_torch_pickle(path: Path) -> Any:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ConfigError(f"could not load {path} with torch.load ({_first_line(exc)})") from None
    if isinstance(obj, dict):
        raise ConfigError(
            f"{path} holds only weights (a state_dict), not the model: save the model itself "
            "with torch.jit.save(torch.jit.script(model), PATH)"
        )
    return obj.eval() if isinstance(obj, torch.nn.Module) else obj


def _load_pickle(path: Path) -> Any:
    import joblib

    try:
        return joblib.load(path)
    except Exception as exc:
        raise ConfigError(f"could not load {path} as a pickle ({_first_line(exc)})") from None


def _classify(obj: Any, path: Path, fmt: str) -> LoadedModel:
    if isinstance(obj, torch.nn.Module):
        return LoadedModel(obj.eval(), "torch", path, fmt)
    if hasattr(obj, "predict_proba"):
        return LoadedModel(obj, "sklearn", path, fmt)
    raise ConfigError(
        f"{path} holds a {type(obj).__name__}, which is neither a torch module nor a classifier "
        "with predict_proba; interplab explains classifiers"
    )


class TorchRows(torch.nn.Module):
    """A user's torch module as interplab calls it: rows of any float dtype are cast to the
    module's own (float32 for most), so float64 rows from the rationale methods work.

    An ordinary ``nn.Module`` around the (possibly TorchScript) module: ``torch.func``
    (per-example gradients for data attribution) works through it, not on TorchScript."""

    def __init__(self, module: torch.nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = module
        self.dtype = dtype

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x.to(self.dtype))


class ClassLogits(torch.nn.Module):
    """[n, K] class logits from a module whose output is one logit, one probability, K logits
    or K probabilities (``output``): what cross-entropy and label margins need.

    One logit z becomes (0, z) (softmax = (1 − σ(z), σ(z))); probabilities p become log p."""

    def __init__(self, module: torch.nn.Module, output: str, n_outputs: int) -> None:
        super().__init__()
        self.inner = module
        self.output = output
        self.single = n_outputs == 1

    def forward(self, x: Tensor) -> Tensor:
        out = self.inner(x)
        if self.single:
            out = out.reshape(out.shape[0], 1)
            if self.output == "probability":
                p = out.clamp(1e-12, 1 - 1e-12)
                return torch.cat([torch.log1p(-p), torch.log(p)], 1)
            return torch.cat([torch.zeros_like(out), out], 1)
        return torch.log(out.clamp_min(1e-12)) if self.output == "probability" else out


def torch_dtype(module: torch.nn.Module) -> torch.dtype:
    """The dtype of the module's first floating parameter (float32 when it has none)."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


# ----------------------------------------------------------------------------- tables
@dataclass(frozen=True)
class Table:
    """A CSV read as decisions: ``rows`` [n, feature] float64 in the features' raw units."""

    path: Path
    features: tuple[Feature, ...]
    rows: Tensor
    label_name: str | None = None
    labels: tuple[str, ...] | None = None  # the label column's cells, as written
    classes: tuple[str, ...] | None = None  # from the TOML
    output: str | None = None  # from the TOML

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]


def read_table(
    path: str | Path,
    *,
    features_path: str | Path | None = None,
    label: str | None = None,
    like: Table | None = None,
) -> Table:
    """Read a CSV of decisions (see the module docstring); ``label`` names a column to keep
    apart from the features (default: the TOML's ``label``, else none).

    ``like``: a table read before (the training rows) whose features this CSV must share:
    the same columns, category codes by the same names (ranges are not enforced: test rows
    may lie outside the training range)."""
    path = Path(path)
    if like is not None:
        return _read_like(path, like, label)
    spec = _read_spec(Path(features_path)) if features_path is not None else {}
    label = label if label is not None else spec.get("label")
    header, body, lines = _read_csv(path)
    if label is not None and label not in header:
        raise ConfigError(
            f"label column {label!r} is not in {path}; its columns are: {', '.join(header)}"
        )
    declared: dict[str, dict[str, Any]] = spec.get("features", {})
    unknown = [c for c in declared if c not in header]
    if unknown:
        raise ConfigError(
            f"{features_path} describes column(s) {', '.join(unknown)} that {path} lacks; its "
            f"columns are: {', '.join(header)}"
        )
    if label is not None and label in declared:
        raise ConfigError(f"{features_path}: {label!r} is the label column, not a feature")
    features, columns = [], []
    for j, name in enumerate(header):
        if name == label:
            continue
        cells = [r[j] for r in body]
        _check_missing(path, name, cells, lines)
        if name in declared:
            feat, codes = _declared_column(path, features_path, name, declared[name], cells, lines)
        else:
            feat, codes = _inferred_column(name, cells)
        features.append(feat)
        columns.append(codes)
    if not features:
        raise ConfigError(f"{path} has no feature columns (only the label {label!r})")
    rows = torch.tensor(columns, dtype=torch.float64).T.contiguous()
    labels = None
    if label is not None:
        j = header.index(label)
        labels = tuple(r[j].strip() for r in body)
        _check_missing(path, label, list(labels), lines)
    classes = spec.get("classes")
    return Table(
        path,
        tuple(features),
        rows,
        label,
        labels,
        tuple(str(c) for c in classes) if classes is not None else None,
        spec.get("output"),
    )


def _read_like(path: Path, like: Table, label: str | None) -> Table:
    label = label if label is not None else like.label_name
    header, body, lines = _read_csv(path)
    want = like.names + ([label] if label is not None else [])
    missing = [c for c in want if c not in header]
    extra = [c for c in header if c not in want]
    if missing or extra:
        raise ConfigError(
            f"{path} must have the columns of {like.path} ({', '.join(want)}); it "
            + (f"lacks {', '.join(missing)}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"has extra {', '.join(extra)}" if extra else "")
        )
    columns = []
    for feat in like.features:
        j = header.index(feat.name)
        cells = [r[j] for r in body]
        _check_missing(path, feat.name, cells, lines)
        if feat.kind == "numeric":
            decl: dict[str, Any] = {"kind": "numeric", "range": [-math.inf, math.inf]}
        else:
            decl = {"kind": feat.kind, "categories": list(feat.values)}
        columns.append(_declared_column(path, like.path, feat.name, decl, cells, lines)[1])
    rows = torch.tensor(columns, dtype=torch.float64).T.contiguous()
    labels = None
    if label is not None:
        labels = tuple(r[header.index(label)].strip() for r in body)
        _check_missing(path, label, list(labels), lines)
    return Table(path, like.features, rows, label, labels, like.classes, like.output)


def _read_csv(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """(header, rows, each row's line number); ragged, empty or header-less files refused."""
    if not path.is_file():
        raise ConfigError(f"data file {path} does not exist (or is not a file)")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            records = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a UTF-8 text CSV file") from None
    except csv.Error as exc:
        raise ConfigError(f"{path} is not a valid CSV file ({exc})") from None
    if not records:
        raise ConfigError(
            f"{path} is empty: expected a header line naming the columns, then one row per decision"
        )
    header = [c.strip() for c in records[0][1]]
    if all(_number(c) is not None for c in header):
        raise ConfigError(
            f"the first line of {path} must name the columns; it looks like data "
            f"({', '.join(header[:4])}...): add a header line"
        )
    if any(not c for c in header):
        raise ConfigError(f"{path}: column {header.index('') + 1} of the header has no name")
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        raise ConfigError(f"{path}: column name(s) {', '.join(dup)} appear more than once")
    body, lines = [], []
    for line, r in records[1:]:
        if len(r) != len(header):
            raise ConfigError(
                f"{path} line {line} has {len(r)} values but the header names {len(header)} "
                "columns; every row needs one value per column"
            )
        body.append(r)
        lines.append(line)
    if not body:
        raise ConfigError(f"{path} has a header but no rows")
    return header, body, lines


def _number(cell: str) -> float | None:
    try:
        v = float(cell.strip())
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _check_missing(path: Path, name: str, cells: Sequence[str], lines: list[int]) -> None:
    for cell, line in zip(cells, lines):
        if cell.strip().lower() in MISSING:
            raise ConfigError(
                f"{path} line {line}: column {name!r} has no value ({cell.strip()!r}); "
                "interplab needs every value: fill it or drop the row"
            )


def _show_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _inferred_column(name: str, cells: list[str]) -> tuple[Feature, list[float]]:
    numbers = [_number(c) for c in cells]
    if any(v is None for v in numbers):
        labels = tuple(sorted({c.strip() for c in cells}))
        code = {v: i for i, v in enumerate(labels)}
        return Feature(name, "categorical", labels), [float(code[c.strip()]) for c in cells]
    vals = [float(v) for v in numbers if v is not None]
    integer = all(v.is_integer() for v in vals)
    if integer and min(vals) >= 0 and max(vals) <= MAX_ORDINAL:
        levels = tuple(str(i) for i in range(int(max(vals)) + 1))
        if len(levels) >= 2:
            return Feature(name, "ordinal", levels, integer=True), vals
    return Feature(name, "numeric", low=min(vals), high=max(vals), integer=integer), vals


def _declared_column(
    path: Path,
    spec_path: Any,
    name: str,
    decl: dict[str, Any],
    cells: list[str],
    lines: list[int],
) -> tuple[Feature, list[float]]:
    kind = decl.get("kind")
    if kind is None:  # flags only: infer the kind, apply the flags
        feat, codes = _inferred_column(name, cells)
        kind = feat.kind
        decl = {**decl, "kind": kind}
        if kind != "numeric":
            decl.setdefault("categories", list(feat.values))
        else:
            decl.setdefault("range", [feat.low, feat.high])
            decl.setdefault("integer", feat.integer)
    if kind not in KINDS:
        raise ConfigError(f"{spec_path}: feature {name!r} has kind {kind!r}; use one of {KINDS}")
    flags: dict[str, Any] = {
        "immutable": bool(decl.get("immutable", False)),
        "protected": bool(decl.get("protected", False)),
        "label": str(decl.get("title", "")),
        "unit": str(decl.get("unit", "")),
    }
    if kind == "numeric":
        vals = []
        for cell, line in zip(cells, lines):
            v = _number(cell)
            if v is None:
                raise ConfigError(
                    f"{path} line {line}: column {name!r} is declared numeric in {spec_path} but "
                    f"holds {cell.strip()!r}; fix the cell or declare the column categorical"
                )
            vals.append(v)
        low, high = decl.get("range", (min(vals), max(vals)))
        low, high = _range(spec_path, name, low, high)
        for v, line in zip(vals, lines):
            if not low <= v <= high:
                raise ConfigError(
                    f"{path} line {line}: {name}={_show_number(v)} is outside its declared range "
                    f"[{_show_number(low)}, {_show_number(high)}] in {spec_path}"
                )
        integer = bool(decl.get("integer", all(v.is_integer() for v in vals)))
        return Feature(name, kind, low=low, high=high, integer=integer, **flags), vals
    levels = decl.get("categories", decl.get("levels"))
    if levels is None:  # discrete without names: the cells' own labels, as inferred
        inferred, codes = _inferred_column(name, cells)
        if inferred.kind == "numeric":
            raise ConfigError(
                f"{spec_path}: feature {name!r} is {kind} but its cells are not codes 0..9 or "
                "labels; list them: categories = [...]"
            )
        return Feature(name, kind, inferred.values, integer=True, **flags), codes
    if not isinstance(levels, list) or len(levels) < 2:
        raise ConfigError(f"{spec_path}: feature {name!r} needs categories = [two or more names]")
    levels = tuple(str(v) for v in levels)
    index = {v: i for i, v in enumerate(levels)}
    codes = []
    for cell, line in zip(cells, lines):
        c = cell.strip()
        v = _number(c)
        if c in index:
            codes.append(float(index[c]))
        elif v is not None and v.is_integer() and 0 <= v < len(levels):
            codes.append(v)
        else:
            raise ConfigError(
                f"{path} line {line}: {name}={c!r} is neither one of its categories "
                f"({', '.join(levels)}) nor a code 0..{len(levels) - 1}"
            )
    return Feature(name, kind, levels, integer=True, **flags), codes


def _range(spec_path: Any, name: str, low: Any, high: Any) -> tuple[float, float]:
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{spec_path}: feature {name!r} range must be [low, high] numbers"
        ) from None
    if not low <= high:
        raise ConfigError(f"{spec_path}: feature {name!r} range [{low:g}, {high:g}] has low > high")
    return low, high


def _read_spec(path: Path) -> dict[str, Any]:
    """The --features TOML, its keys checked (a typo is an error, not silently ignored)."""
    if not path.is_file():
        raise ConfigError(f"features file {path} does not exist (or is not a file)")
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc})") from None
    extra = sorted(set(spec) - set(TOP_KEYS))
    if extra:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(extra)}; allowed: {', '.join(TOP_KEYS)} "
            "(describe columns under [features.NAME])"
        )
    feats = spec.get("features", {})
    if not isinstance(feats, dict) or not all(isinstance(v, dict) for v in feats.values()):
        raise ConfigError(f"{path}: describe each column as a table [features.NAME]")
    for name, decl in feats.items():
        bad = sorted(set(decl) - set(FEATURE_KEYS))
        if bad:
            raise ConfigError(
                f"{path}: feature {name!r} has unknown key(s) {', '.join(bad)}; allowed: "
                f"{', '.join(FEATURE_KEYS)}"
            )
        if "range" in decl and not (isinstance(decl["range"], list) and len(decl["range"]) == 2):
            raise ConfigError(f"{path}: feature {name!r} range must be [low, high]")
    if "output" in spec and spec["output"] not in ("logit", "probability"):
        raise ConfigError(
            f"{path}: output must be 'logit' or 'probability', not {spec['output']!r}"
        )
    if "classes" in spec and not (isinstance(spec["classes"], list) and len(spec["classes"]) >= 2):
        raise ConfigError(f"{path}: classes must list two or more class names")
    if "label" in spec and not isinstance(spec["label"], str):
        raise ConfigError(f"{path}: label must be a column name")
    return spec


# ----------------------------------------------------------------------------- model + data
@dataclass(frozen=True)
class ForeignDecision:
    """A user's model and data, checked to fit: everything a ``DecisionModel`` needs.

    ``model``: the estimator (kind "sklearn", with ``predict_proba``) or a :class:`TorchRows`
    around the module (kind "torch"); ``output``: how to read the torch module's output
    ("logit" or "probability"; None for sklearn); ``classes``: the class names in output order
    (``classes_`` of an estimator, the TOML's ``classes``, else "0".."K-1")."""

    model: Any
    kind: str
    format: str
    features: tuple[Feature, ...]
    rows: Tensor
    classes: tuple[str, ...]
    output: str | None
    n_outputs: int
    labels: tuple[str, ...] | None = None
    label_name: str | None = None
    model_path: Path | None = None
    data_path: Path | None = None
    notes: tuple[str, ...] = ()

    def label_indices(self) -> Tensor:
        """The label column as class indices [n] (long), matched to :attr:`classes` by name
        (numerically where both are numbers: "1.0" is class "1")."""
        if self.labels is None:
            raise ConfigError(
                "no label column: pass --label NAME (the column holding each row's class)"
            )
        return class_indices(self.labels, self.classes, self.data_path)

    def class_logits(self) -> torch.nn.Module:
        """The torch model as [n, K] class logits (see :class:`ClassLogits`)."""
        if self.kind != "torch":
            raise ConfigError(
                f"{self.model_path} is a scikit-learn model; this needs a torch module "
                "(TorchScript .pt)"
            )
        return ClassLogits(self.model, self.output or "logit", self.n_outputs)


def class_indices(labels: Sequence[str], classes: Sequence[str], where: Any = None) -> Tensor:
    """Labels (as written) -> indices into ``classes``: by name, numerically ("1.0" is class
    "1"), or as the index itself where the classes have non-numeric names (labels 0/1 for
    classes = ["refuse", "approve"]); an unknown label is one error line."""
    index = {c: i for i, c in enumerate(classes)}
    numeric = {}
    for c, i in index.items():
        v = _number(c)
        if v is not None:
            numeric[v] = i
    out = []
    for lab in labels:
        if lab in index:
            out.append(index[lab])
            continue
        v = _number(lab)
        if v is not None and v in numeric:
            out.append(numeric[v])
            continue
        if v is not None and not numeric and v.is_integer() and 0 <= v < len(classes):
            out.append(int(v))  # named classes, labels written as their indices
            continue
        raise ConfigError(
            f"label {lab!r}{f' in {where}' if where else ''} is not one of the model's classes "
            f"({', '.join(classes)}); name the classes in order with classes = [...] in --features"
        )
    return torch.tensor(out, dtype=torch.long)


def _class_name(c: Any) -> str:
    if isinstance(c, float) or (hasattr(c, "dtype") and getattr(c.dtype, "kind", "") == "f"):
        return _show_number(float(c))
    return str(c.item() if hasattr(c, "item") else c)


def fit_model(model: LoadedModel, table: Table) -> ForeignDecision:
    """Check that ``model`` takes ``table``'s rows (feature count, names, a probe prediction)
    and read its classes and output kind; see :class:`ForeignDecision`."""
    if model.kind == "sklearn":
        return _fit_sklearn(model, table)
    return _fit_torch(model, table)


def _columns_hint(table: Table, want: int) -> str:
    cols = ", ".join(table.names)
    have = len(table.names)
    hint = ""
    if table.label_name is None and have == want + 1:
        hint = "; if one of them is the label, pass --label NAME"
    elif have > want:
        hint = "; drop the extra columns"
    elif have < want:
        hint = "; the CSV needs every column the model was trained on"
    dropped = f" (after dropping the label {table.label_name!r})" if table.label_name else ""
    return f"{table.path} has {have} feature columns{dropped}: {cols}{hint}"


class _QuietEstimator:
    """An estimator whose ``predict_proba`` takes plain arrays without scikit-learn's warning
    that the model was fitted with feature names (the columns were matched by name already)."""

    def __init__(self, est: Any) -> None:
        self._est = est

    def predict_proba(self, x: Any) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return self._est.predict_proba(x)

    def __getattr__(self, name: str) -> Any:
        if name == "_est":  # not yet set (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self._est, name)


def _fit_sklearn(model: LoadedModel, table: Table) -> ForeignDecision:
    est, table_ = model.obj, table
    notes: list[str] = []
    names_in = getattr(est, "feature_names_in_", None)
    if names_in is not None:
        names_in = [str(n) for n in names_in]
        if set(names_in) != set(table.names) or len(names_in) != len(table.names):
            missing = [n for n in names_in if n not in table.names]
            extra = [n for n in table.names if n not in names_in]
            raise ConfigError(
                f"{model.path} was trained on columns {', '.join(names_in)}; {table.path} "
                + (f"lacks {', '.join(missing)}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"has extra {', '.join(extra)}" if extra else "")
                + (
                    " (pass --label NAME for the label column)"
                    if extra and table.label_name is None
                    else ""
                )
            )
        if names_in != table.names:
            order = [table.names.index(n) for n in names_in]
            table_ = Table(
                table.path,
                tuple(table.features[j] for j in order),
                table.rows[:, order],
                table.label_name,
                table.labels,
                table.classes,
                table.output,
            )
            notes.append("columns reordered to the model's feature_names_in_")
    want = getattr(est, "n_features_in_", None)
    if want is not None and int(want) != len(table_.names):
        raise ConfigError(
            f"{model.path} takes {int(want)} features but {_columns_hint(table_, int(want))}"
        )
    # only an estimator fitted on named columns warns about plain arrays; the wrapper takes
    # the estimator's class name so messages name the user's model, not the wrapper
    quiet = type(type(est).__name__, (_QuietEstimator,), {})(est) if names_in is not None else est
    try:
        p = quiet.predict_proba(table_.rows[:PROBE_ROWS].numpy())
    except Exception as exc:
        raise ConfigError(
            f"{model.path} failed on the rows of {table.path} ({_first_line(exc)}); the CSV "
            "must hold the model's input columns, numerically encoded"
        ) from None
    k = int(getattr(p, "shape", (0, 0))[1]) if getattr(p, "ndim", 0) == 2 else 0
    if k < 2:
        raise ConfigError(
            f"{model.path}'s predict_proba does not return [n, classes] probabilities"
        )
    raw = getattr(est, "classes_", None)
    classes = tuple(_class_name(c) for c in raw) if raw is not None else None
    if table.classes is not None:
        classes = table.classes  # the user's names win
    classes = classes or tuple(str(i) for i in range(k))
    if len(classes) != k:
        raise ConfigError(f"{len(classes)} class names given for a model with {k} classes")
    return ForeignDecision(
        quiet,
        "sklearn",
        model.format,
        table_.features,
        table_.rows,
        classes,
        None,
        k,
        table.labels,
        table.label_name,
        model.path,
        table.path,
        tuple(notes),
    )


def _fit_torch(model: LoadedModel, table: Table) -> ForeignDecision:
    module: torch.nn.Module = model.obj
    dtype = torch_dtype(module)
    wrapped = TorchRows(module, dtype).eval()
    probe = table.rows[:PROBE_ROWS]
    try:
        with torch.no_grad():
            out = wrapped(probe)
    except Exception as exc:
        want = _first_width(module)
        if want is not None and want != len(table.names):
            raise ConfigError(
                f"{model.path} takes {want} features but {_columns_hint(table, want)}"
            ) from None
        raise ConfigError(
            f"{model.path} failed on the rows of {table.path} ({_first_line(exc)}); it must map "
            f"float rows [n, {len(table.names)}] to class scores [n, K]"
        ) from None
    if not isinstance(out, Tensor) or out.shape[0] != probe.shape[0] or out.dim() > 2:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ConfigError(
            f"{model.path} returned {shape} for {probe.shape[0]} rows; it must return one logit "
            "[n] / [n, 1] or class scores [n, K]"
        )
    n_out = 1 if out.dim() == 1 else int(out.shape[1])
    k = max(2, n_out)
    notes = []
    output = table.output
    if output is None:
        output = _guess_output(out.double(), n_out)
        if output == "probability":
            notes.append(
                "reading the model's outputs as probabilities (all in [0, 1]"
                + (", rows summing to 1)" if n_out > 1 else ")")
                + '; set output = "logit" in --features to override'
            )
    classes = table.classes or tuple(str(i) for i in range(k))
    if len(classes) != k:
        raise ConfigError(f"{len(classes)} class names given for a model with {k} classes")
    return ForeignDecision(
        wrapped,
        "torch",
        model.format,
        table.features,
        table.rows,
        classes,
        output,
        n_out,
        table.labels,
        table.label_name,
        model.path,
        table.path,
        tuple(notes),
    )


def _first_width(module: torch.nn.Module) -> int | None:
    """The input width of the module's first weight matrix (a hint for error messages)."""
    for p in module.parameters():
        if p.dim() == 2:
            return int(p.shape[1])
    return None


def _guess_output(out: Tensor, n_out: int) -> str:
    if not bool(torch.isfinite(out).all()) or bool((out < 0).any()) or bool((out > 1).any()):
        return "logit"
    if n_out == 1:
        return "probability"
    return (
        "probability"
        if bool(torch.allclose(out.sum(1), torch.ones(len(out), dtype=out.dtype), atol=1e-5))
        else "logit"
    )


def decision_from_files(
    model_path: str | Path,
    data_path: str | Path,
    *,
    trust: bool = False,
    features_path: str | Path | None = None,
    label: str | None = None,
) -> ForeignDecision:
    """Load a user's model file and CSV, check that they fit; see the module docstring."""
    model = load_model(model_path, trust=trust)
    table = read_table(data_path, features_path=features_path, label=label)
    return fit_model(model, table)


__all__ = [
    "ACCEPTED",
    "ClassLogits",
    "ForeignDecision",
    "LoadedModel",
    "Table",
    "TorchRows",
    "class_indices",
    "decision_from_files",
    "fit_model",
    "load_model",
    "read_table",
]
