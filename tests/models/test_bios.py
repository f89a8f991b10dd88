"""The template bios: profession only in content words, gender only in names and pronouns,
gender tied to profession only where told to, and exact swap / delete of the gender words."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import ConfigError, ShapeError
from interplab.models import bios as bm


def _words(groups):
    return {w for g in groups for w in g}


GENDER_WORDS = _words(bm.NAMES) | _words(bm.PRONOUNS.values())
PROFESSION_WORDS = [_words(g[i] for g in bm.PROFESSION.values()) for i in (0, 1)]


def test_bios_follow_the_template_and_round_trip():
    data = bm.bios("test", "random")
    assert data.tokens.shape == (bm.SPLITS["test"], bm.LENGTH)
    texts = bm.decode(data.tokens[:20])
    assert torch.equal(bm.encode(texts), data.tokens[:20])
    for text in texts:
        for word, slot in zip(text.split(), bm.TEMPLATE):
            if not slot.startswith("{"):
                assert word == slot


def test_profession_words_carry_the_label_and_gender_words_the_cue():
    data = bm.bios("heldout", "random")
    assert not GENDER_WORDS & (PROFESSION_WORDS[0] | PROFESSION_WORDS[1])
    assert not PROFESSION_WORDS[0] & PROFESSION_WORDS[1]
    for text, y, cue in zip(bm.decode(data.tokens[:200]), data.y.tolist(), data.cue.tolist()):
        words = set(text.split())
        assert len(words & PROFESSION_WORDS[y]) == 3 and not words & PROFESSION_WORDS[1 - y]
        assert words & _words([bm.NAMES[cue]]) and not words & _words([bm.NAMES[1 - cue]])
        assert bm.PRONOUNS["subj"][cue] in words and bm.PRONOUNS["subj"][1 - cue] not in words


def test_label_mode_ties_gender_to_profession_and_random_mode_does_not():
    tr = bm.bios("train", "label")
    assert torch.equal(tr.cue, tr.y)
    te = bm.bios("test", "random")
    assert 0.45 < float((te.cue == te.y).float().mean()) < 0.55
    assert torch.equal(te.tokens, bm.bios("test", "random").tokens)  # fixed per split
    other = bm.bios("train", "random", seed=5)
    assert torch.equal(other.y, tr.y) and not torch.equal(other.cue, tr.cue)


def test_swap_gender_changes_only_gender_words_and_is_an_involution():
    data = bm.bios("test", "random")
    swapped = bm.swap_gender(data.tokens)
    assert torch.equal(bm.swap_gender(swapped), data.tokens)
    gender_pos = sorted(p for s in ("name", "subj", "obj", "poss") for p in bm.SLOTS[s])
    other = [p for p in range(bm.LENGTH) if p not in gender_pos]
    assert torch.equal(swapped[:, other], data.tokens[:, other])
    assert bool((swapped[:, gender_pos] != data.tokens[:, gender_pos]).all())
    flipped = bm.BiosData(swapped, data.y, 1 - data.cue)
    for text, cue in zip(bm.decode(flipped.tokens[:100]), flipped.cue.tolist()):
        assert set(text.split()) & _words([bm.NAMES[cue]])


def test_delete_cue_leaves_no_gender_word():
    data = bm.bios("test", "random")
    clean = bm.delete_cue(data.tokens)
    assert torch.equal(clean, bm.delete_cue(bm.swap_gender(data.tokens)))
    for text in bm.decode(clean[:200]):
        assert not set(text.split()) & GENDER_WORDS and "[name]" in text


def test_balanced_subset_has_equal_groups():
    data = bm.balanced_subset(bm.bios("heldout", "random"), 32, seed=3)
    assert torch.bincount(data.group, minlength=4).tolist() == [32, 32, 32, 32]
    with pytest.raises(ConfigError, match="fewer than"):
        bm.balanced_subset(bm.bios("heldout", "random"), 400, seed=3)


def test_group_accuracies():
    data = bm.BiosData(
        torch.zeros(4, bm.LENGTH, dtype=torch.long),
        torch.tensor([0, 0, 1, 1]),
        torch.tensor([0, 1, 0, 1]),
    )
    out = bm.group_accuracies(torch.tensor([0, 1, 1, 1]), data)
    assert out["accuracy"] == 0.75 and out["worst_group_accuracy"] == 0.0 and out["group_01"] == 0.0


def test_net_splits_at_the_hidden_layer():
    net = bm.BiosNet(bm.BiosSpec().config(0))
    tokens = bm.bios("heldout", "random").tokens[:8]
    h = net.features(tokens)
    assert h.shape == (8, 32) and bool((h >= 0).all())
    assert torch.allclose(net.head(h), net(tokens))


def test_bad_input_is_refused():
    with pytest.raises(ConfigError):
        bm.bios("validation", "random")
    with pytest.raises(ConfigError):
        bm.bios("test", "sometimes")
    with pytest.raises(ConfigError):
        bm.BiosSpec(cue_mode="often")
    with pytest.raises(ConfigError):
        bm.BiosSpec(epochs=0)
    with pytest.raises(ShapeError):
        bm.encode("mary is a nurse")
    with pytest.raises(ConfigError, match="vocabulary"):
        bm.encode(" ".join(["zebra"] * bm.LENGTH))
    with pytest.raises(ShapeError):
        bm.swap_gender(torch.zeros(3, 5, dtype=torch.long))
    with pytest.raises(ShapeError):
        bm.BiosNet(bm.BiosSpec().config(0)).features(torch.zeros(2, 4, dtype=torch.long))
