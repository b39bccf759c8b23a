"""`mlsd course publish`: the learners' repository holds everything learners use and nothing private."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlsd.config import repo_root
from mlsd.publish import PRIVATE_TESTS, is_private, leaks, private_texts, publish

pytestmark = [pytest.mark.grading]


def tree(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(folder).parts
    }


@pytest.fixture(scope="module")
def published(outside_repo):
    out = outside_repo("public")
    return publish(out, commit=False), out


def test_no_solution_hidden_test_answer_key_or_quiz_text_is_published(published):
    _, out = published
    texts = private_texts()
    assert sum(len(lines) for lines in texts.values()) > 500  # the sources, keys and quizzes were read
    assert leaks(out, texts) == []
    assert leaks(repo_root() / "03_instructional_team", texts), "the scan must be able to find private text"


def test_private_folders_and_files_stay_behind(published):
    result, out = published
    files = set(tree(out))
    assert not any(
        f.startswith(("03_instructional_team/nbgrader/", "03_instructional_team/answer_keys/")) for f in files
    )
    assert not any(
        is_private(f) and f not in ("03_instructional_team/README.md", ".github/workflows/autograde.yml")
        for f in files
    )
    assert ".github/workflows/grade-cohort.yml" not in files and not any(
        f.startswith(".github/learners/") for f in files
    )
    assert "mlsd grade check" in (out / ".github" / "workflows" / "autograde.yml").read_text()
    for required in ("README.md", "SETUP.md", "pyproject.toml", "uv.lock", ".ci/run", "01_materials/labs/01_ml_system_design.ipynb",
                     "02_activities/assignments/assignment_1/assignment_1.ipynb", "04_this_cohort/README.md",
                     "05_src/mlsd/__init__.py", "05_src/tests/grading/fixture_course/source/demo/demo.ipynb"):  # fmt: skip
        assert required in files, required
    assert not any(f.startswith("05_src/tests/") and is_private(f) for f in files)
    playbook = (out / "03_instructional_team" / "README.md").read_text()
    assert "<!-- private -->" not in playbook and "# Instructional team" in playbook
    assert (out / ".ci" / "run").stat().st_mode & 0o100  # still executable


def test_publishing_twice_gives_the_same_tree(published, outside_repo):
    _, out = published
    again = publish(outside_repo("again"), commit=False)
    assert tree(out) == tree(again.out)


def test_publishing_into_a_checkout_commits_on_top(outside_repo):
    def git(*args):
        identity = ["-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main"]
        return subprocess.run(
            ["git", *identity, *args], cwd=public, capture_output=True, text=True, check=True
        ).stdout

    public = outside_repo("public")
    git("init", "-q")
    (public / "STALE.md").write_text("a file the course no longer has\n")
    git("add", "-A")
    git("commit", "-q", "-m", "An older course")
    first = publish(public)
    assert first.commit and not (public / "STALE.md").exists()
    assert publish(public).commit is None  # nothing changed: no empty commit
    assert git("rev-list", "--count", "HEAD").strip() == "2"
    assert git("status", "--porcelain").strip() == ""


def test_the_published_tests_collect_without_private_material(published):
    _, out = published
    env = {"PYTHONPATH": str(out / "05_src"), "PATH": "/usr/bin:/bin", "HOME": str(out)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=out,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    collected = done.stdout
    assert "tests collected" in collected or "tests collected" in collected.replace(
        "test collected", "tests collected"
    )
    for pattern in PRIVATE_TESTS:
        stem = pattern.rsplit("/", 1)[-1].split("*")[0]
        assert f"/{stem}" not in collected, pattern


def test_publish_refuses_a_folder_inside_the_instructors_repository():
    from mlsd.publish import PublishError

    with pytest.raises(PublishError, match="outside it"):
        publish(repo_root() / "05_src" / "build" / "public")
