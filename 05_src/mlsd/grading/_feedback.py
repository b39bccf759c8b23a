"""``feedback.html``: the score, one row per question with its message, the flags and the review.

Written here rather than by ``nbgrader generate_feedback``: nbgrader 0.9's feedback shows the
autograded notebook, whose test cells carry the hidden tests, and whose outputs are whatever the
learner's code printed, which may be anything it read while the tests ran. This page shows only
what the grader decided and the messages the instructors (or the grader) wrote, everything
escaped, no timestamps: the same notebook gives the same page.
"""

from __future__ import annotations

import html

from mlsd.grading._results import Result

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; color: #1f2328; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { border: 1px solid #d0d7de; padding: .35rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.passed { color: #1a7f37; } .failed, .error { color: #cf222e; } .timed_out { color: #9a6700; }
.needs_manual_grade { color: #0969da; }
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def render(result: Result) -> str:
    """The feedback page for ``result``."""
    rows = []
    for q in result.questions:
        points = "-" if q.points is None else f"{q.points:g}"
        rows.append(
            f'<tr><td>{_e(q.id)}</td><td>{points}/{q.max_points:g}</td><td class="{_e(q.status)}">'
            f"{_e(q.status)}</td><td>{_e(q.message)}</td></tr>"
        )
    body = [
        f"<h1>{_e(result.assignment)} / {_e(result.notebook)}</h1>",
        f"<p>Learner <b>{_e(result.learner)}</b>: <b>{result.score:g}/{result.max_score:g}</b> "
        f"({_e(result.status)}).</p>",
        "<table><tr><th>question</th><th>points</th><th>status</th><th>message</th></tr>",
        *rows,
        "</table>",
    ]
    pending = sum(q.max_points for q in result.questions if q.status == "needs_manual_grade")
    if pending:
        body.append(f"<p>{pending:g} points are read by a grader and not counted yet.</p>")
    if result.flags:
        body.append("<h2>Flags</h2><ul>" + "".join(f"<li>{_e(flag)}</li>" for flag in result.flags) + "</ul>")
    if result.review.required:
        reasons = "".join(f"<li>{_e(reason)}</li>" for reason in result.review.reasons)
        body.append(
            f"<h2>Review required</h2><p>A person will read this notebook's code.</p><ul>{reasons}</ul>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Feedback: {_e(result.assignment)} / {_e(result.learner)}</title>"
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
