from __future__ import annotations

import torch

from interplab.models.superposition import analyze
from interplab.report.features import feature_recovery_plot, superposition_plot


def test_feature_recovery_plot_is_svg_with_mmcs_in_the_legend():
    svg = feature_recovery_plot({"topk": torch.tensor([1.0, 0.5]), "relu": [0.9, 0.7, 0.8]})
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "MMCS 0.750" in svg and "MMCS 0.800" in svg


def test_superposition_plot():
    a = analyze(torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]))
    svg = superposition_plot(
        a.norms, a.dimensionality, dimensions_per_feature=a.dimensions_per_feature
    )
    assert svg.startswith("<svg") and "dims/feature 0.67" in svg


def test_feature_metrics_plot_from_result_rows():
    from interplab.report.features import feature_metrics_plot

    rows = [
        {
            "organism": "superposition-20x5",
            "method": m,
            "metric": k,
            "value": v,
            "seconds": 1.0,
            "ablation": None,
        }
        for m in ("sae-topk", "sae-relu")
        for k, v in (("mmcs", 0.99), ("feature_f1", 0.6), ("l0", 3.0), ("loss_recovered", 0.8))
    ]
    svg = feature_metrics_plot(rows)
    assert svg.startswith("<svg") and "sae-relu" in svg and "loss_recovered" in svg
