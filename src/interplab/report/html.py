"""The self-contained HTML report of a bench run (works offline: inline CSS and SVG, no CDN).

Reads ``DIR/results.sqlite`` (rows and artifacts); never runs a model. The page is the summary,
the leaderboard, then each registered track's own section (``Track.section``) for the tracks
the run holds, in registration order, then the failed jobs. This module holds no track's content.
"""

from __future__ import annotations

import datetime as _dt
from html import escape
from pathlib import Path

from interplab.bench.runner import DB_NAME
from interplab.bench.store import ResultsStore
from interplab.errors import ResultsStoreError
from interplab.models.io import atomic_write_text
from interplab.report import summary
from interplab.report._page import collapsible, detail, resolve, tracks_in
from interplab.report.leaderboard import leaderboard_section

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;margin:8px 0 18px;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f4f4f4}
td.name,th.name{text-align:left}.best{font-weight:bold;background:#e8f4e8}
.grid{display:flex;flex-wrap:wrap;gap:14px}.card{border:1px solid #eee;border-radius:6px;padding:8px}
.baseline{color:#666;font-style:italic;background:#f7f7f7}.baseline .tag{font-size:10px;font-weight:normal}
td.above{background:#fbe9e7}.baseline-note{color:#a33;font-size:12px;margin:-12px 0 14px}
.muted{color:#777;font-size:12px}.scroll{overflow-x:auto}code{background:#f4f4f4;padding:1px 4px;border-radius:3px}
"""


def render_report(out_dir: str | Path) -> Path:
    """Write ``out_dir/report.html`` from the stored results; returns its path."""
    out_dir = Path(out_dir)
    db = out_dir / DB_NAME
    if not db.is_file():
        raise ResultsStoreError(
            f"no {DB_NAME} in {out_dir}; run `interplab bench --out {out_dir}` first"
        )
    with ResultsStore(db) as store:
        html = build_html(store, title=f"interplab bench — {out_dir.name}")
    path = out_dir / "report.html"
    atomic_write_text(path, html)
    return path


def build_html(store: ResultsStore, title: str) -> str:
    rows = store.rows()
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>",
        f"<p class='muted'>Generated {_dt.datetime.now().isoformat(timespec='seconds')} · "
        f"{len(rows)} result rows · {len(store.jobs())} jobs</p>",
        summary.section(store),
    ]
    shown = detail(store)  # per-organism tables: not for the zoo's 200 organisms
    parts.append(
        collapsible(
            "Leaderboard: every organism and ablation",
            leaderboard_section(shown.rows(), tracks=sorted({j.track for j in shown.jobs()})),
        )
    )
    done = set()
    for track in tracks_in(store):
        section = resolve(track.section)
        if section is not None and section not in done:  # tracks may share a section
            done.add(section)
            parts.append(section(store))
    parts.append(failures_section(store))
    parts.append("</body></html>")
    return "".join(parts)


def failures_section(store: ResultsStore) -> str:
    failed = [j for j in store.jobs() if j.status == "failed"]
    if not failed:
        return ""
    items = "".join(
        f"<li><code>{escape(j.key)}</code>: {escape((j.error or '').strip().splitlines()[-1])}</li>"
        for j in failed
    )
    return (
        f"<h2 id='failures'>Failed jobs</h2><ul>{items}</ul><p class='muted'>Rerun the same "
        "command to retry them; finished jobs are not recomputed.</p>"
    )
