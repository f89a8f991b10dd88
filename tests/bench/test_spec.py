import pytest

from interplab.bench.spec import load_spec, parse_spec
from interplab.errors import SpecError, UnknownNameError
from tests.bench import fake_track


@pytest.fixture(autouse=True)
def fake(monkeypatch, tmp_path):
    fake_track.register(monkeypatch, tmp_path / "ran.log")


def _problems(text, source="my.toml"):
    with pytest.raises(SpecError) as info:
        parse_spec(text, source)
    return str(info.value)


def test_spec_errors_point_to_lines():
    msg = _problems('[fake]\norganisms = ["org-a"]\nmethods = ["good", "nope"]\ncolour = 3\n')
    assert "my.toml:3: unknown method 'nope'" in msg
    assert "my.toml:4: unknown key 'colour'" in msg
    assert "valid: good, bad, boom" in msg


def test_a_key_repeated_across_sections_points_to_its_own_section():
    text = ('[fake]\n'                       # 1
            'organisms = ["org-a"]\n'         # 2
            'methods = ["good"]\n'            # 3
            'colour = 1\n'                    # 4
            '[fake2]\n'                       # 5
            'organisms = "org-a"\n'           # 6
            'methods = ["good"]\n'            # 7
            'colour = 2\n'                    # 8
            'ablations = ["zero", "nope"]\n')  # 9
    msg = _problems(text)
    assert "my.toml:6: organisms must be a non-empty list" in msg
    assert "my.toml:4: unknown key 'colour' in [fake]" in msg
    assert "my.toml:8: unknown key 'colour' in [fake2]" in msg
    assert "my.toml:9: unknown ablation 'nope'" in msg


def test_values_in_multiline_lists_and_missing_keys():
    text = ('[fake]\n'
            'methods = ["good"]\n'
            '[fake2]\n'                  # 3
            'organisms = [\n'
            '  "org-a",\n'
            '  "org-z",\n'               # 6
            ']\n'
            'methods = ["org-z"]\n')     # 8: the same bad value under another key
    msg = _problems(text)
    assert "my.toml:1: [fake] needs organisms" in msg
    assert "my.toml:6: unknown organism 'org-z' in [fake2]" in msg
    assert "my.toml:8: unknown method 'org-z' in [fake2]" in msg


def test_spec_syntax_error():
    with pytest.raises(SpecError, match="not valid TOML.*line 2"):
        parse_spec("[fake]\norganisms = [\"a\" \"b\"]\n", "x.toml")


def test_unknown_section_and_top_level_key():
    msg = _problems('seeds = 3\n[circuitz]\norganisms = ["a"]\n', "x.toml")
    assert "x.toml:2: unknown section [circuitz]" in msg
    assert "x.toml:1: unknown top-level key 'seeds'" in msg


BODY = '[fake]\norganisms = ["org-a"]\nmethods = ["good"]\nablations = ["zero"]\n'


def test_seed_from_the_file_unless_overridden(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("seed = 7\n" + BODY)
    assert load_spec(str(path)).seed == 7
    assert [j.seed for j in load_spec(str(path)).jobs()] == [7]
    assert load_spec(str(path), seed=0).seed == 0, "an explicit seed 0 still overrides"
    assert load_spec(str(path), seed=3).jobs()[0].key.endswith("/seed3")
    assert parse_spec(BODY).seed == 0


@pytest.mark.parametrize("bad", ["true", "-1", '"7"', "1.5"])
def test_bad_seed_points_to_its_line(bad):
    msg = _problems(f"\n# my seed\nseed = {bad}\n" + BODY)
    assert "my.toml:3: seed must be an integer from 0" in msg


def test_missing_spec_file_and_unknown_suite(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(str(tmp_path / "nope.toml"))
    with pytest.raises(UnknownNameError, match="Did you mean 'quick'"):
        load_spec("quik")
