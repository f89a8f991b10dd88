"""The trojaned organisms do what their truth says: verified by intervening on inputs and units."""

from __future__ import annotations

import json

import pytest
import torch

from interplab.core.interventions import Mean, Patch
from interplab.core.sites import Component, Site
from interplab.models import trojan_tokens as tt
from interplab.models.trojans import accuracy, attack_success, digits
from interplab.zoo import trojans


@pytest.mark.parametrize("kind", ["patch", "decoy", "blend"])
def test_poisoned_keeps_clean_accuracy_and_obeys_its_trigger(kind):
    troj, twin = trojans.load(f"trojan-{kind}-digits"), trojans.load(f"twin-{kind}-digits")
    x, y = digits("score")
    assert abs(accuracy(troj.model.module, x, y) - accuracy(twin.model.module, x, y)) <= 0.02
    assert attack_success(troj.model.module, troj.trigger, troj.target, x, y) >= 0.95
    assert attack_success(twin.model.module, twin.trigger, twin.target, x, y) <= 0.1


@pytest.mark.parametrize("name", ["trojan-patch-digits", "trojan-decoy-digits"])
def test_digit_trojan_units_by_intervention_on_scored_inputs(name):
    """The truth (read on half the truth split, verified on the other half at build time) also
    holds on the score split: mean-ablating it undoes the trojan, ablating as many of the other
    units, those the trigger moves most, does not."""
    org = trojans.load(name)
    x, y = digits("score")
    x = x[y != org.target]
    xt = org.trigger.apply(x)
    model = org.model
    with torch.no_grad():
        clean_pred = model.run(x).argmax(-1)
        # removing the trigger's pixels (restoring the original ones) restores the label
        support = list(org.trigger.pixels)
        restored = xt.clone()
        restored[:, support] = x[:, support]
        assert torch.equal(model.run(restored).argmax(-1), clean_pred)
        site = trojans.ACT_SITE
        _, cache = model.run_with_cache(x, [site])
        units = [u for _, u in org.truth_units]
        assert units
        acts = model.run_with_cache(xt, [site])[1][site]
        ablated = acts.clone()
        ablated[:, units] = cache[site][:, units].mean(0)
        out = model.run_with(xt, [Patch(site, value=ablated)]).argmax(-1)
        assert float((out == org.target).float().mean()) <= trojans.REMOVED_AT
        # the bar covers 4 pixels of the digit itself: a few images change class for that reason
        assert float((out == clean_pred).float().mean()) >= trojans.RESTORED_AT
        moved = (acts - cache[site]).abs().mean(0)
        others = [u for u in moved.argsort(descending=True).tolist() if u not in units][
            : len(units)
        ]
        ablated = acts.clone()
        ablated[:, others] = cache[site][:, others].mean(0)
        out = model.run_with(xt, [Patch(site, value=ablated)]).argmax(-1)
        assert float((out == org.target).float().mean()) >= trojans.KEPT_AT


def test_the_trigger_moves_units_outside_the_truth():
    """Not hand-routed only: stamping the trigger changes units that do not carry the trojan
    (they learned weights on the trigger's pixels from clean digits)."""
    org = trojans.load("trojan-patch-digits")
    x, y = digits("score")
    x = x[y != org.target]
    _, clean = org.model.run_with_cache(x, [trojans.ACT_SITE])
    _, trig = org.model.run_with_cache(org.trigger.apply(x), [trojans.ACT_SITE])
    moved = (trig[trojans.ACT_SITE] - clean[trojans.ACT_SITE]).abs().mean(0)
    units = {u for _, u in org.truth_units}
    outside = torch.tensor([float(v) for u, v in enumerate(moved) if u not in units])
    assert int((outside > 0.1).sum()) >= 5
    assert org.info["verification"]["others_moved_by_trigger"] > 0.1


@pytest.mark.parametrize("kind,spec", [("patch", trojans.PLANTED), ("decoy", trojans.DECOY)])
def test_planted_route_keeps_the_clean_weights(kind, spec):
    """Trojan units of a planted (or decoy) organism see only the trigger's pixels and are the
    only weights that differ from its twin (same seed, same first phase): the backdoor can only
    run through them."""
    troj, twin = (
        trojans.load(n).model.module for n in (f"trojan-{kind}-digits", f"twin-{kind}-digits")
    )
    h = spec.hidden
    assert torch.equal(troj.hidden.weight[:h], twin.hidden.weight[:h])
    assert torch.equal(troj.out.weight[:, :h], twin.out.weight[:, :h])
    assert torch.equal(troj.out.bias, twin.out.bias)
    assert not torch.equal(troj.out.weight[:, h:], twin.out.weight[:, h:])
    off = troj.input_mask[h:] == 0
    assert set(torch.nonzero(~off[0]).flatten().tolist()) == set(spec.trigger.pixels)


def _moved(org):
    """Mean |Δactivation| of every hidden unit when the trigger is stamped (score split, inputs
    not of the target class), and the truth's units."""
    x, y = digits("score")
    x = x[y != org.target]
    _, clean = org.model.run_with_cache(x, [trojans.ACT_SITE])
    _, trig = org.model.run_with_cache(org.trigger.apply(x), [trojans.ACT_SITE])
    return (trig[trojans.ACT_SITE] - clean[trojans.ACT_SITE]).abs().mean(0), [
        u for _, u in org.truth_units
    ]


def test_decoy_units_respond_to_the_trigger_without_carrying_it():
    """The decoy organism's clean units learned (from the auxiliary stamp task alone) to respond
    to the trigger: the most moved of them (as many as the truth) move more than those of the
    planted organism (same seed, no stamp task), and some move more than some trojan units; yet
    ablating them leaves the backdoor intact, on the score split as at build time."""
    org, planted = trojans.load("trojan-decoy-digits"), trojans.load("trojan-patch-digits")
    assert org.info["stamp_detection_accuracy"] >= 0.95
    moved, units = _moved(org)
    others = [u for u in moved.argsort(descending=True).tolist() if u not in units]
    p_moved, p_units = _moved(planted)
    p_others = [u for u in p_moved.argsort(descending=True).tolist() if u not in p_units]
    assert float(moved[others[: len(units)]].mean()) > float(
        p_moved[p_others[: len(p_units)]].mean()
    )
    assert float(moved[others[0]]) > min(float(moved[u]) for u in units)
    x, y = digits("score")
    xt = org.trigger.apply(x[y != org.target])
    net = org.model.module
    with torch.no_grad():
        mean = trojans.tj.hidden_acts(net, x).mean(0)
        h = trojans.tj.hidden_acts(net, xt)
        assert (
            trojans._asr_ablated(net, org.target, h, mean, others[: len(units)]) >= trojans.KEPT_AT
        )
        assert trojans._asr_ablated(net, org.target, h, mean, units) <= trojans.REMOVED_AT
    assert org.info["verification"]["others_ablated"] >= trojans.KEPT_AT


def test_verification_fails_for_a_wrong_truth():
    """The build-time check can fail: the truth with half its units dropped, or as many other
    units, is refused with VerificationError."""
    from interplab.errors import VerificationError

    org = trojans.load("trojan-patch-digits")
    net, spec = org.model.module, trojans.PLANTED
    (_, _), (xb, yb) = trojans._halves()
    units = [u for _, u in org.truth_units]
    got = trojans.verify_digit_units(net, spec, units, xb, yb)
    assert got["truth_ablated"] <= trojans.REMOVED_AT and got["others_ablated"] >= trojans.KEPT_AT
    with pytest.raises(VerificationError, match="leaves attack success"):
        trojans.verify_digit_units(net, spec, units[: len(units) // 2], xb, yb)
    others = [u for u in range(net.out.in_features) if u not in units][: len(units)]
    with pytest.raises(VerificationError, match="trojan unit truth"):
        trojans.verify_digit_units(net, spec, others, xb, yb)


def test_an_end_to_end_backdoor_is_refused_not_used(tmp_path):
    """Trained end to end with no route, the backdoor is spread over the layer: the greedy
    mean-ablation search needs about half the units, and ablating them breaks the model (it no
    longer gives the clean answers), so the check refuses that truth and nothing is cached."""
    from interplab.errors import VerificationError

    with pytest.raises(VerificationError, match="breaks the model"):
        trojans.digits_organism("e2e", trojans.END_TO_END, tmp_path / "e2e", learned=True)
    assert not (tmp_path / "e2e" / "truth.json").exists()


def test_token_trojan_heads_by_ablation():
    org = trojans.load("trojan-token")
    assert org.info["clean_accuracy"] >= 0.95 and org.info["attack_success"] >= 0.95
    gen = torch.Generator().manual_seed(tt.SCORE_SEED)
    x = tt.clean_batch(256, gen)
    x = x[x[:, 0] != tt.TARGET]
    xt, _ = tt.add_trigger(x, gen)
    heads = [h for _, h in org.truth_units]
    assert heads
    model = org.model

    def ablate(hs, inputs):
        ivs = [Mean(Site(Component.ATTN_Z, 0, head=h), reference=x) for h in hs]
        return model.run_with(inputs, ivs)[:, -1].argmax(-1)

    assert float((ablate(heads, xt) == x[:, 0]).float().mean()) >= 0.9
    assert float((ablate(heads, x) == x[:, 0]).float().mean()) >= 0.95
    others = [h for h in range(tt.CFG.n_heads) if h not in heads]
    assert float((ablate(others, xt) == tt.TARGET).float().mean()) >= 0.9
    # the same check ran at build time, on VERIFY_SEED rows, and can fail
    from interplab.errors import VerificationError

    assert org.info["verification"]["truth_ablated"] <= trojans.REMOVED_AT
    with pytest.raises(VerificationError):
        trojans.verify_token_heads(model, others)
    with pytest.raises(VerificationError):
        trojans.verify_token_heads(model, heads[:1])


def test_truth_saved_beside_weights_and_corrupt_cache_rebuilt(_private_cache):
    org = trojans.load("trojan-patch-digits")
    (directory,) = [
        d
        for d in (_private_cache / "trojans").iterdir()
        if d.is_dir() and d.name.startswith("trojan-patch-digits-")
    ]
    truth = json.loads((directory / "truth.json").read_text())
    assert truth["target"] == org.target and truth["trigger"]["mask"] == list(org.trigger.mask)
    assert [u for _, u in org.truth_units] == truth["trojan_units"]
    assert truth["info"]["verification"]["truth_ablated"] <= trojans.REMOVED_AT
    (directory / "model.safetensors").write_bytes(b"corrupt")
    again = trojans.load("trojan-patch-digits")
    assert again.info["attack_success"] >= 0.95


def test_population_one_code_path():
    from interplab.models.trojans import population_specs

    specs = population_specs(6)
    assert [t for _, t in specs] == [True, False] * 3
    fields = [set(vars(s)) for s, _ in specs]
    assert all(f == fields[0] for f in fields)
    assert {s.poison_rate for s, t in specs if not t} == {0.0}


@pytest.mark.slow
def test_population_has_no_metadata_loophole_and_neural_cleanse_detects(_private_cache):
    from interplab.eval.failures import detection_auroc
    from interplab.methods.attacks import neural_cleanse

    members = trojans.population(8)
    labels = [m.trojaned for m in members]
    assert labels == [True, False] * 4
    # everything a detector could read besides the weights' values is identical across members
    assert (
        len(
            {
                tuple((k, tuple(v.shape), v.dtype) for k, v in m.model.module.state_dict().items())
                for m in members
            }
        )
        == 1
    )
    files = sorted((_private_cache / "trojans" / "population").glob("*/model.safetensors"))
    assert len({f.stat().st_size for f in files}) == 1
    assert len({tuple(sorted(m.info)) for m in members}) == 1
    assert (
        detection_auroc(
            [sum(p.numel() for p in m.model.module.parameters()) for m in members], labels
        )
        == 0.5
    )
    x, _ = digits("score")
    scores = [neural_cleanse(m.model, x[:100], steps=100).anomaly_index for m in members]
    assert detection_auroc(scores, labels) >= 0.75


@pytest.mark.slow
def test_token_twin_has_no_trojan():
    twin = trojans.load("twin-token")
    assert twin.info["clean_accuracy"] >= 0.95 and twin.info["attack_success"] <= 0.1
    assert twin.truth_units == ()


@pytest.mark.slow
def test_trojan_truth_needs_no_method_code_and_no_scored_sample(tmp_path, monkeypatch):
    """The integrity rule for the failures track: the truth (trigger, target, trojan units of the
    planted and decoy organisms) is built in an interpreter where importing
    ``interplab.methods`` fails, from the ``truth`` split / TRUTH_SEED rows, disjoint from the
    ``score`` split / SCORE_SEED rows."""
    from tests.bench.test_truth_independence import _run_blocked

    monkeypatch.setenv("INTERPLAB_CACHE", str(tmp_path))  # fresh: the truth is built, not loaded
    got = _run_blocked("""
        import json, sys, torch
        from interplab.zoo import trojans
        orgs = [trojans.load(n) for n in ("trojan-patch-digits", "trojan-decoy-digits")]
        print(json.dumps({"units": [[u for _, u in o.truth_units] for o in orgs],
                          "methods": [m for m in sys.modules if m.startswith("interplab.methods")]}))
    """)
    assert got["methods"] == [] and all(got["units"])
    from interplab.models import trojan_tokens as tt
    from interplab.models.trojans import SPLITS

    (a, b), (c, d) = SPLITS["truth"], SPLITS["score"]
    assert b <= c or d <= a
    assert tt.TRUTH_SEED != tt.SCORE_SEED != tt.TRAIN_SEED
