"""Grading a pull request (in a git repository built here) and a cohort of learners."""

from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd
import pytest

from mlsd.grading import GradingError, changed_files, grade_cohort, grade_pr

pytestmark = [pytest.mark.grading, pytest.mark.integration, pytest.mark.slow]

NOTEBOOK = "02_activities/assignments/demo/demo.ipynb"


def git(repo, *args):
    subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.org", "-C", str(repo), *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def pr_repo(tmp_path_factory, blank, make_submission):
    """main: the learner copy; branch demo: the notebook solved, plus two files a submission should not change."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path_factory.mktemp("fork")
    folder = repo / "02_activities" / "assignments" / "demo"
    folder.mkdir(parents=True)
    shutil.copy(blank, folder / "demo.ipynb")
    shutil.copy(blank.parent / "outcomes.csv", folder / "outcomes.csv")
    (repo / "README.md").write_text("# Course\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "demo")
    shutil.copy(make_submission("pr"), folder / "demo.ipynb")
    (repo / "notes.txt").write_text("my notes\n")
    with open(folder / "outcomes.csv", "a") as handle:
        handle.write("11,0\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "my answers")
    return repo


def test_changed_files_lists_the_pull_request(pr_repo):
    assert sorted(changed_files("main", "demo", pr_repo)) == [
        ("A", "notes.txt"),
        ("M", NOTEBOOK),
        ("M", "02_activities/assignments/demo/outcomes.csv"),
    ]


def test_grade_pr_grades_the_notebook_and_notes_other_files(
    pr_repo, course, grading_options, tmp_path, monkeypatch
):
    step_summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    # The working tree is the base: the submission is read from git, not from the checkout.
    git(pr_repo, "checkout", "-q", "main")
    results = grade_pr(
        "main",
        head="demo",
        repo=pr_repo,
        out_dir=tmp_path / "out",
        course=course,
        learner="ada",
        options=grading_options,
    )
    assert len(results) == 1
    result = results[0]
    assert (result.status, result.score, result.learner) == ("graded", 8, "ada")
    notes = [f for f in result.flags if "ignored for grading" in f]
    assert (
        len(notes) == 2 and any("notes.txt" in n for n in notes) and any("outcomes.csv" in n for n in notes)
    )
    saved = json.loads((tmp_path / "out" / "demo" / "demo" / "results.json").read_text())
    assert saved["score"] == 8 and saved["flags"] == result.flags
    summary = step_summary.read_text()
    assert "| test_count | 3/3 | passed |" in summary and "notes.txt" in summary
    assert (tmp_path / "out" / "summary.md").read_text() == summary


def test_grade_pr_without_a_notebook_grades_nothing(pr_repo, course, tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    git(pr_repo, "checkout", "-q", "-b", "docs", "main")
    (pr_repo / "README.md").write_text("# Course, edited\n")
    git(pr_repo, "commit", "-q", "-am", "docs")
    assert grade_pr("main", head="docs", repo=pr_repo, out_dir=tmp_path, course=course) == []
    assert "nothing to grade" in (tmp_path / "summary.md").read_text()


def test_grade_pr_reports_a_bad_ref(pr_repo, course, tmp_path):
    from mlsd.grading import GradingError

    with pytest.raises(GradingError, match="fetch-depth"):
        grade_pr("no-such-branch", repo=pr_repo, out_dir=tmp_path, course=course)


def test_grade_cohort_solved_blank_and_missing(tmp_path, blank, make_submission, course, grading_options):
    submissions = tmp_path / "submissions"
    (submissions / "alice").mkdir(parents=True)
    shutil.copy(make_submission("cohort"), submissions / "alice" / "demo.ipynb")  # flat layout
    (submissions / "bob" / "demo").mkdir(parents=True)
    shutil.copy(blank, submissions / "bob" / "demo" / "demo.ipynb")  # assignment subfolder
    (submissions / "carol").mkdir()  # nothing submitted
    (submissions / ".git").mkdir()  # not a learner
    frame = grade_cohort(
        submissions, "demo", out_dir=tmp_path / "out", progress=None, course=course, options=grading_options
    )
    assert list(frame["learner"]) == ["alice", "bob", "carol"]
    assert list(frame["status"]) == ["graded", "graded", "missing"]
    assert list(frame["score"]) == [8, 0, 0] and set(frame["max_score"]) == {10}
    assert list(frame.columns[5:]) == [
        "test_add_visible",
        "test_add_hidden",
        "test_count",
        "test_rate",
        "explain_answer",
    ]
    saved = pd.read_csv(tmp_path / "out" / "gradebook.csv")
    assert list(saved["learner"]) == ["alice", "bob", "carol"] and saved.loc[0, "test_count"] == 3
    assert pd.isna(saved.loc[0, "explain_answer"])  # waits for a grader
    assert (tmp_path / "out" / "carol" / "results.json").is_file()


def test_grade_cohort_in_parallel_gives_the_same_gradebook(
    tmp_path, blank, make_submission, course, grading_options
):
    submissions = tmp_path / "submissions"
    for learner, source in {"ann": make_submission("parallel"), "ben": blank, "cat": blank}.items():
        (submissions / learner).mkdir(parents=True)
        shutil.copy(source, submissions / learner / "demo.ipynb")
    (submissions / "dan").mkdir()  # nothing submitted
    options = {"progress": None, "course": course, "options": grading_options}
    one = grade_cohort(submissions, "demo", out_dir=tmp_path / "one", jobs=1, **options)
    two = grade_cohort(submissions, "demo", out_dir=tmp_path / "two", jobs=2, **options)
    pd.testing.assert_frame_equal(one, two)
    assert list(two["learner"]) == ["ann", "ben", "cat", "dan"] and list(two["score"]) == [8, 0, 0, 0]
    for learner in ("ann", "ben", "dan"):
        assert (tmp_path / "one" / learner / "results.json").read_bytes() == (
            tmp_path / "two" / learner / "results.json"
        ).read_bytes()
    with pytest.raises(GradingError, match="jobs must be 1 or more"):
        grade_cohort(submissions, "demo", out_dir=tmp_path / "three", jobs=0, **options)


def test_a_cohort_survives_hostile_submissions_and_keeps_learners_apart(
    tmp_path, blank, make_submission, answers, course, grading_options, tree_digest
):
    """One learner attacks another's file; others submit a link to the solutions, junk, an old format."""
    import nbformat

    submissions = tmp_path / "submissions"
    attack = (
        "import glob, os\n"
        f"for path in glob.glob({str(submissions)!r} + '/*/demo.ipynb') + glob.glob('/tmp/mlsd-cohort-*/*/demo.ipynb'):\n"
        "    try:\n"
        "        open(path, 'w').write('{}')\n"
        "    except OSError:\n"
        "        pass\n\n\n"
    )
    sources = {
        "mallory": make_submission("cohort-mallory", answers={"add_answer": attack + answers["add_answer"]}),
        "victim": make_submission("cohort-victim"),
        "flood": make_submission(
            "cohort-flood",
            answers={
                "rate_answer": "for i in range(3000):\n    print('x' * 5000)\n\n" + answers["rate_answer"]
            },
        ),
    }
    for learner, source in sources.items():
        (submissions / learner).mkdir(parents=True)
        shutil.copy(source, submissions / learner / "demo.ipynb")
    (submissions / "linker").mkdir()
    (submissions / "linker" / "demo.ipynb").symlink_to(course / "source" / "demo" / "demo.ipynb")
    (submissions / "folder-link").symlink_to(submissions / "victim")
    (submissions / "brackets").mkdir()
    (submissions / "brackets" / "demo.ipynb").write_text("[" * 400_000)
    old = nbformat.convert(nbformat.read(sources["victim"], as_version=4), 3)
    (submissions / "old").mkdir()
    (submissions / "old" / "demo.ipynb").write_text(nbformat.writes(old, version=3))
    before = tree_digest(submissions)
    frame = grade_cohort(
        submissions, "demo", out_dir=tmp_path / "out", progress=None, course=course, options=grading_options
    ).set_index("learner")
    assert tree_digest(submissions) == before  # nothing of the submissions changed
    assert frame.loc["victim", "score"] == 8 and frame.loc["mallory", "score"] == 8
    assert frame.loc["mallory", "review"] == "required"
    assert frame.loc["old", "status"] == "graded" and frame.loc["old", "score"] == 8
    for learner, words in (
        ("linker", "symbolic link"),
        ("folder-link", "symbolic link"),
        ("brackets", "nested too deeply"),
    ):
        assert frame.loc[learner, "status"] == "invalid"
        assert (
            words
            in json.loads((tmp_path / "out" / learner / "results.json").read_text())["questions"][0][
                "message"
            ]
        )
    flood = json.loads((tmp_path / "out" / "flood" / "results.json").read_text())
    assert flood["score"] == 8 and any("was dropped" in flag for flag in flood["flags"])
    assert (tmp_path / "out" / "flood" / "feedback.html").stat().st_size < 20_000
    assert (tmp_path / "out" / "gradebook.csv").is_file()
