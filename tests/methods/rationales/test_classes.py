"""Decisions among several classes: DecisionModel.versus, explain's contrast and recourse to a class.

The multi-class checks run on scikit-learn classifiers (the estimator's own ``predict`` is the
judge of every recourse option) and on small torch modules; the two-class checks show that a
binary model's contrasts are its own logit, so K == 2 behaves as before.
"""

import numpy as np
import pytest
import torch

from interplab.data.tabular import Feature
from interplab.errors import ConfigError, UnknownNameError
from interplab.methods.rationales import (
    DecisionModel,
    attribute,
    explain,
    find_recourse,
    fit_surrogate,
    nearest_neighbour,
    random_recourse,
)
from interplab.methods.rationales.rationale import check_claim
from interplab.zoo.tabular import get

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    bunch = load_iris()
    x, y = bunch.data, bunch.target
    est = LogisticRegression(max_iter=1000).fit(x[::2], y[::2])  # even rows: training
    feats = [
        Feature(
            str(n).replace(" (cm)", "").replace(" ", "_"),
            "numeric",
            low=float(x[:, j].min()),
            high=float(x[:, j].max()),
            unit="cm",
        )
        for j, n in enumerate(bunch.feature_names)
    ]
    names = tuple(str(n) for n in bunch.target_names)
    model = DecisionModel.from_predict_proba(est, feats, outcomes=names)
    return est, model, torch.tensor(x[1::2]), torch.tensor(x[::2])


def test_classes_scores_and_predict_follow_the_estimator(iris):
    est, model, test, _ = iris
    assert model.classes == ("setosa", "versicolor", "virginica") and model.n_classes == 3
    scores = model.class_scores(test)
    assert scores.shape == (test.shape[0], 3)
    assert torch.allclose(scores.exp(), torch.tensor(est.predict_proba(test.numpy())), atol=1e-9)
    assert np.array_equal(model.predict(test).numpy(), est.predict(test.numpy()))
    default = DecisionModel.from_predict_proba(est, model.features)  # names from classes_
    assert default.classes == ("0", "1", "2")


def test_versus_logits_equal_their_formulas(iris):
    est, model, test, _ = iris
    logp = torch.tensor(est.predict_proba(test.numpy())).clamp_min(1e-12).log()
    pred = torch.tensor(est.predict(test.numpy()))
    for t in range(3):
        others = [j for j in range(3) if j != t]
        for a in others:
            got = model.versus(model.classes[t], a).logit(test)
            assert torch.allclose(got, logp[:, t] - logp[:, a], atol=1e-9)
        rest = model.versus(t, "rest").logit(test)
        p = logp[:, t].exp()
        assert torch.allclose(rest, torch.log(p) - torch.log1p(-p), atol=1e-6)
        anyone = model.versus(t, "any")
        assert torch.allclose(anyone.logit(test), logp[:, t] - logp[:, others].max(1).values)
        assert torch.equal(anyone.decide(test), pred == t)  # > 0 iff t is predicted
    v = model.versus("virginica", "versicolor")
    assert v.outcomes == ("versicolor", "virginica") and v.contrast.text == (
        "'virginica' rather than 'versicolor'"
    )
    assert model.versus(0, "rest").outcomes == ("not setosa", "setosa")


def test_recourse_to_each_class_makes_the_estimator_predict_it(iris):
    """Every option offered for a chosen class is predicted as that class by the scikit-learn
    estimator itself, for every row and every class the row does not already get."""
    est, model, test, bg = iris
    n_options = n_searches = 0
    for x in test[::10]:
        pred = int(est.predict(x[None].numpy())[0])
        for to in (c for c in range(3) if c != pred):
            rec = find_recourse(model, x, baseline=bg, to=model.classes[to])
            n_searches += 1
            assert rec.target == model.classes[to]
            for o in rec.options:
                assert o.valid and int(est.predict(o.row[None].numpy())[0]) == to
                n_options += 1
    # the search finds options (not an empty set that passes trivially)
    assert n_searches == 16 and n_options >= n_searches


def test_explain_a_class_rather_than_its_runner_up(iris):
    est, model, test, bg = iris
    x = test[26]  # a versicolor flower close to virginica
    pred = int(est.predict(x[None].numpy())[0])
    r = explain(model, x, baseline=bg, method="occlusion")
    probs = est.predict_proba(x[None].numpy())[0]
    runner = int(np.argsort(probs)[-2])
    assert r.outcome == model.classes[pred] and r.target == model.classes[pred]
    assert r.versus == model.classes[runner] and r.recourse_to == model.classes[runner]
    assert r.contrast == f"'{model.classes[pred]}' rather than '{model.classes[runner]}'"
    assert abs(r.probability - probs[pred]) < 1e-9
    assert r.recourse.options and all(
        int(est.predict(o.row[None].numpy())[0]) == runner for o in r.recourse.options
    )
    data = r.to_dict()
    assert data["classes"] == list(model.classes) and data["target"] == model.classes[pred]
    assert data["versus"] == model.classes[runner]
    assert data["recourse_to"] == model.classes[runner]
    assert set(data["probabilities"]) == set(model.classes)
    assert all(o["to"] == model.classes[runner] for o in data["recourse"])
    texts = [c.text for c in r.claims + r.dropped]
    assert any(f"would have predicted '{model.classes[runner]}'" in t for t in texts)
    assert all("versus" in c.params for c in r.claims + r.dropped)


def test_recourse_to_a_named_class_and_one_vs_rest(iris):
    est, model, test, bg = iris
    x = test[0]  # setosa
    assert int(est.predict(x[None].numpy())[0]) == 0
    r = explain(model, x, baseline=bg, method="occlusion", versus="rest", recourse_to="virginica")
    assert r.versus == "rest" and r.contrast == "'setosa' rather than the other classes"
    assert r.recourse.options
    for o in r.recourse.options:
        assert int(est.predict(o.row[None].numpy())[0]) == 2
    # explaining a class the row does not get: recourse goes to that class by default
    r = explain(model, x, baseline=bg, method="occlusion", target="versicolor")
    assert r.target == "versicolor" and r.recourse_to == "versicolor" and r.outcome == "setosa"


def test_claims_are_retested_on_their_own_contrast(iris):
    """A contrast claim re-checked with the K-class model gets the same verdict; its
    counterfactual is about the predicted class, so it fails where the prediction stays."""
    est, model, test, bg = iris
    x = test[26]
    r = explain(model, x, baseline=bg, method="occlusion")
    gen = torch.Generator().manual_seed(5)
    for c in r.claims:
        again = check_claim(c, model, x, bg, gen)
        assert again.passed, (c.text, again.evidence)
    cf = next(c for c in r.claims if c.kind == "counterfactual")
    wrong = type(cf)(cf.kind, cf.text, {**cf.params, "versus": [r.outcome, "any"]}, cf.test)
    assert not check_claim(wrong, model, x, bg, gen).passed


def test_binary_methods_refuse_a_multiclass_model_with_one_line(iris):
    _, model, test, bg = iris
    with pytest.raises(ConfigError, match="versus"):
        model.logit(test[:2])
    with pytest.raises(ConfigError, match="versus"):
        attribute(model, test[0], method="occlusion", baseline=bg)
    with pytest.raises(UnknownNameError, match="setosa.*versicolor.*virginica"):
        explain(model, test[0], baseline=bg, target="rose")
    with pytest.raises(UnknownNameError, match="classes are"):
        model.versus(7, "rest")
    with pytest.raises(ConfigError, match="same class"):
        model.versus("setosa", 0)
    with pytest.raises(ConfigError, match="already predicts 'setosa'"):
        explain(model, test[0], baseline=bg, recourse_to="setosa")
    with pytest.raises(ConfigError, match="2 classes.*3 class scores"):
        DecisionModel.from_predict_proba(iris[0], model.features, outcomes=("a", "b"))


def test_baselines_and_surrogate_handle_several_classes(iris):
    est, model, test, bg = iris
    x = test[26]
    runner = model.runner_up(x)
    for rec in (
        nearest_neighbour(model, x, baseline=bg),
        random_recourse(model, x, baseline=bg, seed=1),
    ):
        assert rec.target == model.classes[runner]
        for o in rec.options:
            assert o.valid == (int(est.predict(o.row[None].numpy())[0]) == runner)
    s = fit_surrogate(model, test, baseline=bg)
    assert s.predict(test).dtype == torch.long
    assert s.fidelity > s.majority_fidelity + 0.3  # iris: a depth-3 tree mimics it well
    assert any("virginica" in rule for rule in s.rules(model.classes))


def test_a_torch_module_with_class_logits_keeps_its_gradients_and_linear_oracle():
    """A linear 3-class torch model: each class-vs-class contrast is linear, so exact linear SHAP
    (through the contrast's ``linear``) equals integrated gradients and sums to the gap."""
    from interplab.zoo.tabular import ClassNet

    org = get("credit-linear")
    net = ClassNet(org.features, (), 3, mean=org.background.mean(0), std=org.background.std(0))
    model = DecisionModel.from_torch(net, org.features, outcomes=("a", "b", "c"))
    x, bg = org.test_rows[0], org.background
    with torch.no_grad():
        out = net(x[None])
    assert torch.allclose(model.class_scores(x[None]), out)
    v = model.versus("c", "a")
    assert torch.allclose(v.logit(x[None]), out[:, 2] - out[:, 0])
    exact = attribute(v, x, method="oracle:linear_shap", baseline=bg)
    ig = attribute(v, x, method="integrated_gradients", baseline=bg)
    assert torch.allclose(exact.values, ig.values, atol=1e-8)
    gap = float(v.logit(x[None])[0] - v.logit(bg).mean())
    assert abs(float(exact.values.sum()) - gap) < 1e-8
    with pytest.raises(ConfigError, match="linear"):  # one-vs-rest is not linear
        attribute(model.versus("c", "rest"), x, method="oracle:linear_shap", baseline=bg)
    ig_rest = attribute(model.versus("c", "rest"), x, method="integrated_gradients", baseline=bg)
    assert bool(torch.isfinite(ig_rest.values).all())


def test_two_classes_behave_as_before():
    """K == 2: every contrast of a binary model is its own logit (or its negation), and
    explaining the contrast 'approve' rather than 'refuse' is explaining the model."""
    org = get("credit-rule")
    model = DecisionModel.from_torch(org.model, org.features, outcomes=org.classes)
    x, rows, bg = org.test_rows[3], org.test_rows[:40], org.background
    assert model.classes == ("refuse", "approve")
    logit = model.logit(rows)
    for against in ("refuse", "rest", "any", 0):
        assert torch.equal(model.versus("approve", against).logit(rows), logit)
    assert torch.equal(model.versus("refuse", "approve").logit(rows), -logit)
    assert torch.equal(model.predict(rows), (logit > 0).long())
    a = explain(model, x, baseline=bg, method="occlusion").to_dict()
    b = explain(model.versus(1, 0), x, baseline=bg, method="occlusion").to_dict()
    for key in ("decision", "probability", "outcomes", "attributions", "recourse", "claims"):
        assert a[key] == b[key], key
    assert a["classes"] == ["refuse", "approve"] and a["target"] == "approve"
    # recourse to the other class of a binary model is the plain binary recourse
    plain = find_recourse(model, x, baseline=bg)
    other = model.classes[1 - int(model.predict(x[None])[0])]
    to = find_recourse(model, x, baseline=bg, to=other)
    assert [o.row.tolist() for o in plain.options] == [o.row.tolist() for o in to.options]
    assert plain.target is None and to.target == other
