"""`mlsd grade feedback --post`: the small GitHub client, run against a local stand-in for GitHub's API.

GitHub cannot be reached here; the client's real requests go to a local HTTP server that answers
the three calls it makes (list pull requests, list comments, create or update a comment) and keeps
what it received.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from mlsd.grading import GradingError
from mlsd.grading._github import post_feedback

pytestmark = pytest.mark.grading


class StandIn(BaseHTTPRequestHandler):
    received: list = []
    comments: list = []

    def log_message(self, *args):
        pass

    def _send(self, status: int, payload) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read(self):
        length = int(self.headers.get("Content-Length", 0))
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self):
        url = urlsplit(self.path)
        self.received.append(("GET", url.path, parse_qs(url.query), self.headers.get("Authorization")))
        if url.path == "/repos/ada/course/pulls":
            head = parse_qs(url.query)["head"][0]
            pulls = [{"number": 7, "head": {"ref": "assignment-1"}}] if head == "ada:assignment-1" else []
            return self._send(200, pulls)
        if url.path == "/repos/ada/course/issues/7/comments":
            return self._send(200, self.comments)
        return self._send(404, {})

    def do_POST(self):
        body = self._read()
        self.received.append(("POST", self.path, body, self.headers.get("Authorization")))
        comment = {"id": 99, "body": body["body"], "html_url": "https://github.example/ada/course/pull/7#c99"}
        self.comments.append(comment)
        self._send(201, comment)

    def do_PATCH(self):
        body = self._read()
        self.received.append(("PATCH", self.path, body, self.headers.get("Authorization")))
        self.comments[0]["body"] = body["body"]
        self._send(200, self.comments[0])


@pytest.fixture
def github(monkeypatch):
    StandIn.received, StandIn.comments = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    yield StandIn
    server.shutdown()


def test_feedback_is_posted_once_then_updated(github):
    first = post_feedback(
        "ada", "https://github.com/ada/course.git", "assignment-1", "assignment_1", "Well done."
    )
    assert first.url.endswith("#c99") and first.note == ""
    again = post_feedback(
        "ada", "git@github.com:ada/course.git", "assignment-1", "assignment_1", "Now graded."
    )
    assert again.url.endswith("#c99")
    methods = [r[0] for r in github.received]
    assert methods == ["GET", "GET", "POST", "GET", "GET", "PATCH"]
    assert all(r[3] == "Bearer t0ken" for r in github.received)
    assert github.comments[0]["body"] == "<!-- mlsd-feedback:assignment_1 -->\nNow graded."


def test_nothing_is_posted_without_a_pull_request_or_outside_github(github):
    missing = post_feedback("ada", "https://github.com/ada/course", "assignment-2", "assignment_2", "x")
    assert missing.url == "" and "no open pull request from assignment-2" in missing.note
    local = post_feedback("bo", "/srv/forks/bo", "assignment-1", "assignment_1", "x")
    assert local.url == "" and "not a GitHub repository" in local.note
    assert not [r for r in github.received if r[0] in ("POST", "PATCH")]


def test_posting_needs_a_token(monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    with pytest.raises(GradingError, match="GITHUB_TOKEN"):
        post_feedback("ada", "https://github.com/ada/course", "assignment-1", "assignment_1", "x")
