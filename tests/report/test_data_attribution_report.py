"""The data-attribution report table: intervals shown, baselines apart and never best."""

from __future__ import annotations

from interplab.report.data_attribution import digit_svg, organism_table, trace_page

BASELINES = frozenset({"random", "nn_input"})


def _rows():
    vals = {
        "ekfac": (0.9, 0.5),
        "grad_dot": (0.5, 0.6),
        "random": (0.0, 0.1),
        "nn_input": (0.4, 0.8),
    }
    rows = []
    for m, (lds, mis) in vals.items():
        rows += [
            {"organism": "o", "method": m, "metric": "lds", "value": lds, "reason": None},
            {
                "organism": "o",
                "method": m,
                "metric": "mislabel_recall_at_10",
                "value": mis,
                "reason": None,
            },
        ]
    rows.append(
        {
            "organism": "o",
            "method": "grad_cos",
            "metric": "mislabel_recall_at_10",
            "value": None,
            "reason": "no self-influence",
        }
    )
    return rows


def test_table_marks_the_best_method_and_flags_a_winning_baseline():
    est = {"ekfac": {"lds": {"value": 0.9, "low": 0.85, "high": 0.95, "n": 50}}}
    page = organism_table(_rows(), est, "o", BASELINES)
    assert "<td class='best'>0.900 [0.850, 0.950]" in page
    assert "<td class='best'>0.600" in page  # grad_dot is the best *method* on mislabel recall
    assert "nn_input (0.800) beats every method on mislabel recall" in page
    assert "random (" not in page and "title='no self-influence'" in page
    # baselines come after the methods
    assert page.index(">grad_dot<") < page.index(">nn_input")


def test_trace_page_is_self_contained():
    data = {
        "organism": "o",
        "split": "test",
        "index": 0,
        "method": "ekfac",
        "label_attributed": 3,
        "predicted": 3,
        "pixels": [0.5] * 64,
        "n_train": 10,
        "seconds": 0.1,
        "top": [
            {
                "train_index": 4,
                "score": 1.5,
                "label": 3,
                "true_digit": 3,
                "flipped": False,
                "planted": True,
                "pixels": [0.0] * 64,
            }
        ],
        "checks": {
            "lds_this_point": 0.5,
            "mislabel_recall_at_10": {"value": 0.5, "low": 0.2, "high": 0.8, "n": 3},
        },
    }
    page = trace_page(data)
    assert "card planted" in page and "<script" not in page and "<link" not in page
    assert digit_svg([1.0] * 64).count("<rect") == 64
