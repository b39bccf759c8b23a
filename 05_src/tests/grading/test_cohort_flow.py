"""The deadline, end to end with real git and no GitHub: publish, forks, collect, grade, decide, feedback, final.

The instructors' repository is published into a new public repository; each learner clones it as
their fork and commits a notebook on the assignment's branch (the fixture course's ``demo``, so that
six gradings stay fast): full marks, the blank copy, a partial answer, an attack, a renamed notebook,
and one learner without the branch; one roster row points at a repository that does not exist.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess

import pytest

pytestmark = [pytest.mark.grading, pytest.mark.integration, pytest.mark.slow]

ATTACK = "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n"


def git(cwd, *args) -> str:
    identity = [
        "-c",
        "user.name=Learner",
        "-c",
        "user.email=learner@example.org",
        "-c",
        "init.defaultBranch=main",
    ]
    done = subprocess.run(["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def flow(tmp_path_factory, outside_repo, blank, make_submission, answers, course, grading_options):
    from mlsd.grading import grade_cohort
    from mlsd.grading._collect import collect
    from mlsd.publish import publish

    root = tmp_path_factory.mktemp("flow")
    public = outside_repo("public")
    publish(public)
    git(public, "init", "-q")
    git(public, "add", "-A")
    git(public, "commit", "-q", "-m", "The course")
    notebooks = {
        "ada": make_submission("flow-ada"),
        "bo": blank,
        "cy": make_submission(
            "flow-cy", answers={"rate_answer": "def default_rate(path):\n    return 0.5\n"}
        ),
        "dee": make_submission("flow-dee", answers={"add_answer": ATTACK + answers["add_answer"]}),
        "eli": make_submission("flow-eli"),
    }
    roster = [("ada", ""), ("bo", ""), ("cy", ""), ("dee", ""), ("eli", ""), ("fay", ""), ("gus", "")]
    rows = []
    for learner, _ in roster:
        fork = root / "forks" / learner
        if learner == "gus":
            rows.append((learner, str(root / "forks" / "nobody"), "9999"))  # no such repository
            continue
        subprocess.run(["git", "clone", "-q", str(public), str(fork)], check=True)
        if learner in notebooks:
            git(fork, "checkout", "-q", "-b", "demo")
            name = "my_demo.ipynb" if learner == "eli" else "demo.ipynb"
            target = fork / "02_activities" / "assignments" / "demo" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(notebooks[learner], target)
            git(fork, "add", "-A")
            git(fork, "commit", "-q", "-m", "My demo")
        rows.append((learner, f"file://{fork}", f"100{len(rows)}"))
    roster_csv = root / "roster.csv"
    with open(roster_csv, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["learner", "repository", "SIS User ID"])
        writer.writerows(rows)
    submissions = root / "submissions"
    collected = collect(roster_csv, "demo", out_dir=submissions, course=course, attempts=2, retry_wait=0.1)
    heard: list[str] = []
    frame = grade_cohort(
        submissions,
        "demo",
        out_dir=root / "results",
        course=course,
        progress=heard.append,
        options=grading_options,
        jobs=2,
    )
    return {
        "root": root,
        "public": public,
        "roster": roster_csv,
        "collected": collected,
        "frame": frame,
        "progress": heard,
    }


def test_collect_takes_each_fork_at_its_branch_and_says_why_not(flow):
    by = {c.learner: c for c in flow["collected"]}
    assert [c.learner for c in flow["collected"]] == ["ada", "bo", "cy", "dee", "eli", "fay", "gus"]
    assert {k: c.status for k, c in by.items()} == {
        "ada": "collected", "bo": "collected", "cy": "collected", "dee": "collected",
        "eli": "flagged", "fay": "missing", "gus": "unreachable",
    }  # fmt: skip
    assert "renamed to my_demo.ipynb" in by["eli"].notes[0]
    assert "no branch demo" in by["fay"].notes[0]
    saved = json.loads((flow["root"] / "submissions" / "ada" / "submission.json").read_text())
    assert {"repository", "branch", "commit", "commit_time", "fetched_at", "sha256"} <= set(saved)
    import hashlib

    notebook = flow["root"] / "submissions" / "ada" / "demo.ipynb"
    assert saved["sha256"] == hashlib.sha256(notebook.read_bytes()).hexdigest() and len(saved["commit"]) == 40


def test_cohort_grades_each_collected_notebook(flow):
    frame = flow["frame"].set_index("learner")
    assert frame.loc["ada", "score"] == 8 and frame.loc["eli", "score"] == 8  # renamed, still graded
    assert frame.loc["bo", "score"] == 0 and frame.loc["cy", "score"] == 6
    assert frame.loc["dee", "score"] == 0 and frame.loc["dee", "review"] == "required"
    assert frame.loc["fay", "status"] == frame.loc["gus", "status"] == "missing"


def test_cohort_progress_names_the_count_and_where_each_running_submission_is(flow):
    heard = flow["progress"]
    total = len(flow["frame"])
    assert heard[-1] == f"{total}/{total} graded", heard[-3:]
    # A submission that runs reports its cells as they finish, counted against the learner copy.
    assert any(re.search(r"now .*ada: cell \d+/\d+", line) for line in heard), heard
    counts = [int(line.split("/", 1)[0]) for line in heard]
    assert counts == sorted(counts), "the graded count never goes back"


def test_formgrader_sees_every_submission_and_a_manual_grade_changes_the_decision(flow, course):
    from nbgrader.api import Gradebook

    from mlsd.grading._gradebook import decide, gradebook_url

    learners = [c.learner for c in flow["collected"]]
    before = {d.learner: d for d in decide(course, "demo", learners)}
    assert before["ada"].decision == "" and "explain_answer has no manual grade" in before["ada"].waiting[0]
    assert before["bo"].decision == "incomplete" and before["fay"].decision == "missing"
    assert (course / "autograded" / "ada" / "demo" / "demo.ipynb").is_file()
    with Gradebook(gradebook_url(course)) as gb:
        assert {s.student.id for s in gb.find_assignment("demo").submissions} >= {
            "ada",
            "bo",
            "cy",
            "dee",
            "eli",
        }
        grade = gb.find_grade("explain_answer", "demo", "demo", "ada")
        grade.manual_score = 2
        comment = gb.find_comment("explain_answer", "demo", "demo", "ada")
        comment.manual_comment = "Clear and to the point."
        gb.db.commit()
    after = {d.learner: d for d in decide(course, "demo", learners)}
    assert after["ada"].decision == "complete" and after["ada"].autograded == 8
    assert after["dee"].decision == "" and "review required" in after["dee"].waiting[0]


def test_feedback_and_final_grades(flow, course, tmp_path):
    from mlsd.grading import write_final
    from mlsd.grading._gradebook import Decision, feedback_texts, write_decisions

    texts = feedback_texts(course, "demo")
    assert "Clear and to the point." in texts["ada"] and "| explain_answer | 2/2 |" in texts["ada"]
    decisions = [Decision("ada", "complete"), Decision("bo", "incomplete"), Decision("fay", "missing")]
    assignments = tmp_path / "ASSIGNMENTS.csv"
    write_decisions(decisions, "assignment_1", assignments)
    write_decisions(
        [Decision("ada", "complete"), Decision("bo", "complete"), Decision("fay", "missing")],
        "assignment_2",
        assignments,
    )
    assert assignments.read_text().splitlines()[1] == "ada,complete,complete"
    export = tmp_path / "canvas.csv"
    lines = [
        "Student;ID;SIS User ID;SIS Login ID;Section;Quiz 1 (11);Quiz 2 (12);Quiz 3 (13);Quiz 4 (14);Quiz 5 (15);Quiz 6 (16);Final Score",
        "    Points Possible;;;;;10;10;10;10;10;10;",
        "Lovelace, Ada;1;1000;ada;A;10;9,5;8;EX;7;10;",
        "Ørsted, Bo;2;1001;bo;A;6;6;6;6;6;6;",
        "Student, Test;3;;;A;0;0;0;0;0;0;",
        "Fay, Fay;4;1005;fay;A;;;;;;;",
    ]
    export.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-16"))  # Excel's "Unicode text"
    final = tmp_path / "FINAL.csv"
    canvas = tmp_path / "canvas_import.csv"
    frame = write_final(export, assignments, final, roster=flow["roster"], canvas_out=canvas).set_index(
        "learner"
    )
    assert frame.loc["ada", "quiz_average"] == 89  # (10+9.5+8+7+10)/5 of 10 points, the excused quiz left out
    assert frame.loc["ada", "result"] == "pass" and frame.loc["bo", "final_score"] == 66.0
    assert frame.loc["fay", "result"] == "fail"
    imported = canvas.read_text(encoding="utf-8").splitlines()
    assert imported[0] == "Student,ID,SIS User ID,SIS Login ID,Section,Final score,Result"
    assert imported[1].startswith('"Lovelace, Ada",1,1000,ada,A,93.40,complete')
