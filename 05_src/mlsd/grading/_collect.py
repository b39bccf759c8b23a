"""Collect submissions at the deadline: each learner's notebook from their fork, with git, running nothing.

For each roster row (``learner,repository``), the branch is fetched into a local bare repository of
the grader's (no checkout, no hooks, no filters, no submodules: git only copies objects), the commit
is the branch head or the last commit before ``--before``, and the notebook is read from that commit
with ``git cat-file``. It is written as ``<out>/<learner>/<notebook>.ipynb`` next to
``submission.json`` (repository, branch, commit, commit time, fetched at, sha256 of the notebook).

Commit times are written by learners' own git, so they prove nothing: what makes the snapshot
authoritative is collecting at the deadline (a scheduled run), and ``fetched_at`` records when.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from mlsd.grading._common import (
    ASSIGNMENTS_FOLDER,
    GradingError,
    assignment_notebooks,
    branch_name,
    course_dir,
)

__all__ = ["Collected", "collect", "read_roster"]

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",  # never wait for a password
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh",
}


@dataclass
class Collected:
    """One learner's collection: what was taken, or why nothing was."""

    learner: str
    repository: str
    status: str  # "collected", "missing" (no fork, no branch, no notebook) or "flagged" (taken, with a note)
    branch: str
    commit: str = ""
    commit_time: str = ""
    fetched_at: str = ""
    notebook: str = ""  # the path in the fork (the first one, for a several-notebook assignment)
    files: dict[str, str] = field(default_factory=dict)  # name written -> path in the fork
    sha256: str = ""
    notes: list[str] = field(default_factory=list)


def read_roster(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``(learner, repository)`` pairs from a roster CSV with the columns ``learner,repository``."""
    from mlsd._csv import read_csv_rows

    rows = read_csv_rows(path, required=("learner", "repository"))
    pairs, seen = [], set()
    for line, row in rows:
        learner, repository = row["learner"].strip(), row["repository"].strip()
        if not _SAFE.match(learner):
            raise GradingError(
                f"{Path(path).name} line {line}: learner {learner!r} must be a user name (letters, digits, "
                "`-`, `_`, `.`), because it names the learner's folder."
            )
        if learner in seen:
            raise GradingError(f"{Path(path).name} line {line}: learner {learner!r} appears twice.")
        seen.add(learner)
        pairs.append((learner, repository))
    return pairs


def _git(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SSH_AUTH_SOCK")},
        **_GIT_ENV,
    }
    return subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", "-c", "protocol.file.allow=always", *args],
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def _fetch(
    cache: Path, repository: str, branch: str, ref: str, attempts: int, wait: float
) -> tuple[str, str]:
    """Fetch ``branch`` into ``ref``: ``("ok", "")``, ``("missing", why)`` or ``("unreachable", why)``."""
    last = ""
    for attempt in range(attempts):
        done = _git(
            [
                "fetch",
                "--no-tags",
                "--no-recurse-submodules",
                "--force",
                repository,
                f"+refs/heads/{branch}:{ref}",
            ],
            cache,
        )
        if done.returncode == 0:
            return "ok", ""
        last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        last = last[0][:300]
        if "couldn't find remote ref" in last or "could not find remote ref" in last.lower():
            return "missing", f"the fork has no branch {branch}"
        if attempt + 1 < attempts:
            time.sleep(wait * (attempt + 1))
    return "unreachable", last


def _commit(cache: Path, ref: str, before: str | None) -> tuple[str, str]:
    args = ["rev-list", "-1", "--format=%H %cI", "--no-commit-header"]
    if before:
        args.append(f"--before={before}")
    done = _git([*args, ref], cache)
    text = done.stdout.decode().strip()
    if done.returncode != 0 or not text:
        return "", ""
    sha, _, when = text.partition(" ")
    return sha, when


def _notebooks_at(cache: Path, commit: str, folder: str) -> list[str]:
    done = _git(["ls-tree", "-r", "--name-only", "-z", commit, "--", folder + "/"], cache)
    return sorted(p for p in done.stdout.decode("utf-8", "replace").split("\0") if p.endswith(".ipynb"))


def _blob(cache: Path, commit: str, path: str) -> bytes:
    done = _git(["cat-file", "blob", f"{commit}:{path}"], cache)
    if done.returncode != 0:
        raise GradingError(f"git cannot read {path} at {commit[:12]}")
    return done.stdout


def collect(
    roster: str | os.PathLike,
    assignment: str,
    *,
    out_dir: str | os.PathLike,
    branch: str | None = None,
    before: str | None = None,
    course: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    attempts: int = 3,
    retry_wait: float = 2.0,
    on_learner: Callable[[Collected], None] | None = None,
) -> list[Collected]:
    """Fetch every learner's submission of ``assignment``; see the module docstring.

    Parameters
    ----------
    roster : path-like
        CSV with ``learner,repository``: a git URL of the learner's fork (local paths and ``file://``
        work too).
    assignment : str
        The assignment; its notebooks are looked for in ``02_activities/assignments/<assignment>/``.
    out_dir : path-like
        One folder per learner is written here (replaced when collected again).
    branch : str, optional
        The branch learners submit on (default: ``assignment-1`` for ``assignment_1``).
    before : str, optional
        An ISO time: take the last commit before it instead of the branch head.
    cache_dir : path-like, optional
        Where the fetched objects are kept (default ``out_dir/.git-cache``); fetching again is fast.
    attempts, retry_wait : int, float
        An unreachable repository is tried ``attempts`` times, waiting ``retry_wait`` s more each time.

    Returns
    -------
    list of Collected
        One per roster row, in roster order; also written to ``out_dir/collected.csv``.
    """
    course = Path(course) if course is not None else course_dir()
    expected = [p.name for p in assignment_notebooks(course, assignment)]
    branch = branch or branch_name(assignment)
    if before:
        try:
            datetime.fromisoformat(before)
        except ValueError:
            raise GradingError(
                f"--before {before!r} is not an ISO time such as 2026-12-18T23:59:00-05:00."
            ) from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir else out / ".git-cache"
    if not (cache / "HEAD").is_file():
        cache.mkdir(parents=True, exist_ok=True)
        done = _git(["init", "--bare", "-q", "."], cache)
        if done.returncode != 0:
            raise GradingError("git is not installed or cannot create its cache: install git to collect.")
    folder = (ASSIGNMENTS_FOLDER / assignment).as_posix()
    results = []
    for learner, repository in read_roster(roster):
        item = _collect_one(
            cache, learner, repository, branch, before, folder, expected, attempts, retry_wait
        )
        target = out / learner
        if target.exists():
            import shutil

            shutil.rmtree(target)
        target.mkdir()
        digests = []
        for name, path in item.files.items():
            data = _blob(cache, item.commit, path)
            (target / name).write_bytes(data)
            digests.append(hashlib.sha256(data).hexdigest())
        item.sha256 = " ".join(digests)
        (target / "submission.json").write_text(json.dumps(asdict(item), indent=2) + "\n", encoding="utf-8")
        results.append(item)
        if on_learner is not None:
            on_learner(item)
    _write_summary(out / "collected.csv", results)
    return results


def _collect_one(cache, learner, repository, branch, before, folder, expected, attempts, wait) -> Collected:
    item = Collected(learner, repository, "missing", branch)
    ref = f"refs/mlsd/{learner}"
    item.fetched_at = datetime.now(UTC).isoformat(timespec="seconds")
    state, why = _fetch(cache, repository, branch, ref, attempts, wait)
    if state != "ok":
        item.notes.append(why if state == "missing" else f"the repository could not be reached ({why})")
        item.status = "missing" if state == "missing" else "unreachable"
        return item
    item.commit, item.commit_time = _commit(cache, ref, before)
    if not item.commit:
        item.notes.append(f"no commit on {branch} before {before}")
        return item
    found = _notebooks_at(cache, item.commit, folder)
    by_name = {PurePosixPath(p).name: p for p in found}
    if len(expected) == 1:
        name = expected[0]
        if name in by_name:
            item.files = {name: by_name[name]}
            if len(found) > 1:
                item.notes.append(f"{len(found)} notebooks in {folder}/: {name} was taken")
        elif len(found) == 1:
            item.files = {name: found[0]}
            item.notes.append(f"the notebook was renamed to {PurePosixPath(found[0]).name}: it was taken")
        elif found:
            item.notes.append(f"{len(found)} notebooks in {folder}/ and none is {name}: none was taken")
        else:
            item.notes.append(f"no notebook in {folder}/ at {item.commit[:12]}")
    else:  # several notebooks: each under its own name (the cohort grades each)
        item.files = {n: by_name[n] for n in expected if n in by_name}
        if len(item.files) < len(expected):
            item.notes.append(f"missing {', '.join(n for n in expected if n not in by_name)}")
    if item.files:
        item.notebook = next(iter(item.files.values()))
        item.status = "flagged" if item.notes else "collected"
    return item


def _write_summary(path: Path, results: list[Collected]) -> None:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["learner", "status", "commit", "commit_time", "fetched_at", "sha256", "notes"])
    for r in results:
        writer.writerow(
            [r.learner, r.status, r.commit, r.commit_time, r.fetched_at, r.sha256, "; ".join(r.notes)]
        )
    path.write_text(buffer.getvalue(), encoding="utf-8")
