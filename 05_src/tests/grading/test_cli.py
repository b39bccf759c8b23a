"""``mlsd grade``: help, examples and exit codes (0 for every result, 1 for an error)."""

from __future__ import annotations

import argparse
import json

import pytest

from mlsd import cli

pytestmark = pytest.mark.grading


@pytest.fixture
def main():
    """``mlsd.cli.main``, which registers the grade commands (``mlsd/cli/grade.py``)."""
    return cli.main


def test_every_grade_command_has_help_and_an_example(main, capsys):
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    grade = commands.choices["grade"]
    actions = next(a for a in grade._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(actions.choices) == [
        "autograde",
        "check",
        "cohort",
        "collect",
        "decide",
        "feedback",
        "final",
        "pr",
        "release",
    ]
    for name, sub in [("grade", grade), *actions.choices.items()]:
        assert sub.description and "example:" in sub.epilog and "mlsd grade" in sub.epilog, name
    assert main(["grade"]) == 2 and "ACTION" in capsys.readouterr().out


def test_autograde_exit_codes(main, course, tmp_path, capsys):
    bad = tmp_path / "demo.ipynb"
    bad.write_text("{ not json")
    base = ["grade", "autograde", "--assignment", "demo", "--learner", "ada", "--course", str(course)]
    assert main([*base, "--notebook", str(bad), "--out", str(tmp_path / "invalid")]) == 0
    assert json.loads((tmp_path / "invalid" / "results.json").read_text())["status"] == "invalid"
    assert main([*base, "--notebook", str(tmp_path / "none.ipynb"), "--out", str(tmp_path / "missing")]) == 0
    assert "missing" in capsys.readouterr().out
    unreachable = ["--database-url", "postgresql://postgres@127.0.0.1:9/none"]
    notebook = course / "source" / "demo" / "demo.ipynb"
    assert main([*base, "--notebook", str(notebook), "--out", str(tmp_path / "error"), *unreachable]) == 1
    assert json.loads((tmp_path / "error" / "results.json").read_text())["status"] == "error"


def test_bad_input_exits_1_with_the_next_step(main, course, tmp_path, capsys):
    code = main(
        [
            "grade",
            "autograde",
            "--assignment",
            "nope",
            "--notebook",
            "x.ipynb",
            "--learner",
            "ada",
            "--course",
            str(course),
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 1 and "known assignments are demo" in capsys.readouterr().err


def test_final_command(main, tmp_path, capsys):
    quizzes, assignments = tmp_path / "Q.csv", tmp_path / "A.csv"
    quizzes.write_text(
        "learner,quiz_1,quiz_2,quiz_3,quiz_4,quiz_5,quiz_6\nada,90,90,90,90,90,90\nbo,10,,,,,\n"
    )
    assignments.write_text("learner,assignment_1,assignment_2\nada,complete,complete\nbo,missing,missing\n")
    out = tmp_path / "FINAL.csv"
    assert (
        main(
            [
                "grade",
                "final",
                "--quizzes",
                str(quizzes),
                "--assignments",
                str(assignments),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "2 learners: 1 pass, 1 fail" in capsys.readouterr().out and out.is_file()
    assignments.write_text("learner,assignment_1,assignment_2\nada,complete,done\nbo,missing,missing\n")
    assert (
        main(
            [
                "grade",
                "final",
                "--quizzes",
                str(quizzes),
                "--assignments",
                str(assignments),
                "--out",
                str(out),
            ]
        )
        == 1
    )
    assert "line 2 (learner 'ada'), column assignment_2: 'done'" in capsys.readouterr().err


def test_pr_command_without_notebooks_exits_0(main, course, tmp_path, capsys):
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    run = ["git", "-c", "user.name=T", "-c", "user.email=t@example.org", "-C", str(repo)]
    subprocess.run([*run, "init", "-q", "-b", "main"], check=True)
    (repo / "README.md").write_text("x\n")
    subprocess.run([*run, "add", "-A"], check=True)
    subprocess.run([*run, "commit", "-q", "-m", "base"], check=True)
    subprocess.run([*run, "checkout", "-q", "-b", "x"], check=True)
    (repo / "notes.txt").write_text("y\n")
    subprocess.run([*run, "add", "-A"], check=True)
    subprocess.run([*run, "commit", "-q", "-m", "notes"], check=True)
    code = main(
        [
            "grade",
            "pr",
            "--base",
            "main",
            "--repo",
            str(repo),
            "--course",
            str(course),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 0 and "nothing to grade" in capsys.readouterr().out


def test_check_prints_one_row_per_question_and_writes_for_the_workflow(
    main, released, pg_url, tmp_path, capsys
):
    notebook = released / "demo" / "demo.ipynb"
    code = main(
        [
            "grade",
            "check",
            "--notebook",
            str(notebook),
            "--database-url",
            pg_url,
            "--out",
            str(tmp_path / "out"),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 1 and "0/4 visible checks passed" in printed and "Hidden checks run when" in printed
    saved = json.loads((tmp_path / "out" / "check.json").read_text())
    assert [q["status"] for q in saved["questions"]] == ["failed"] * 4
    assert "NotImplementedError" in (tmp_path / "out" / "summary.md").read_text()


def test_collect_with_a_roster_that_lacks_a_column_says_which(main, course, tmp_path, capsys):
    roster = tmp_path / "roster.csv"
    roster.write_text("learner;fork\nada;/tmp/x\n")
    code = main(
        ["grade", "collect", "--roster", str(roster), "--assignment", "demo", "--course", str(course)]
    )
    assert code == 1 and "needs learner, repository (missing: repository)" in capsys.readouterr().err


def test_final_reads_a_canvas_export_and_writes_its_import(main, tmp_path, capsys):
    export = tmp_path / "export.csv"
    export.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (1),Quiz 2 (2),Quiz 3 (3),Quiz 4 (4),Quiz 5 (5),Quiz 6 (6)\n"
        "    Points Possible,,,,,10,10,10,10,10,10\n"
        '"Lee, Ann",5,700,ann,A,10,10,10,10,10,10\n',
        encoding="latin-1",
    )
    roster = tmp_path / "roster.csv"
    roster.write_text("learner,repository,SIS User ID\nann,https://github.com/ann/course,700\n")
    assignments = tmp_path / "ASSIGNMENTS.csv"
    assignments.write_text("learner,assignment_1,assignment_2\nann,complete,incomplete\n")
    out, canvas = tmp_path / "FINAL.csv", tmp_path / "import.csv"
    code = main(
        [
            "grade",
            "final",
            "--quizzes",
            str(export),
            "--assignments",
            str(assignments),
            "--roster",
            str(roster),
            "--out",
            str(out),
            "--canvas-out",
            str(canvas),
        ]  # fmt: skip
    )
    assert code == 0 and "1 learners: 1 pass" in capsys.readouterr().out
    assert out.read_text().splitlines()[1] == "ann,100.00,100,50,90.00,pass"
    assert canvas.read_text().splitlines()[1] == '"Lee, Ann",5,700,ann,A,90.00,complete'


def test_course_publish_writes_the_learners_repository(outside_repo, capsys):
    from mlsd import cli as real_cli

    public = outside_repo("public")
    assert real_cli.main(["course", "publish", "--out", str(public), "--no-commit"]) == 0
    assert "files in" in capsys.readouterr().out
    assert (public / "README.md").is_file()
    assert not (public / "03_instructional_team" / "nbgrader").exists()
