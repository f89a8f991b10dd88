"""The one-decision page and the bench section."""

import pytest

from interplab.methods.rationales import DecisionModel, explain
from interplab.report.rationales import decision_page, organism_table
from interplab.zoo.tabular import get


@pytest.fixture(scope="module")
def page_data():
    org = get("credit-linear")
    model = DecisionModel.from_torch(org.model, org.features, outcomes=org.data.outcomes)
    return explain(model, org.test_rows[5], baseline=org.background).to_dict()


def test_page_has_outcome_factors_recourse_and_checked_claims(page_data):
    page = decision_page(page_data)
    assert page.count("class='factor'") == 10
    assert page.count("class='claim passed'") == len(page_data["claims"])
    assert "What would change the outcome" in page and "How it was checked" in page
    assert "<script" not in page and "src=" not in page and "@import" not in page


def test_bench_table_marks_baselines():
    est = {
        "kernel_shap": {"claim_accuracy": {"value": 0.97, "low": 0.9, "high": 0.99, "n": 100}},
        "random": {"claim_accuracy": {"value": 0.5, "low": 0.4, "high": 0.6, "n": 100}},
    }
    html = organism_table("credit-rule", est, {"random": {"stability": "why"}})
    assert "class='baseline'" in html and "(baseline)" in html and "n=100" in html


def test_bench_table_puts_oracles_apart_and_unchecked_claims_beside_checked():
    row = {
        "top_k_recall": {"value": 1.0, "n": 16},
        "claim_accuracy": {"value": 1.0, "n": 9},
        "claim_accuracy_unchecked": {"value": 0.7, "n": 12},
    }
    html = organism_table(
        "credit-linear", {"kernel_shap": row, "oracle:linear_shap": row, "random": row}, {}
    )
    assert html.index("kernel_shap") < html.index("oracle:linear_shap") < html.index(">random")
    assert "(oracle: exact values, not ranked)" in html
    head = html[: html.index("</tr>")]
    assert (
        head.index("top_k_recall")
        < head.index("claim_accuracy_unchecked")
        < head.index(">claim_accuracy<")
    )


@pytest.mark.slow
@pytest.mark.browser
def test_decision_page_renders_in_chromium(page_data, tmp_path):
    from tests.report.browser import Browser

    path = tmp_path / "why.html"
    path.write_text(decision_page(page_data), encoding="utf-8")
    browser = Browser(tmp_path / "profile")
    try:
        browser.load(path.resolve().as_uri())
        stats = browser.evaluate("""JSON.stringify({
            bars: [...document.querySelectorAll('.bar')].filter(b => b.getBoundingClientRect().width > 0).length,
            outcome: document.getElementById('outcome').getBoundingClientRect().height,
            claims: document.querySelectorAll('.claim.passed').length,
            overflow: document.documentElement.scrollWidth > window.innerWidth + 1})""")
        import json

        stats = json.loads(stats)
        assert stats["bars"] >= 5 and stats["outcome"] > 20
        assert stats["claims"] == len(page_data["claims"]) and not stats["overflow"]
        assert browser.errors() == []
    finally:
        browser.close()
