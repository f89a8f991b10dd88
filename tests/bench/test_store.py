import sqlite3

import pytest

from interplab.bench.store import ResultsStore
from interplab.bench.tracks import Job
from interplab.errors import ResultsStoreError

JOB = Job("fake", "org-a", "good", "zero", seed=4)


def _row(metric, value, **extra):
    return {
        "organism": "org-a",
        "method": "good",
        "ablation": "zero",
        "seed": 4,
        "metric": metric,
        "value": value,
        "seconds": 0.5,
        **extra,
    }


def test_non_finite_values_are_null_with_a_reason(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.record(
            JOB,
            [
                _row("a", float("nan")),
                _row("b", float("-inf")),
                _row("c", float("nan"), reason="no edges to score"),
                _row("d", None),
                _row("e", 0.25),
            ],
            {},
            0.5,
        )
        rows = {r["metric"]: r for r in store.rows()}
        assert store.done_keys() == {JOB.key}
    assert (rows["a"]["value"], rows["a"]["reason"]) == (None, "not a number")
    assert (rows["b"]["value"], rows["b"]["reason"]) == (None, "-infinity")
    assert (rows["c"]["value"], rows["c"]["reason"]) == (None, "no edges to score")
    assert (rows["d"]["value"], rows["d"]["reason"]) == (None, "no value")
    assert (rows["e"]["value"], rows["e"]["reason"], rows["e"]["seed"]) == (0.25, None, 4)


def test_a_row_that_cannot_be_stored_leaves_the_store_unchanged(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(TypeError, match="metric b: value must be a number or None, got list"):
            store.record(JOB, [_row("a", 1.0), _row("b", [1.0])], {}, 0.5)
        with pytest.raises(TypeError):  # an artifact that is not JSON
            store.record(JOB, [_row("a", 1.0)], {"curve": object()}, 0.5)
        assert store.rows() == [] and store.jobs() == []


def test_corrupt_database_is_reported_not_overwritten(tmp_path):
    db = tmp_path / "results.sqlite"
    db.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(ResultsStoreError, match="left untouched"):
        ResultsStore(db)
    assert db.read_bytes().startswith(b"this is not sqlite")


def test_foreign_sqlite_database_is_rejected(tmp_path):
    db = tmp_path / "results.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE other (x)")
    con.commit()
    con.close()
    with pytest.raises(ResultsStoreError, match="no interplab meta table"):
        ResultsStore(db)


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE jobs (
    key TEXT PRIMARY KEY, track TEXT NOT NULL, organism TEXT NOT NULL, method TEXT NOT NULL,
    ablation TEXT, seed INTEGER NOT NULL, status TEXT NOT NULL, error TEXT,
    seconds REAL, finished_at REAL);
CREATE TABLE rows (
    job_key TEXT NOT NULL, organism TEXT NOT NULL, method TEXT NOT NULL, ablation TEXT,
    metric TEXT NOT NULL, value REAL NOT NULL, seconds REAL NOT NULL);
CREATE TABLE artifacts (
    job_key TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (job_key, name));
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO jobs VALUES ('fake/org-a/good/zero/seed4', 'fake', 'org-a', 'good', 'zero', 4, 'done',
                         NULL, 1.0, 0);
INSERT INTO rows VALUES ('fake/org-a/good/zero/seed4', 'org-a', 'good', 'zero', 'auc', 0.75, 1.0);
INSERT INTO rows VALUES ('fake/org-a/good/zero/seed4', 'org-a', 'good', 'zero', 'cpr', 9e999, 1.0);
INSERT INTO artifacts VALUES ('fake/org-a/good/zero/seed4', 'roc', '{"auc": 0.75}');
"""


def test_a_version_1_store_is_migrated_in_place(tmp_path):
    db = tmp_path / "results.sqlite"
    with sqlite3.connect(db) as con:
        con.executescript(V1_SCHEMA)
    with ResultsStore(db) as store:
        assert store.done_keys() == {JOB.key}
        rows = {r["metric"]: r for r in store.rows()}
        assert store.artifacts("roc") == {JOB.key: {"roc": {"auc": 0.75}}}
        store.record(Job("fake", "org-b", "good", "zero", 4), [_row("nan", float("nan"))], {}, 1.0)
    assert (rows["auc"]["value"], rows["auc"]["seed"], rows["auc"]["reason"]) == (0.75, 4, None)
    assert (rows["cpr"]["value"], rows["cpr"]["reason"]) == (None, "+infinity")
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("2",)
        assert {r[0] for r in con.execute("SELECT name FROM sqlite_master")} >= {"rows", "jobs"}
        assert "rows_v1" not in {r[0] for r in con.execute("SELECT name FROM sqlite_master")}


def test_a_store_from_a_newer_version_is_refused_with_a_way_out(tmp_path):
    db = tmp_path / "results.sqlite"
    with sqlite3.connect(db) as con:
        con.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('schema_version', '9');"
        )
    before = db.read_bytes()
    with pytest.raises(
        ResultsStoreError, match="schema version 9.*pass a new --out directory"
    ) as info:
        ResultsStore(db)
    assert "\n" not in str(info.value)
    assert db.read_bytes() == before


def test_a_parent_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ResultsStoreError, match="is a file, not a directory"):
        ResultsStore(tmp_path / "file" / "results.sqlite")
