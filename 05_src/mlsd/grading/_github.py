"""Post feedback on a learner's pull request through GitHub's REST API (kept small on purpose).

The token comes from ``GITHUB_TOKEN`` (or ``GH_TOKEN``): a token that may comment on the learners'
forks (the workflow's own token cannot; see ``grade-cohort.yml``). The API's address comes from
``GITHUB_API_URL``, as on GitHub Actions (default ``https://api.github.com``). One comment per pull
request and assignment, marked, and updated when posted again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from mlsd.grading._common import GradingError

__all__ = ["Posted", "post_feedback", "repository_of"]

_GITHUB = re.compile(r"(?:github\.com[/:])([A-Za-z0-9-]+)/([A-Za-z0-9._-]+?)(?:\.git)?/?$")
MAX_BODY = 60_000


@dataclass(frozen=True)
class Posted:
    learner: str
    url: str  # the comment's address, or "" when nothing was posted
    note: str = ""


def repository_of(url: str) -> tuple[str, str] | None:
    """``(owner, name)`` of a GitHub repository URL, or ``None`` for anything else.

    Examples
    --------
    >>> repository_of("https://github.com/octocat/mlsd-course.git"), repository_of("/tmp/fork")
    (('octocat', 'mlsd-course'), None)
    """
    match = _GITHUB.search(url.strip())
    return (match.group(1), match.group(2)) if match else None


def _session():
    import requests

    token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
    if not token:
        raise GradingError(
            "Posting feedback needs a token in GITHUB_TOKEN that may comment on the learners' forks "
            "(a classic token with the public_repo scope); without --post the feedback is only written to files."
        )
    session = requests.Session()
    session.headers.update(
        {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "mlsd-course-grader",
        }
    )
    return session


def post_feedback(learner: str, repository: str, branch: str, assignment: str, body: str) -> Posted:
    """Comment ``body`` on the open pull request from ``branch`` in the learner's fork ``repository``."""
    owner_repo = repository_of(repository)
    if owner_repo is None:
        return Posted(learner, "", f"{repository} is not a GitHub repository: not posted")
    owner, name = owner_repo
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    session = _session()
    marker = f"<!-- mlsd-feedback:{assignment} -->"
    text = f"{marker}\n{body}"[:MAX_BODY]
    pulls = session.get(
        f"{api}/repos/{owner}/{name}/pulls", params={"state": "open", "head": f"{owner}:{branch}"}, timeout=30
    )
    if pulls.status_code != 200:
        return Posted(
            learner, "", f"GitHub answered {pulls.status_code} when listing pull requests: not posted"
        )
    found = [p for p in pulls.json() if p.get("head", {}).get("ref") == branch]
    if not found:
        return Posted(learner, "", f"no open pull request from {branch} in {owner}/{name}: not posted")
    number = found[0]["number"]
    comments = session.get(
        f"{api}/repos/{owner}/{name}/issues/{number}/comments", params={"per_page": 100}, timeout=30
    )
    mine = [c for c in comments.json() if str(c.get("body", "")).startswith(marker)] if comments.ok else []
    if mine:
        done = session.patch(
            f"{api}/repos/{owner}/{name}/issues/comments/{mine[0]['id']}", json={"body": text}, timeout=30
        )
    else:
        done = session.post(
            f"{api}/repos/{owner}/{name}/issues/{number}/comments", json={"body": text}, timeout=30
        )
    if done.status_code not in (200, 201):
        return Posted(learner, "", f"GitHub answered {done.status_code} to the comment: not posted")
    return Posted(learner, done.json().get("html_url", ""))
