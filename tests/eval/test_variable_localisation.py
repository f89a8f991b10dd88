"""Variable localisation (MIB track 2): the mechanics on a tiny random Llama, and SmolLM2
end to end (slow)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from interplab.errors import ConfigError, InterplabError
from interplab.eval import variable_localisation as vl
from interplab.models.pretrained.llama import LlamaConfig
from interplab.tasks.ioi import NAMES
from tests.llama_helpers import WordTokenizer as _WordTokenizer
from tests.llama_helpers import random_llama


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a busy machine extra threads only wait."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class WordTokenizer(_WordTokenizer):
    """The shared test tokenizer with an end-of-text id (the IOI pairs pad with it)."""

    eos_id = 0


def tiny():
    hm = random_llama(
        LlamaConfig(
            d_vocab=128, d_model=24, n_layers=3, n_heads=4, n_kv_heads=2, d_mlp=32, n_ctx=64
        )
    )
    tok = WordTokenizer()
    for name in NAMES:  # names get the low ids (all < 128)
        tok.encode(name)
    hm.tokenizer = tok
    return hm, tok


def split_for(hm, tok, layer: int, n: int = 12, variable: str = "io_position"):
    pairs = vl.ioi_pairs(tok, n, 0, (variable,))[variable]
    base = vl.collect(
        hm, pairs.base, pairs.base_pos, pairs.base_io, pairs.base_s, [layer], layer, batch=5
    )
    src = vl.collect(
        hm, pairs.source, pairs.source_pos, pairs.source_io, pairs.source_s, [layer], None
    )
    cands = torch.tensor(sorted({tok.encode(x)[0] for x in NAMES}))
    target, rivals = vl._targets(pairs, cands)
    return vl.Split(pairs, base, src.final, cands, target, rivals), pairs


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_final_position_rerun_equals_full_forward(layer):
    hm, tok = tiny()
    split, pairs = split_for(hm, tok, layer)
    got = vl.patched_logits(hm, split, layer, None)
    with torch.no_grad():
        full = hm.run(pairs.base)[torch.arange(len(pairs)), pairs.base_pos][:, split.candidates]
    assert torch.allclose(got, full, atol=1e-4)


def test_full_basis_swap_equals_full_vector_patch_and_source_run():
    """Swapping every coordinate (identity, or any orthonormal basis of R^d) is the full-vector
    patch; at layer 0 with the same template it is the source's own final-position output only
    when the prefixes agree, so compare with patching the residual through hooks instead."""
    hm, tok = tiny()
    layer = 1
    split, pairs = split_for(hm, tok, layer)
    d = hm.cfg.d_model
    full = vl.patched_logits(hm, split, layer, lambda hb, hs: hs)
    eye = vl.patched_logits(hm, split, layer, vl.subspace_patch(torch.eye(d)))
    rot = vl.patched_logits(hm, split, layer, vl.subspace_patch(vl.random_basis(d, d, 3)))
    assert torch.allclose(full, eye, atol=1e-4) and torch.allclose(full, rot, atol=1e-4)

    from interplab.core.sites import Component, Site

    site = Site(Component.RESID_PRE, layer)
    rows = torch.arange(len(pairs))

    def put(h):
        h = h.clone()
        h[rows, pairs.base_pos] = split.source_final[layer]
        return h

    with torch.no_grad(), hm.hooks({site: put}):
        hooked = hm.run(pairs.base)[rows, pairs.base_pos][:, split.candidates]
    assert torch.allclose(full, hooked, atol=1e-4)
    assert not torch.allclose(full, vl.patched_logits(hm, split, layer, None), atol=1e-3)


def test_k_zero_changes_nothing():
    hm, tok = tiny()
    split, _ = split_for(hm, tok, 1)
    none = vl.patched_logits(hm, split, 1, None)
    d = hm.cfg.d_model
    for patch in (
        vl.subspace_patch(vl.random_basis(d, 0, 1)),
        vl.subspace_patch(vl.neuron_basis(d, torch.zeros(0, dtype=torch.long))),
    ):
        assert torch.allclose(vl.patched_logits(hm, split, 1, patch), none, atol=1e-6)


def test_sae_patch_with_no_latents_keeps_base_and_with_all_moves_by_decoder():
    from interplab.methods.dictionaries import DictionaryConfig, SparseDictionary

    torch.manual_seed(0)
    sae = SparseDictionary(DictionaryConfig(d_in=6, d_latent=10, activation="topk", k=3))
    hb, hs = torch.randn(4, 6), torch.randn(4, 6)
    none = vl.sae_patch(sae, torch.zeros(0, dtype=torch.long), 2.0)(hb, hs)
    assert torch.equal(none, hb)
    every = vl.sae_patch(sae, torch.arange(10), 2.0)(hb, hs)
    # all latents swapped: base error kept, so h' - h_b = recon(h_s) - recon(h_b)
    with torch.no_grad():
        want = hb + 2.0 * (sae(hs / 2.0) - sae(hb / 2.0))
    assert torch.allclose(every, want, atol=1e-5)


def test_pairs_realise_the_variables():
    _, tok = tiny()
    sets = vl.ioi_pairs(tok, 24, 5)
    pos, token = sets["io_position"], sets["io_token"]
    assert torch.equal(pos.base, token.base)  # variables share bases
    for i in range(24):
        b = pos.base[i].tolist()
        b_io_first = b.index(int(pos.base_io[i])) < b.index(int(pos.base_s[i]))
        s = pos.source[i].tolist()
        s_io_first = s.index(int(pos.source_io[i])) < s.index(int(pos.source_s[i]))
        assert b_io_first != s_io_first  # the other order
        t = token.source[i].tolist()
        t_io_first = t.index(int(token.source_io[i])) < t.index(int(token.source_s[i]))
        assert b_io_first == t_io_first  # the same order
        base_names = {int(pos.base_io[i]), int(pos.base_s[i])}
        assert not base_names & {int(pos.source_io[i]), int(pos.source_s[i])}
        assert int(pos.expected[i]) == int(pos.base_s[i])
        assert int(token.expected[i]) == int(token.source_io[i])
    other = vl.ioi_pairs(tok, 24, 6)["io_position"]
    assert not torch.equal(other.base, pos.base)  # another seed, other prompts


def test_bases_are_orthonormal_and_pca_finds_the_variance_axis():
    q = vl.random_basis(10, 4, 0)
    assert torch.allclose(q.T @ q, torch.eye(4), atol=1e-5)
    gen = torch.Generator().manual_seed(0)
    acts = torch.randn(500, 5, generator=gen) * torch.tensor([0.1, 0.1, 5.0, 0.1, 0.1])
    top = vl.pca_basis(acts, 1)[:, 0].abs()
    assert int(top.argmax()) == 2 and float(top[2]) > 0.99
    assert vl.top_indices(torch.tensor([0.5, 3.0, 3.0, -1.0]), 2).tolist() == [1, 2]


def test_das_learns_better_than_random_on_a_tiny_model():
    """DAS optimises its training objective: its training IIA is at least random's."""
    hm, tok = tiny()
    split, _ = split_for(hm, tok, 1, n=24)
    d = hm.cfg.d_model
    q = vl.train_das(hm, split, 1, 4, steps=25, lr=0.05, seed=0)
    assert torch.allclose(q.T @ q, torch.eye(4), atol=1e-4)
    das = vl.iia(hm, split, 1, vl.subspace_patch(q))
    rnd = vl.iia(hm, split, 1, vl.subspace_patch(vl.random_basis(d, 4, 0)))
    assert das.value >= rnd.value and das.n == 24
    assert all(p.requires_grad for p in hm.model.parameters())  # restored after training


def test_localise_tiny_end_to_end_and_bad_config():
    hm, _ = tiny()
    # a random model gets about half of IOI right; the filter keeps those pairs
    cfg = dataclasses.replace(
        vl.QUICK,
        layers=(1,),
        ks=(0, 2),
        n_train=24,
        n_test=24,
        das_steps=3,
        sae_latents=32,
        sae_k=4,
        sae_steps=5,
        sae_batch=32,
        text_windows=0,
        variables=vl.VARIABLES,
    )
    res = vl.localise(hm, cfg)
    out = res.as_dict()
    assert {c["featuriser"] for c in out["cells"]} == set(vl.FEATURISERS) | {vl.CEILING}
    for c in res.cells:
        if c.k == 0:  # k = 0 is the no-intervention rate, whatever the featuriser
            assert c.test.value == res.no_intervention[c.variable][1].value
    assert out["counts"]["io_position"]["n_test"] == res.cells[0].test.n
    with pytest.raises(ConfigError, match="layers must be <"):
        vl.localise(hm, dataclasses.replace(cfg, layers=(7,)))
    with pytest.raises(ConfigError, match="unknown featuriser"):
        vl.LocalisationConfig(featurisers=("magic",))


@pytest.mark.slow
def test_smollm2_quick_study():
    from interplab.models.pretrained.registry import load

    res = vl.localise(load("smollm2-135m"), vl.QUICK)
    out = res.as_dict()
    counts = out["counts"]["io_position"]
    assert counts["n_test"] >= 0.6 * vl.QUICK.n_test  # SmolLM2 does IOI
    layer = vl.QUICK.layers[0]
    assert res.no_intervention["io_position"][layer].value == 0.0  # filtered: base right
    das = res.cell("io_position", layer, "das", 4).test
    rnd = res.cell("io_position", layer, "random", 4).test
    assert das.value > rnd.value  # a learned subspace beats random directions of its size
    assert res.seconds["total"] > 0 and res.sae[layer]["n_activations"] > 0


def _tiny_study() -> dict:
    hm, _ = tiny()
    cfg = dataclasses.replace(
        vl.QUICK,
        layers=(1, 2),
        ks=(1, 2),
        n_train=18,
        n_test=18,
        das_steps=2,
        sae_latents=16,
        sae_k=2,
        sae_steps=3,
        sae_batch=16,
        text_windows=0,
        variables=vl.VARIABLES,
    )
    return vl.localise(hm, cfg).as_dict()


class FakeStore:
    """The two calls the report section makes: jobs() and artifacts(name)."""

    def __init__(self, outputs: dict) -> None:
        from interplab.bench.track import Job

        self._jobs, self._arts = [], {}
        for (org, method), out in outputs.items():
            job = Job("variables_real", org, method, None)
            self._jobs.append(
                dataclasses.make_dataclass("J", ["track", "key", "status", "organism"])(
                    job.track, job.key, "done", org
                )
            )
            self._arts[job.key] = out.artifacts

    def jobs(self):
        return self._jobs

    def artifacts(self, name=None):
        return {
            k: {n: a for n, a in v.items() if name is None or n == name}
            for k, v in self._arts.items()
        }


def test_track_rows_kinds_and_report_section(monkeypatch):
    from interplab.bench.track import Job
    from interplab.bench.tracks import TRACKS
    from interplab.bench.tracks import variables_real as tr
    from interplab.methods import registry
    from interplab.report import variables_real as rep

    study = _tiny_study()
    monkeypatch.setattr(tr, "_study", lambda config, seed: study)
    track = TRACKS["variables_real"]
    assert set(track.method_names()) <= set(registry.names("variables_real"))
    assert track.kind("random:L1:k2") == "baseline" and track.kind("das:L1:k2") == "method"
    assert track.kind("full:L1") == "baseline" and track.kind("none:L2") == "baseline"
    assert track.suite("quick") == [] and track.suite("full")
    outputs = {}
    for org in tr.ORGANISMS:
        for method in tr.METHODS:
            outputs[(org, method)] = out = track.run(Job("variables_real", org, method, None))
            iia_rows = [r for r in out.rows if r.metric == "iia"]
            assert iia_rows and all(r.method.split(":")[0] == method for r in iia_rows)
            for r in iia_rows:
                est = out.artifacts["estimates"][r.method]
                assert est["low"] <= r.value <= est["high"] and est["n"] > 0
    das = [r.method for r in outputs[(tr.ORGANISMS[0], "das")].rows if r.metric == "iia"]
    assert sorted(das) == ["das:L1:k1", "das:L1:k2", "das:L2:k1", "das:L2:k2"]
    html = rep.section(FakeStore(outputs))
    assert "io_position" in html and "io_token" in html and "random directions" in html
    assert "MIB&#x27;s finding is" in html or "does not test MIB" in html
    assert rep.section(FakeStore({})) == ""
    with pytest.raises(InterplabError, match="unknown variables_real organism"):
        tr.job_output("gpt2-ioi", "das")


def test_verdict_reads_the_cells():
    from interplab.eval.stats import wilson

    res = vl.LocalisationResult(vl.LocalisationConfig(layers=(1,), ks=(4,)))
    hits = {"das": 90, "pca": 40, "neurons": 50, "neurons_grad": 60, "sae": 55, "sae_grad": 20}
    hits["random"] = 5
    for f, h in hits.items():
        res.cells.append(vl.Cell("io_position", 1, f, 4, wilson(h, 100), wilson(h, 100), 0.0))
    v = res.verdict("io_position")
    assert v["das_best"] and v["best_other"] == "neurons_grad" and v["das_wins_cells"] == "1/1"
    assert v["sae_no_better_than_neurons"] and v["reproduced"]
    res.cells[0] = vl.Cell("io_position", 1, "das", 4, wilson(10, 100), wilson(10, 100), 0.0)
    assert not res.verdict("io_position")["das_best"]


def test_track_study_is_computed_once_and_read_from_disk(monkeypatch, tmp_path):
    from interplab.bench.tracks import variables_real as tr
    from interplab.models.pretrained import registry as pretrained

    hm, _ = tiny()
    small = dataclasses.replace(
        vl.QUICK,
        layers=(1,),
        ks=(1,),
        n_train=12,
        n_test=12,
        das_steps=1,
        featurisers=("das", "random"),
    )
    monkeypatch.setenv("INTERPLAB_CACHE", str(tmp_path))
    monkeypatch.setitem(vl.CONFIGS, "tiny", small)
    monkeypatch.setattr(pretrained, "load", lambda name: hm)
    calls = []
    real = vl.localise
    monkeypatch.setattr(vl, "localise", lambda *a, **k: calls.append(1) or real(*a, **k))
    tr._study.cache_clear()
    try:
        first = tr._study("tiny", 0)
        tr._study.cache_clear()  # a second process: reads the file
        second = tr._study("tiny", 0)
    finally:
        tr._study.cache_clear()
    assert len(calls) == 1 and first == second
    assert len(list((tmp_path / "variables_real").glob("tiny-*.json"))) == 1
    assert set(first["config"]["variables"]) == set(tr.VARIABLES)
