from __future__ import annotations

import pytest
import torch

from interplab.data.synthetic import SyntheticConfig, SyntheticFeatures
from interplab.errors import ConfigError, ShapeError, WeightsError
from interplab.eval.features import mmcs, score_dictionary
from interplab.methods.dictionaries import (
    DictionaryConfig,
    TensorSource,
    load_dictionary,
    save_dictionary,
    train_dictionary,
)


@pytest.fixture(scope="module")
def small_org() -> SyntheticFeatures:
    return SyntheticFeatures(SyntheticConfig(n_features=32, d=16, mean_active=3, seed=0))


def _cfg(**kw) -> DictionaryConfig:
    # seed 1, not the organism's 0: SyntheticFeatures and SparseDictionary both draw randn(rows, d)
    # from manual_seed(seed), so with equal seeds the dictionary would start at the true directions.
    base = dict(
        d_in=16, d_latent=64, activation="topk", k=3, steps=300, batch_size=512, lr=3e-3, seed=1
    )
    return DictionaryConfig(**{**base, **kw})


def test_the_dictionary_does_not_start_at_the_truth(small_org):
    untrained = train_dictionary(small_org, _cfg(steps=0))
    assert mmcs(small_org.directions, untrained.dictionary.directions) < 0.8


def test_topk_recovers_the_features_of_a_small_organism(small_org):
    # 1000 steps: from an init that is not the truth, 300 steps reach MMCS 0.935-0.96 (seeds 1-3),
    # 1000 steps 0.994-0.995.
    trained = train_dictionary(small_org, _cfg(steps=1000))
    assert mmcs(small_org.directions, trained.dictionary.directions) >= 0.97
    assert trained.steps == 1000 and trained.history[-1]["step"] == 1000
    assert trained.history[-1]["variance_explained"] > 0.8


@pytest.mark.slow
@pytest.mark.parametrize(
    "activation, extra", [("topk", dict(k=4)), ("jumprelu", dict(l0_coefficient=3e-2))]
)
def test_64d_128_feature_organism_reaches_mmcs_099(activation, extra):
    org = SyntheticFeatures(SyntheticConfig(n_features=128, d=64, mean_active=4, seed=0))
    cfg = DictionaryConfig(
        d_in=64, d_latent=256, activation=activation, steps=1200, lr=3e-3, seed=1, **extra
    )
    trained = train_dictionary(org, cfg)
    batch = org.sample(4096, 10**6)
    scores = score_dictionary(trained.dictionary, batch.x, true_directions=org.directions)
    assert scores.mmcs >= 0.99
    assert scores.recall == 1.0


def test_sweeps_over_k_and_l1_give_monotone_l0(small_org):
    batch = small_org.sample(2048, 10**6)
    l0_by_k = [
        score_dictionary(train_dictionary(small_org, _cfg(k=k, steps=100)).dictionary, batch.x).l0
        for k in (1, 2, 4, 8)
    ]
    assert all(a < b for a, b in zip(l0_by_k, l0_by_k[1:])), l0_by_k
    l0_by_l1 = [
        score_dictionary(
            train_dictionary(
                small_org, _cfg(activation="relu", l1_coefficient=c, steps=150)
            ).dictionary,
            batch.x,
        ).l0
        for c in (1e-3, 1e-2, 1e-1)
    ]
    assert all(a > b for a, b in zip(l0_by_l1, l0_by_l1[1:])), l0_by_l1


def test_transcoder_recovers_output_directions():
    org = SyntheticFeatures(SyntheticConfig(n_features=32, d=16, d_out=12, mean_active=3))
    trained = train_dictionary(org, _cfg(d_out=12, lr=1e-2, steps=400))
    assert mmcs(org.out_directions, trained.dictionary.directions) >= 0.95


class Stop(Exception):
    pass


def test_interrupted_training_resumes_to_the_same_weights(small_org, tmp_path):
    cfg = _cfg(steps=40, checkpoint_every=10, resample_every=15, batch_size=256)
    reference = train_dictionary(small_org, cfg)

    def stop_at_25(step, row):
        if step == 25:
            raise Stop

    with pytest.raises(Stop):
        train_dictionary(small_org, cfg, checkpoint_dir=tmp_path, callback=stop_at_25)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000010", "step-00000020"]
    resumed = train_dictionary(small_org, cfg, checkpoint_dir=tmp_path)
    assert resumed.resumed_from == 20 and resumed.steps == 40
    for name, value in reference.dictionary.state_dict().items():
        assert torch.equal(value, resumed.dictionary.state_dict()[name]), name
    assert [r["step"] for r in resumed.history] == [r["step"] for r in reference.history]
    assert resumed.history[-1]["resampled"] == reference.history[-1]["resampled"]


def test_resume_with_a_different_config_is_refused(small_org, tmp_path):
    train_dictionary(small_org, _cfg(steps=10), checkpoint_dir=tmp_path)
    with pytest.raises(ConfigError, match="k: 3 -> 4"):
        train_dictionary(small_org, _cfg(steps=20, k=4), checkpoint_dir=tmp_path)
    longer = train_dictionary(small_org, _cfg(steps=20), checkpoint_dir=tmp_path)  # steps may grow
    assert longer.resumed_from == 10 and longer.steps == 20


@pytest.mark.parametrize("damage", ["truncate", "json"])
def test_corrupt_checkpoint_is_a_weights_error(small_org, tmp_path, damage):
    train_dictionary(small_org, _cfg(steps=10), checkpoint_dir=tmp_path)
    ckpt = tmp_path / "step-00000010"
    if damage == "truncate":
        data = (ckpt / "state.safetensors").read_bytes()
        (ckpt / "state.safetensors").write_bytes(data[: len(data) // 2])
    else:
        (ckpt / "state.json").write_text("{not json")
    with pytest.raises(WeightsError, match="step-00000010 is corrupt.*resume=False"):
        train_dictionary(small_org, _cfg(steps=20), checkpoint_dir=tmp_path)
    fresh = train_dictionary(small_org, _cfg(steps=5), checkpoint_dir=tmp_path, resume=False)
    assert fresh.resumed_from is None


def test_save_load_roundtrip_and_corrupt_file(small_org, tmp_path):
    trained = train_dictionary(small_org, _cfg(steps=20, activation="jumprelu"))
    path = save_dictionary(trained.dictionary, tmp_path / "sae.safetensors")
    loaded = load_dictionary(path)
    assert loaded.config == trained.config
    x = small_org.sample(8).x
    assert torch.equal(loaded(x), trained.dictionary(x))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(WeightsError, match="corrupt"):
        load_dictionary(path)
    with pytest.raises(WeightsError, match="no dictionary file"):
        load_dictionary(tmp_path / "missing.safetensors")


def test_width_mismatch_is_a_shape_error(small_org):
    with pytest.raises(ShapeError, match=r"width 16 but DictionaryConfig\(d_in=12\).*d_in=16"):
        train_dictionary(small_org, _cfg(d_in=12))


def test_resampling_revives_dead_latents():
    # Data in the positive quadrant of 2 of 8 dims: latents initialised pointing elsewhere never
    # fire. Resampled latents must fire again, which the unresampled run's stay silent.
    x = torch.zeros(4096, 8)
    x[:, :2] = torch.rand(4096, 2, generator=torch.Generator().manual_seed(0))
    runs = {}
    for every in (20, 0):
        cfg = DictionaryConfig(
            d_in=8,
            d_latent=32,
            activation="relu",
            l1_coefficient=1e-3,
            steps=40,
            batch_size=256,
            resample_every=every,
            log_every=10,
        )
        runs[every] = train_dictionary(TensorSource(x), cfg).history
    assert runs[20][-1]["resampled"] > 0 and runs[0][-1]["resampled"] == 0
    assert runs[0][2]["dead_fraction"] > 0  # step 30: still dead without resampling
    assert runs[20][2]["dead_fraction"] < runs[0][2]["dead_fraction"]


def test_progress_bar_runs(small_org, capsys):
    train_dictionary(small_org, _cfg(steps=3), progress=True)
    assert "dictionary" in capsys.readouterr().err
