"""A user's own model file: safe loading (skops, TorchScript, pickle only with --trust), the CSV
and TOML of rows, the checks that model and data fit, ``load_decision`` for explain, and
``trace-data --model``. Every model is trained here, in tmp_path, in milliseconds."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from interplab.cli.main import app
from interplab.errors import ConfigError
from interplab.models import foreign as F

try:
    import skops.io as skops_io
except ImportError:  # pragma: no cover - skops comes with the rationales extra
    skops_io = None
needs_skops = pytest.mark.skipif(skops_io is None, reason="needs skops")

HOUSING = ("free", "own", "rent")  # sorted: the codes 0, 1, 2 inferred from the CSV


def _data(n: int = 90, seed: int = 0, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Rows (income: numeric 20..80, housing: code 0..2, dependents: 0..3) and labels that
    depend on income and housing (separable enough for a linear model)."""
    rng = np.random.default_rng(seed)
    x = np.c_[rng.uniform(20, 80, n), rng.integers(0, 3, n), rng.integers(0, 4, n)]
    score = (x[:, 0] - 50) / 10 + (x[:, 1] == 1) * 1.5
    if classes == 2:
        y = (score > 0).astype(int)
    else:
        y = np.digitize(score, [-1.0, 1.0])  # 0, 1, 2
    return x, y


def _write_csv(path: Path, x: np.ndarray, y: np.ndarray | None, names=("a", "b", "c")) -> Path:
    """The rows as a user would write them: housing as words, the label as ``y``."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["income", "housing", "dependents", *(["y"] if y is not None else [])])
        for i, r in enumerate(x):
            cells = [f"{r[0]:.2f}", HOUSING[int(r[1])], int(r[2])]
            w.writerow(cells + ([int(y[i])] if y is not None else []))
    return path


def _sklearn(tmp_path: Path, classes: int = 2, name: str = "m.skops"):
    from sklearn.linear_model import LogisticRegression

    x, y = _data(classes=classes)
    est = LogisticRegression(max_iter=500).fit(x, y)
    path = tmp_path / name
    skops_io.dump(est, path)
    return path, _write_csv(tmp_path / "rows.csv", x, y), est, x


class Net(torch.nn.Module):
    """Standardise the rows, then a linear map to class logits."""

    def __init__(self, mean, std, coef, bias) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.lin = torch.nn.Linear(coef.shape[1], coef.shape[0])
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor(coef))
            self.lin.bias.copy_(torch.tensor(bias))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.lin((z - self.mean) / self.std)


def _torch_net(x: np.ndarray, y: np.ndarray, k: int) -> torch.nn.Module:
    """A torch classifier (standardise, then linear) with a logistic regression's weights:
    trained in milliseconds, unlike a torch optimiser's first steps on a busy machine."""
    from sklearn.linear_model import LogisticRegression

    mean, std = x.mean(0), x.std(0)
    est = LogisticRegression(max_iter=500).fit((x - mean) / std, y)
    coef, bias = est.coef_, est.intercept_
    if k == 2:  # one logit z: class logits (0, z)
        coef, bias = np.r_[np.zeros_like(coef), coef], np.r_[0.0, bias]

    return Net(mean, std, coef, bias)


def _save_torchscript(net: torch.nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript (still supported)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), str(path))
    return path


def _torchscript(tmp_path: Path, k: int = 2, name: str = "net.pt"):
    x, y = _data(classes=k)
    net = _torch_net(x, y, k)
    path = _save_torchscript(net, tmp_path / name)
    return path, _write_csv(tmp_path / "rows.csv", x, y), net, x, y


def _one_line(res) -> str:
    out = res.output.strip()
    assert res.exit_code != 0, out
    assert "Traceback" not in out and len(out.splitlines()) == 1, out
    return out


# ----------------------------------------------------------------------------- model files
@needs_skops
def test_good_skops_loads_with_its_classes_and_inferred_features(tmp_path):
    path, rows, est, x = _sklearn(tmp_path)
    found = F.decision_from_files(path, rows, label="y")
    assert found.kind == "sklearn" and found.format == "skops"
    assert found.classes == ("0", "1")
    kinds = [(f.name, f.kind) for f in found.features]
    assert kinds == [("income", "numeric"), ("housing", "categorical"), ("dependents", "ordinal")]
    assert found.features[1].values == HOUSING
    assert found.features[2].values == ("0", "1", "2", "3")
    lo, hi = found.features[0].span
    assert lo == pytest.approx(x[:, 0].min(), abs=0.01) and hi == pytest.approx(
        x[:, 0].max(), abs=0.01
    )
    # the rows the model sees are the rows it was trained on (housing words -> their codes)
    assert np.allclose(found.rows.numpy(), x, atol=0.006)
    assert np.allclose(
        found.model.predict_proba(found.rows.numpy()), est.predict_proba(x), atol=1e-3
    )
    assert found.labels is not None and found.label_indices().tolist()[:5] == [
        int(v) for v in np.asarray(found.labels[:5], dtype=int)
    ]


@needs_skops
def test_skops_with_sklearn_internal_types_loads_but_foreign_types_are_refused(tmp_path):
    import fractions

    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    x, y = _data()
    forest = tmp_path / "forest.skops"
    skops_io.dump(RandomForestClassifier(3, random_state=0).fit(x, y), forest)
    assert skops_io.get_untrusted_types(file=forest)  # sklearn's Tree: not skops-default
    assert F.load_model(forest).kind == "sklearn"

    est = LogisticRegression().fit(x, y)
    est.note = fractions.Fraction(1, 3)
    odd = tmp_path / "odd.skops"
    skops_io.dump(est, odd)
    with pytest.raises(ConfigError, match="fractions.Fraction.*--trust"):
        F.load_model(odd)
    assert F.load_model(odd, trust=True).obj.note == fractions.Fraction(1, 3)


def test_pickle_is_refused_unless_trusted(tmp_path):
    from sklearn.linear_model import LogisticRegression

    x, y = _data()
    path = tmp_path / "m.pkl"
    joblib.dump(LogisticRegression().fit(x, y), path)
    with pytest.raises(ConfigError, match="can run code when loaded; pass --trust"):
        F.load_model(path)
    assert F.load_model(path, trust=True).kind == "sklearn"
    joblib.dump(LogisticRegression().fit(x, y), tmp_path / "m.joblib")
    with pytest.raises(ConfigError, match="--trust"):
        F.load_model(tmp_path / "m.joblib")


def test_torchscript_loads_and_torch_save_is_a_pickle(tmp_path):
    path, rows, net, x, _ = _torchscript(tmp_path)
    found = F.decision_from_files(path, rows, label="y")
    assert found.kind == "torch" and found.format == "torchscript" and found.output == "logit"
    assert found.classes == ("0", "1") and found.n_outputs == 2
    with torch.no_grad():  # float64 rows in, the same outputs as the float32 module
        want = net(torch.tensor(x, dtype=torch.float32))
        assert torch.allclose(found.model(found.rows), want, atol=1e-3)
    torch.save(net, tmp_path / "full.pt")
    with pytest.raises(ConfigError, match="not TorchScript.*--trust"):
        F.load_model(tmp_path / "full.pt")
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ConfigError, match="state_dict"):
        F.load_model(tmp_path / "weights.pt", trust=True)


def test_bad_extension_missing_and_corrupt_files(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"\.skops.*\.pt.*\.pkl"):
        F.load_model(tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="does not exist"):
        F.load_model(tmp_path / "nope.skops")
    (tmp_path / "bad.skops").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="could not read .* skops"):
        F.load_model(tmp_path / "bad.skops")
    (tmp_path / "bad.pt").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="--trust"):  # not TorchScript: treated as a pickle
        F.load_model(tmp_path / "bad.pt")


def test_malformed_csv_is_one_clear_error(tmp_path):
    p = tmp_path / "r.csv"
    for text, message in [
        ("", "is empty"),
        ("a,b\n", "header but no rows"),
        ("a,b\n1,2\n3\n", "line 3 has 1 values but the header names 2"),
        ("1,2\n3,4\n", "must name the columns"),
        ("a,a\n1,2\n", "more than once"),
        ("a,b\n1,\n", "line 2: column 'b' has no value"),
    ]:
        p.write_text(text)
        with pytest.raises(ConfigError, match=message):
            F.read_table(p)
    p.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="label column 'y' is not in"):
        F.read_table(p, label="y")


@needs_skops
def test_feature_count_mismatch_says_how_to_fix(tmp_path):
    path, rows, _, x = _sklearn(tmp_path)
    with pytest.raises(ConfigError, match="takes 3 features but .* 4 feature columns.*--label"):
        F.decision_from_files(path, rows)  # the label left in
    short = tmp_path / "short.csv"
    short.write_text("income,housing\n50,own\n60,rent\n")
    with pytest.raises(ConfigError, match="takes 3 features but .* 2 feature columns"):
        F.decision_from_files(path, short)
    tpath, trows, *_ = _torchscript(tmp_path, name="n.pt")
    with pytest.raises(ConfigError, match="takes 3 features but .* 4 feature columns.*--label"):
        F.decision_from_files(tpath, trows)


@needs_skops
def test_columns_are_matched_by_the_names_the_model_was_fitted_with(tmp_path):
    pd = pytest.importorskip("pandas")
    from sklearn.linear_model import LogisticRegression

    x, y = _data()
    frame = pd.DataFrame({"dependents": x[:, 2], "income": x[:, 0], "housing": x[:, 1]})
    est = LogisticRegression(max_iter=500).fit(frame, y)
    skops_io.dump(est, tmp_path / "named.skops")
    rows = _write_csv(tmp_path / "rows.csv", x, y)  # columns in another order
    found = F.decision_from_files(tmp_path / "named.skops", rows, label="y")
    assert [f.name for f in found.features] == ["dependents", "income", "housing"]
    assert found.notes and "reordered" in found.notes[0]
    # same probabilities as the estimator on its own frame, and no feature-name warning
    # (pytest turns warnings into errors here)
    assert np.allclose(
        found.model.predict_proba(found.rows.numpy()), est.predict_proba(frame), atol=1e-3
    )
    assert type(found.model).__name__ == "LogisticRegression"
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("income,housing,kids,y\n50,own,1,0\n")
    with pytest.raises(ConfigError, match="lacks dependents; has extra kids"):
        F.decision_from_files(tmp_path / "named.skops", wrong, label="y")


def test_toml_declares_kinds_order_ranges_and_flags(tmp_path):
    x, y = _data()
    rows = _write_csv(tmp_path / "rows.csv", x, y)
    spec = tmp_path / "f.toml"
    spec.write_text(
        'label = "y"\nclasses = ["refuse", "approve"]\n'
        '[features.income]\nkind = "numeric"\nrange = [0, 100]\nunit = "k"\n'
        '[features.housing]\nkind = "categorical"\ncategories = ["rent", "own", "free"]\n'
        "protected = true\nimmutable = true\n"
        "[features.dependents]\nimmutable = true\n"
    )
    t = F.read_table(rows, features_path=spec)
    inc, hou, dep = t.features
    assert (inc.kind, inc.span, inc.unit) == ("numeric", (0.0, 100.0), "k")
    assert hou.values == ("rent", "own", "free") and hou.protected and hou.immutable
    # codes follow the declared order, not the sorted one
    with rows.open(newline="") as fh:
        words = [r[1] for r in csv.reader(fh)][1:]
    assert [hou.values[int(c)] for c in t.rows[:, 1].tolist()] == words
    assert dep.kind == "ordinal" and dep.immutable and not dep.protected
    assert t.label_name == "y" and t.classes == ("refuse", "approve")
    assert t.labels is not None
    assert F.class_indices(t.labels, t.classes).tolist() == [int(v) for v in y]
    assert F.class_indices(["approve", "1.0", "0"], t.classes).tolist() == [1, 1, 0]
    with pytest.raises(ConfigError, match="'maybe' .* not one of the model's classes"):
        F.class_indices(["maybe"], t.classes)

    for body, message in [
        ('[features.income]\nkind = "numeric"\nrange = [0, 40]\n', "outside its declared range"),
        ('[features.housing]\nkind = "numeric"\n', "declared numeric .* holds '(own|rent|free)'"),
        (
            '[features.housing]\nkind = "categorical"\ncategories = ["own", "rent"]\n',
            "'free' is neither",
        ),
        ('[features.income]\nkinds = "numeric"\n', "unknown key"),
        ('[features.nope]\nkind = "numeric"\n', "lacks"),
        ('[features.income]\nkind = "fuzzy"\n', "kind 'fuzzy'"),
        ("label = [\n", "not valid TOML"),
    ]:
        spec.write_text(body)
        with pytest.raises(ConfigError, match=message):
            F.read_table(rows, features_path=spec, label="y")


# ----------------------------------------------------------------------------- load_decision
@needs_skops
def test_load_decision_binary_sklearn_explains_with_valid_recourse(tmp_path):
    from interplab.cli._model_file import load_decision
    from interplab.methods.rationales import explain

    path, rows, est, x = _sklearn(tmp_path)
    model, table, background = load_decision(path, rows, label="y")
    assert tuple(model.outcomes) == ("0", "1")
    # the decision is the estimator's own
    assert model.decide(table).numpy().tolist() == (est.predict(x) == 1).tolist()
    rat = explain(model, table[0], baseline=background, seed=0)
    assert rat.recourse.options and any(o.valid for o in rat.recourse.options)


def _multiclass_in() -> bool:
    from interplab.methods.rationales import DecisionModel

    return hasattr(DecisionModel, "versus") and hasattr(DecisionModel, "class_scores")


@needs_skops
def test_load_decision_multiclass_sklearn(tmp_path):
    if not _multiclass_in():
        pytest.xfail("needs the multi-class DecisionModel (issue 24, H3)")
    from interplab.cli._model_file import load_decision

    path, rows, est, x = _sklearn(tmp_path, classes=3)
    model, table, _ = load_decision(path, rows, label="y")
    assert tuple(model.classes) == ("0", "1", "2")
    scores = model.class_scores(table)
    assert scores.shape == (len(x), 3)
    assert scores.argmax(1).tolist() == est.predict(x).tolist()


def test_load_decision_torch_and_bad_files_are_one_line(tmp_path):
    from interplab.cli._model_file import load_decision

    path, rows, net, x, y = _torchscript(tmp_path)
    model, table, _ = load_decision(path, rows, label="y")
    with torch.no_grad():
        pred = net(torch.tensor(x, dtype=torch.float32)).argmax(1)
    assert model.decide(table).long().tolist() == pred.tolist()
    joblib.dump(net, tmp_path / "net.pkl")
    with pytest.raises(ConfigError, match="--trust"):
        load_decision(tmp_path / "net.pkl", rows, label="y")


class Sigmoid(torch.nn.Module):
    """A binary model whose output is one probability (the class-1 softmax of ``inner``)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.inner(z)
        return torch.sigmoid(out[:, 1] - out[:, 0])


def test_load_decision_torch_multiclass_and_probability_output(tmp_path):
    if not _multiclass_in():
        pytest.xfail("needs the multi-class DecisionModel (issue 24, H3)")
    from interplab.cli._model_file import load_decision

    path, rows, net, x, y = _torchscript(tmp_path, k=3)
    model, table, _ = load_decision(path, rows, label="y")
    with torch.no_grad():
        want = net(torch.tensor(x, dtype=torch.float32)).argmax(1)
    assert model.classes == ("0", "1", "2")
    assert model.class_scores(table).argmax(1).tolist() == want.tolist()

    x2, y2 = _data()
    net2 = _torch_net(x2, y2, 2)
    _save_torchscript(Sigmoid(net2), tmp_path / "sig.pt")
    rows2 = _write_csv(tmp_path / "rows2.csv", x2, y2)
    spec = tmp_path / "f.toml"
    spec.write_text('classes = ["no", "yes"]\n')
    found = F.decision_from_files(tmp_path / "sig.pt", rows2, label="y", features_path=spec)
    assert found.output == "probability" and "probabilities" in found.notes[0]
    model, table, _ = load_decision(tmp_path / "sig.pt", rows2, label="y", features=spec)
    assert tuple(model.outcomes) == ("no", "yes")
    with torch.no_grad():  # the logit of the probability is the inner model's logit gap
        gap = net2(torch.tensor(x2, dtype=torch.float32)).diff(dim=1)[:, 0].double()
    assert torch.allclose(model.logit(table), gap, atol=1e-3)
    spec.write_text('classes = ["no", "yes"]\noutput = "logit"\n')
    assert (
        F.decision_from_files(tmp_path / "sig.pt", rows2, label="y", features_path=spec).output
        == "logit"
    )


# ----------------------------------------------------------------------------- trace-data --model
def _trace(*args: str):
    return CliRunner().invoke(app, ["trace-data", *args])


def _train_test(tmp_path: Path):
    x, y = _data(n=80, seed=1)
    xt, yt = _data(n=12, seed=2)
    net = _torch_net(x, y, 2)
    model = _save_torchscript(net, tmp_path / "net.pt")
    train = _write_csv(tmp_path / "train.csv", x, y)
    test = _write_csv(tmp_path / "test.csv", xt, yt)
    return model, train, test, y, yt


def _any_module_tda() -> bool:
    import inspect

    from interplab.methods.data_attribution import attribute_data

    return "loss" in inspect.signature(attribute_data).parameters


def test_trace_data_model_file_ranks_training_rows(tmp_path):
    if not _any_module_tda():
        pytest.xfail("needs the any-module attribute_data (issue 24, H2)")
    model, train, test, y, yt = _train_test(tmp_path)
    out = tmp_path / "t.json"
    res = _trace(
        "--model", str(model), "--train", str(train), "--test", str(test), "--label", "y",
        "--top", "5", "--json", str(out), "--html", str(tmp_path / "t.html"),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["method"] == "trak" and len(data["tests"]) == len(yt) and data["n_train"] == len(y)
    same = 0
    for t in data["tests"]:
        scores = [r["score"] for r in t["top"]]
        assert len(scores) == 5 and scores == sorted(scores, reverse=True)
        assert all(0 <= r["train_index"] < len(y) for r in t["top"])
        assert t["label_attributed"] == str(int(yt[t["index"]]))
        same += t["top"][0]["label"] == t["label_attributed"]
    # a training row of the same class pushes the weights towards that class: the top row
    # should share the test row's label more often than not
    assert same > len(yt) / 2, same
    page = (tmp_path / "t.html").read_text()
    assert page.count("data-train-index=") == 5 * len(yt) and "http" not in page
    res = _trace("--model", str(model), "--train", str(train), "--test", str(test),
                 "--label", "y", "--index", "3", "--json", str(out))  # fmt: skip
    assert res.exit_code == 0 and [t["index"] for t in json.loads(out.read_text())["tests"]] == [3]


@needs_skops
def test_trace_data_model_file_bad_input_is_one_line(tmp_path):
    model, train, test, *_ = _train_test(tmp_path)
    base = ["--train", str(train), "--test", str(test), "--label", "y"]
    path, *_ = _sklearn(tmp_path)
    assert "scikit-learn model" in _one_line(_trace("--model", str(path), *base))
    torch.save(torch.nn.Linear(3, 2), tmp_path / "p.pt")
    assert "--trust" in _one_line(_trace("--model", str(tmp_path / "p.pt"), *base))
    (tmp_path / "m.h5").write_bytes(b"x")
    assert ".skops" in _one_line(_trace("--model", str(tmp_path / "m.h5"), *base))
    assert "--label" in _one_line(_trace("--model", str(model), *base[:4]))
    wide = tmp_path / "wide.csv"
    wide.write_text("income,housing,dependents,extra,y\n50,own,1,3,0\n60,rent,2,4,1\n")
    out = _one_line(_trace("--model", str(model), "--train", str(wide), "--test", str(test),
                           "--label", "y"))  # fmt: skip
    assert "takes 3 features" in out
    odd = tmp_path / "odd.csv"
    odd.write_text("income,housing,dependents,y\n50,castle,1,0\n")
    assert "castle" in _one_line(_trace("--model", str(model), "--train", str(train),
                                        "--test", str(odd), "--label", "y"))  # fmt: skip
    assert "out of range" in _one_line(_trace("--model", str(model), *base, "--index", "99"))
    assert "go(es) with --model" in _one_line(_trace("digits-logreg", "--train", str(train)))
    for method in ("ekfac", "representer"):  # need layers / a weight decay a file lacks
        assert method in _one_line(_trace("--model", str(model), *base, "--method", method))


# ----------------------------------------------------------------------------- explain --model


def _explain(*args: str):
    return CliRunner().invoke(app, ["explain", *args])


@needs_skops
def test_explain_model_file_prints_a_valid_recourse(tmp_path):
    path, rows, est, x = _sklearn(tmp_path)
    out = tmp_path / "r.json"
    res = _explain("--model", str(path), "--data", str(rows), "--label", "y", "--row", "0",
                   "--json", str(out))  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["decision"] == str(int(est.predict(x[:1])[0]))
    assert any(o["valid"] for o in data["recourse"])


@needs_skops
def test_explain_multiclass_model_file_with_target(tmp_path):
    path, rows, est, x = _sklearn(tmp_path, classes=3)
    out = tmp_path / "r.json"
    res = _explain("--model", str(path), "--data", str(rows), "--label", "y", "--row", "1",
                   "--target", "2", "--json", str(out))  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["classes"] == ["0", "1", "2"] and data["target"] == "2"
    assert data["decision"] == str(int(est.predict(x[1:2])[0]))
    res = _explain("--model", str(path), "--data", str(rows), "--label", "y", "--row", "1",
                   "--target", "7")  # fmt: skip
    assert "7" in _one_line(res)


@needs_skops
def test_explain_refuses_a_pickle_in_one_line(tmp_path):
    _, rows, est, _ = _sklearn(tmp_path)
    joblib.dump(est, tmp_path / "m.pkl")
    out = _one_line(_explain("--model", str(tmp_path / "m.pkl"), "--data", str(rows),
                             "--label", "y", "--row", "0"))  # fmt: skip
    assert "--trust" in out


@needs_skops
def test_explain_trusted_pickle_runs(tmp_path):
    _, rows, est, _ = _sklearn(tmp_path)
    joblib.dump(est, tmp_path / "m.pkl")
    res = _explain("--model", str(tmp_path / "m.pkl"), "--data", str(rows), "--label", "y",
                   "--row", "0", "--trust")  # fmt: skip
    assert res.exit_code == 0, res.output


@needs_skops
def test_explain_model_file_row_out_of_range(tmp_path):
    path, rows, *_ = _sklearn(tmp_path)
    out = _one_line(_explain("--model", str(path), "--data", str(rows), "--label", "y",
                             "--row", "500"))  # fmt: skip
    assert "out of range" in out and "0..89" in out


def test_explain_needs_an_organism_or_a_model_file_not_both(tmp_path):
    assert "--model" in _one_line(_explain("--row", "0"))
    both = _one_line(_explain("credit-rule", "--model", str(tmp_path / "m.skops")))
    assert "not both" in both
    assert "go with --model" in _one_line(_explain("credit-rule", "--data", "x.csv"))
