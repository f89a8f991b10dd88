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
    text = (
        "[fake]\n"  # 1
        'organisms = ["org-a"]\n'  # 2
        'methods = ["good"]\n'  # 3
        "colour = 1\n"  # 4
        "[fake2]\n"  # 5
        'organisms = "org-a"\n'  # 6
        'methods = ["good"]\n'  # 7
        "colour = 2\n"  # 8
        'ablations = ["zero", "nope"]\n'
    )  # 9
    msg = _problems(text)
    assert "my.toml:6: organisms must be a non-empty list" in msg
    assert "my.toml:4: unknown key 'colour' in [fake]" in msg
    assert "my.toml:8: unknown key 'colour' in [fake2]" in msg
    assert "my.toml:9: unknown ablation 'nope'" in msg


def test_values_in_multiline_lists_and_missing_keys():
    text = (
        "[fake]\n"
        'methods = ["good"]\n'
        "[fake2]\n"  # 3
        "organisms = [\n"
        '  "org-a",\n'
        '  "org-z",\n'  # 6
        "]\n"
        'methods = ["org-z"]\n'
    )  # 8: the same bad value under another key
    msg = _problems(text)
    assert "my.toml:1: [fake] needs organisms" in msg
    assert "my.toml:6: unknown organism 'org-z' in [fake2]" in msg
    assert "my.toml:8: unknown method 'org-z' in [fake2]" in msg


def test_spec_syntax_error():
    with pytest.raises(SpecError, match="not valid TOML.*line 2"):
        parse_spec('[fake]\norganisms = ["a" "b"]\n', "x.toml")


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


def _with_applies(monkeypatch, why_not=True):
    """org-b takes only the `good` method; with ``why_not`` the track says why."""
    import dataclasses

    hooks = {"methods_of_fn": lambda o: ("good",) if o == "org-b" else fake_track.METHODS}
    if why_not:
        hooks["why_not_fn"] = lambda o, m: (
            None if o != "org-b" or m == "good" else f"{m} needs org-a"
        )
    monkeypatch.setattr(fake_track, "TRACK", dataclasses.replace(fake_track.TRACK, **hooks))


TWO = '[fake]\norganisms = ["org-a", "org-b"]\nmethods = ["good", "bad"]\nablations = ["zero"]\n'


def test_jobs_that_cannot_apply_are_not_expanded_and_are_listed_with_the_reason(monkeypatch):
    _with_applies(monkeypatch)
    spec = parse_spec(TWO)
    assert [j.key for j in spec.all_jobs()] == [
        "fake/org-a/good/zero/seed0",
        "fake/org-a/bad/zero/seed0",
        "fake/org-b/good/zero/seed0",
    ]
    assert [(j.key, why) for j, why in spec.left_out()] == [
        ("fake/org-b/bad/zero/seed0", "bad needs org-a")
    ]
    assert parse_spec(BODY).left_out() == []


def test_a_track_without_why_not_still_says_which_methods_apply(monkeypatch):
    _with_applies(monkeypatch, why_not=False)
    [(job, why)] = parse_spec(TWO).left_out()
    assert job.method == "bad" and why == "bad does not apply to org-b (its methods: good)"


def test_bench_list_names_the_left_out_jobs_on_stderr(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from interplab.cli.main import app

    _with_applies(monkeypatch)
    path = tmp_path / "s.toml"
    path.write_text(TWO)
    res = CliRunner().invoke(app, ["bench", "--spec", str(path), "--list"])
    assert res.exit_code == 0, res.output
    assert res.stdout.split() == [
        "fake/org-a/good/zero/seed0",
        "fake/org-a/bad/zero/seed0",
        "fake/org-b/good/zero/seed0",
    ], "stdout stays the list of jobs"
    assert res.stderr.strip() == "left out: fake/org-b/bad/zero/seed0: bad needs org-a"
