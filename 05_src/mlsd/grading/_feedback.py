"""``feedback.html``: the score, one row per question, the flags, and the notebook as graded.

Written here rather than by ``nbgrader generate_feedback``: nbgrader 0.9's feedback shows the
autograded notebook, whose test cells carry the hidden tests that autograde put back, and
their tracebacks quote them. This page shows test cells without their hidden regions, errors as
``name: value`` only, text outputs cut to a few thousand characters, no rich HTML or scripts
from the notebook (everything is escaped), and no timestamps, so it is the same for the same
notebook.
"""

from __future__ import annotations

import html

from mlsd.grading._common import grade_id, is_grade, is_solution, strip_ansi, strip_hidden
from mlsd.grading._results import Result

MAX_OUTPUT_CHARS = 5_000

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; color: #1f2328; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { border: 1px solid #d0d7de; padding: .35rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.passed { color: #1a7f37; } .failed, .error { color: #cf222e; } .timed_out { color: #9a6700; }
.needs_manual_grade { color: #0969da; }
.cell { border: 1px solid #d0d7de; border-radius: 6px; margin: .8rem 0; }
.cell header { background: #f6f8fa; padding: .3rem .6rem; font-size: .85rem; border-bottom: 1px solid #d0d7de; }
.cell.test { border-color: #0969da; }
pre { margin: 0; padding: .5rem .6rem; white-space: pre-wrap; word-break: break-word; font-size: .85rem; }
pre.out { background: #fbfbfb; border-top: 1px dashed #d0d7de; }
pre.err { background: #fff5f5; border-top: 1px dashed #d0d7de; color: #82071e; }
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _text(value) -> str:
    text = "".join(value) if isinstance(value, list) else str(value)
    text = strip_ansi(text)
    if len(text) > MAX_OUTPUT_CHARS:
        text = text[:MAX_OUTPUT_CHARS] + f"\n... cut: {len(text):,} characters in total ..."
    return text


def _outputs(cell, clean) -> str:
    parts = []
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            parts.append(f'<pre class="out">{_e(clean(_text(output.get("text", "")), limit=10**9))}</pre>')
        elif kind == "error":
            line = f"{output.get('ename', 'Error')}: {_text(output.get('evalue', ''))}"
            parts.append(f'<pre class="err">{_e(clean(line, limit=2000))}</pre>')
        elif kind in {"execute_result", "display_data"}:
            data = output.get("data", {})
            if "text/plain" in data:
                parts.append(f'<pre class="out">{_e(clean(_text(data["text/plain"]), limit=10**9))}</pre>')
            elif data:
                parts.append(f'<pre class="out">[{_e(", ".join(sorted(data)))} output not shown]</pre>')
    return "".join(parts)


def render(result: Result, autograded=None, clean=lambda text, **_: text) -> str:
    """The feedback page for ``result``; ``autograded`` is the notebook as nbgrader ran it, if any."""
    status_of = {q.id: q for q in result.questions}
    rows = []
    for q in result.questions:
        points = "-" if q.points is None else f"{q.points:g}"
        rows.append(
            f'<tr><td>{_e(q.id)}</td><td>{points}/{q.max_points:g}</td><td class="{_e(q.status)}">'
            f"{_e(q.status)}</td><td>{_e(q.message)}</td></tr>"
        )
    flags = "".join(f"<li>{_e(flag)}</li>" for flag in result.flags)
    body = [
        f"<h1>{_e(result.assignment)} / {_e(result.notebook)}</h1>",
        f"<p>Learner <b>{_e(result.learner)}</b>: <b>{result.score:g}/{result.max_score:g}</b> "
        f"({_e(result.status)}).</p>",
        "<table><tr><th>question</th><th>points</th><th>status</th><th>message</th></tr>",
        *rows,
        "</table>",
    ]
    if flags:
        body.append(f"<h2>Flags</h2><ul>{flags}</ul>")
    if autograded is not None:
        body.append("<h2>Your notebook, as graded</h2>")
        for number, cell in enumerate(autograded.cells, start=1):
            cid = grade_id(cell)
            test = is_grade(cell) and not is_solution(cell) and cell.get("cell_type") == "code"
            source = strip_hidden(cell.get("source", "")) if test else cell.get("source", "")
            label = f"cell {number}"
            if test and cid in status_of:
                q = status_of[cid]
                points = "-" if q.points is None else f"{q.points:g}"
                label += (
                    f" &middot; test {_e(cid)} &middot; {points}/{q.max_points:g} &middot; {_e(q.status)}"
                )
            elif cid in status_of:
                q = status_of[cid]
                label += f" &middot; {_e(cid)} &middot; {_e(q.status)}"
            css = "cell test" if test else "cell"
            body.append(
                f'<section class="{css}"><header>{label}</header><pre>{_e(_text(source))}</pre>'
                f"{_outputs(cell, clean) if cell.get('cell_type') == 'code' else ''}</section>"
            )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Feedback: {_e(result.assignment)} / {_e(result.learner)}</title>"
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
