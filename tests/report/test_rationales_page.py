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


def _with_failed_direction(data: dict) -> dict:
    """``data`` with its first passed direction claim moved to the dropped ones (as if its
    check had failed), so the page must show that bar as failed, not as fact."""
    import copy

    out = copy.deepcopy(data)
    i = next(i for i, c in enumerate(out["claims"]) if c["kind"] == "direction")
    claim = out["claims"].pop(i)
    out["dropped"].append({**claim, "passed": False, "evidence": "moved the wrong way"})
    return out


def test_page_has_outcome_factors_recourse_and_checked_claims(page_data):
    page = decision_page(page_data)
    assert page.count("class='factor ") == 10
    assert page.count("class='claim passed'") == len(page_data["claims"])
    assert "What would change the outcome" in page and "How it was checked" in page
    assert "<script" not in page and "src=" not in page and "@import" not in page


def test_bars_are_facts_only_where_their_claim_passed(page_data):
    from interplab.report.rationales import factor_checks

    data = _with_failed_direction(page_data)
    failed = next(c["params"]["feature"] for c in data["dropped"] if c["kind"] == "direction")
    checks = factor_checks(data)
    assert checks[failed]["status"] == "failed"
    page = decision_page(data)
    assert f"data-feature='{failed}' data-status='failed'" in page
    n_passed = sum(c["kind"] == "direction" for c in data["claims"])
    assert page.count("data-status='passed'") == n_passed
    assert page.count("data-status='unchecked'") == 10 - n_passed - 1
    assert "✗ failed its check" in page and ">unchecked<" in page
    # the footer counts what was tested instead of claiming everything was
    assert "Every statement above was tested" not in page
    assert f"{n_passed} of the 10 bars shown have a passed test behind them" in page


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

    data = _with_failed_direction(page_data)
    path = tmp_path / "why.html"
    path.write_text(decision_page(data), encoding="utf-8")
    browser = Browser(tmp_path / "profile")
    try:
        browser.load(path.resolve().as_uri())
        stats = browser.evaluate("""JSON.stringify({
            bars: [...document.querySelectorAll('.bar')].filter(b => b.getBoundingClientRect().width > 0).length,
            outcome: document.getElementById('outcome').getBoundingClientRect().height,
            claims: document.querySelectorAll('.claim.passed').length,
            status: [...document.querySelectorAll('.factor')].map(f => [
                f.dataset.status, f.querySelector('.status').innerText,
                f.querySelector('.status').getBoundingClientRect().width > 0,
                +getComputedStyle(f.querySelector('.bar')).opacity]),
            note: document.querySelector('.factor-status').innerText,
            footer: document.getElementById('footer').innerText,
            overflow: document.documentElement.scrollWidth > window.innerWidth + 1})""")
        import json

        stats = json.loads(stats)
        assert stats["bars"] >= 5 and stats["outcome"] > 20
        assert stats["claims"] == len(data["claims"]) and not stats["overflow"]
        labels = {"passed": "✓ checked", "failed": "✗ failed its check", "unchecked": "unchecked"}
        for status, text, visible, opacity in stats["status"]:
            assert text == labels[status] and visible
            assert (opacity == 1) == (status == "passed")  # failed / unchecked bars faded
        assert {s[0] for s in stats["status"]} == {"passed", "failed", "unchecked"}
        assert "not facts" in stats["note"] and "passed a test" in stats["footer"]
        assert browser.errors() == []
    finally:
        browser.close()
