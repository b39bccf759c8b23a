"""One graded run of a notebook: a temporary course, a sandboxed kernel, a database of its own.

:func:`execute` is all that touches learner code, and it returns only what the grader observed
from outside: how each cell ran and what its checks sent (the progress file the grading child
writes), the tables the checks read from the submission's database after the kernel ended, the
flags of the repair, and the executed notebook for formgrader. The same function runs the
instructors' reference solution, so reference values and a learner's values are made the same way.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlsd.errors import MLSDError
from mlsd.grading._database import read_tables, scratch_database
from mlsd.grading._kernel import DB_PORT, prepare
from mlsd.grading._limits import Limits
from mlsd.grading._pgproxy import PostgresProxy
from mlsd.grading._workspace import KILL_GRACE, run_child, workspace

__all__ = ["Execution", "execute"]


@dataclass
class Execution:
    """What the grader saw of one run (nothing here was written by learner code)."""

    status: str  # "ran" (the notebook was executed, maybe stopped), or "error" (the grader failed)
    cells: list[dict] = field(default_factory=list)  # the progress lines, one per code cell
    tables: dict[str, object] = field(default_factory=dict)  # DataFrame, or the reason it is missing
    flags: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    autograded: object | None = None  # the autograded notebook (NotebookNode)
    killed: bool = False
    kill_after: float = 0.0
    error: str = ""
    log: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    replace: dict[str, str] = field(default_factory=dict)  # temporary paths -> placeholders, for messages

    def cell(self, grade_id: str) -> dict | None:
        return next((c for c in self.cells if c.get("grade_id") == grade_id), None)


def _support_files(course: Path, assignment: str, target: Path) -> Path:
    """The assignment's support files (everything but notebooks), copied for the kernel's folder."""
    source = course / "source" / assignment
    target.mkdir()
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_dir() or path.suffix == ".ipynb" or any(p.startswith(".") for p in rel.parts):
            continue
        if "__pycache__" in rel.parts or ".ipynb_checkpoints" in rel.parts:
            continue
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / rel)
    return target


def _read_progress(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    lines = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            break  # the last line may be cut by a kill
    return lines


def execute(
    course: Path,
    assignment: str,
    name: str,
    path: Path,
    *,
    limits: Limits,
    sandbox: bool,
    server_url: str,
    release_dir: Path,
    env: Mapping[str, str] | None = None,
    tables: Sequence[str] = (),
    kill_after: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Execution:
    """Run the notebook at ``path`` as submission ``name`` of ``assignment``; see the module docstring.

    ``release_dir`` holds the learner copies (see ``_release.cached_release``), against which the
    submission is repaired. ``progress`` hears ``cell 12/80`` as cells finish.
    """
    import nbformat

    on_cells = None
    if progress is not None:
        # Counted in the learner copy, which the submission is repaired against: the grader's own count.
        release = nbformat.read(Path(release_dir) / name, as_version=4)
        total = sum(cell.cell_type == "code" for cell in release.cells)

        def on_cells(done: int) -> None:
            progress(f"cell {min(done, total)}/{total}")

    kill = kill_after if kill_after is not None else limits.notebook_timeout + KILL_GRACE
    with workspace() as root:
        incoming = root / "incoming" / name
        incoming.parent.mkdir()
        shutil.copyfile(path, incoming)
        support = _support_files(course, assignment, root / "support")
        job = {
            "mode": "execute",
            "incoming": str(incoming),
            "release": str(Path(release_dir) / name),
            "source": str(Path(course) / "source" / assignment / name),
            "work": str(root / "work"),
            "limits": limits.to_dict(),
        }
        try:
            with scratch_database(server_url) as scratch:
                run_root = root / "run"
                run_root.mkdir()
                run_root.chmod(0o755)
                plan = prepare(
                    run_root,
                    sandbox=sandbox,
                    limits=limits,
                    env=dict(env or {}),
                    support=support,
                    database=scratch,
                )
                job["kernel"] = {
                    "sandbox": sandbox,
                    "channel": plan.channel,
                    "workspace": plan.workspace,
                    "root": str(run_root),
                }
                with PostgresProxy(
                    server_url, plan.db_socket_dir, user=scratch.role, database=scratch.name, port=DB_PORT
                ):
                    run = run_child(
                        job, root, jupyter_path=plan.jupyter_path, kill_after=kill, on_cells=on_cells
                    )
                read = read_tables(scratch.admin_url, list(tables)) if tables else {}
                database_name = scratch.name
        except MLSDError as err:  # no database, no grading
            return Execution("error", error=str(err))
        autograded_path = Path(job["work"]) / "autograded.ipynb"
        autograded = nbformat.read(autograded_path, as_version=4) if autograded_path.is_file() else None
        outcome = run.outcome
        execution = Execution(
            "ran",
            cells=_read_progress(Path(job["work"]) / "progress.jsonl"),
            tables=read,
            flags=list(outcome.get("flags", [])),
            unanswered=list(outcome.get("unanswered", [])),
            autograded=autograded,
            killed=run.killed,
            kill_after=kill,
            log=run.log,
            timings={"child": run.seconds, "setup": run.setup_seconds},
            replace={
                str(root): "<grader>",
                str(Path(course).resolve()): "<course>",
                database_name: "<database>",
            },
        )
        execution.timings["execution"] = run.seconds - run.setup_seconds
        started = (Path(job["work"]) / "phase").exists()
        if not (outcome.get("ok") or (run.killed and started)):
            execution.status = "error"
            execution.error = outcome.get("error") or (
                "it was stopped before the notebook started"
                if run.killed
                else f"its process ended with code {run.returncode}"
            )
            if outcome.get("traceback"):
                execution.log += "\n" + outcome["traceback"]
        return execution
