"""A small viewer page with every panel, shared by the offline and the browser tests."""

from interplab.report.viewer import attention_data, circuit_data, viewer_page


def sample_page() -> str:
    tokens = ["<s>", " When", " Mary", " and", " John", "</script>", " to"]
    n = len(tokens)
    pattern = [
        [(1.0 if k == (q * 3) % (q + 1) else 0.1) / 1.1 if k <= q else 0.0 for k in range(n)]
        for q in range(n)
    ]
    attention = attention_data(
        tokens,
        [
            ("L0.H1", pattern),
            ("L3.H0", [[1.0 / (q + 1) if k <= q else 0.0 for k in range(n)] for q in range(n)]),
        ],
    )
    edges = [
        {"sender": "tok_embed", "receiver": "L0.H1", "channel": c, "score": s}
        for c, s in (("q", 0.1), ("k", 0.5), ("v", 2.0))
    ]
    edges += [
        {"sender": "L0.H1", "receiver": "L1.MLP", "channel": "in", "score": 1.0},
        {"sender": "L1.MLP", "receiver": "logits", "channel": "in", "score": 3.0},
        {"sender": "tok_embed", "receiver": "logits", "channel": "in", "score": 0.01},
    ]
    features = [
        {
            "id": i,
            "label": f"feature about {w}",
            "max": 2.0,
            "density": 0.01,
            "contexts": [{"tokens": [" def", f" {w}", "(", ")"], "acts": [0.0, 2.0, 0.5, 0.0]}],
            "logits": {"up": [[" x", 1.0]], "down": [[" y", -1.0]]},
            "hist": [5, 3, 1, 0, 1],
        }
        for i, w in enumerate(["parse", "return", "import"])
    ]
    return viewer_page(
        "viewer test",
        "<p>intro</p>",
        attention=attention,
        circuit=circuit_data(edges),
        features=features,
    )
