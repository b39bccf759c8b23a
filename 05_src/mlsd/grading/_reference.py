"""Reference values: what the instructors' solution records, computed once and cached.

The source notebook (solutions and hidden tests) runs exactly as a submission does (same sandbox,
same fresh database, same inputs), and what its checks record, plus the tables they name, become
the values every submission is compared with. The result is cached under a key made of everything
that can change it: the source notebook, the assignment's comparisons and support files, the
``mlsd`` package and the course SQL, the run's environment (scale) and the grading seed. A
reference that does not pass its own comparisons, or whose check records nothing, stops grading
with a message for the instructors: a wrong reference would grade every learner wrongly.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path

from mlsd.errors import MLSDError
from mlsd.grading._common import GradingError, question_specs
from mlsd.grading._execute import Execution, execute
from mlsd.grading._limits import Limits
from mlsd.grading.checks import CheckFailed, CheckSet, DecodeError, Missing, Values

__all__ = ["ReferenceUnavailable", "reference_values"]

CACHE_VERSION = 1


@lru_cache(maxsize=1)
def package_fingerprint() -> str:
    """A hash of the ``mlsd`` package's Python files and the course SQL (what the kernels import)."""
    from mlsd.config import repo_root

    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for root in (package, repo_root() / "05_src" / "sql"):
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".sql") and "__pycache__" not in path.parts:
                digest.update(path.relative_to(root).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(course: Path, assignment: str, notebook: Path, env: Mapping[str, str], seed: int) -> str:
    from mlsd.grading._score import checks_path

    digest = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    source = Path(course) / "source" / assignment
    for path in sorted(source.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".ipynb_checkpoints" not in path.parts:
            if path.suffix == ".ipynb" and path != notebook:
                continue
            digest.update(path.relative_to(source).as_posix().encode())
            digest.update(path.read_bytes())
    checks = checks_path(course, assignment)
    digest.update(checks.read_bytes() if checks.is_file() else b"")
    digest.update(package_fingerprint().encode())
    digest.update(json.dumps(sorted(dict(env).items())).encode())
    digest.update(str(int(seed)).encode())
    return digest.hexdigest()


def _encode_table(value) -> object:
    if isinstance(value, str) or value is None:
        return value
    buffer = io.BytesIO()
    value.to_parquet(buffer, index=False)
    return {"parquet": base64.b64encode(buffer.getvalue()).decode("ascii")}


def _decode_table(value) -> object:
    if not isinstance(value, dict):
        return value
    import pandas as pd

    return pd.read_parquet(io.BytesIO(base64.b64decode(value["parquet"])))


class ReferenceUnavailable(MLSDError):
    """The reference could not be run here (no database, the grader failed): no submission can be graded."""


def _validate(execution: Execution, checks: CheckSet, specs, name: str) -> None:
    """Every check of the reference records once and passes its own comparison."""
    if execution.status == "error":
        raise ReferenceUnavailable(f"the reference solution could not be run ({execution.error})")
    if execution.killed:
        raise GradingError(
            f"The reference solution of {name} did not run to the end ({execution.error or 'stopped'}): "
            "run it with `uv run mlsd grade autograde --no-sandbox` on the source notebook and fix it."
        )
    problems = []
    for spec in specs:
        if spec.kind != "test":
            continue
        cell = execution.cell(spec.id) or {}
        records = [r for r in cell.get("records", []) if r.get("check") == spec.id]
        check = checks.checks.get(spec.id)
        if check is None:
            problems.append(f"{spec.id}: no comparison in checks/")
        elif cell.get("errors"):
            error = cell["errors"][0]
            problems.append(
                f"{spec.id}: the cell failed ({error.get('ename')}: {error.get('evalue', '')[:200]})"
            )
        elif len(records) != 1:
            problems.append(f"{spec.id}: the cell recorded {len(records)} sets of values (expected 1)")
        else:
            try:
                values = Values.from_record(
                    records[0], {t: _frame(execution.tables.get(t)) for t in check.tables}
                )
                check.function(values, values)
            except CheckFailed as failed:
                problems.append(f"{spec.id}: fails its own comparison ({failed})")
            except (DecodeError, Missing, RecursionError, TypeError, ValueError) as err:
                problems.append(f"{spec.id}: its values cannot be compared ({type(err).__name__}: {err})")
    if problems:
        raise GradingError(
            f"The reference solution of {name} does not pass its checks, so nothing can be graded against it: "
            + "; ".join(problems)
        )


def _frame(value):
    return None if isinstance(value, str) or value is None else value


def reference_values(
    course: Path,
    assignment: str,
    notebook: Path,
    *,
    checks: CheckSet,
    limits: Limits,
    sandbox: bool,
    server_url: str,
    env: Mapping[str, str],
    seed: int,
    cache_dir: Path | None,
    release_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> Execution:
    """The reference solution's recorded values and tables (from the cache when it has them)."""
    import nbformat

    key = cache_key(course, assignment, notebook, env, seed)
    cached = Path(cache_dir) / f"{assignment}-{notebook.stem}-{key[:20]}.json" if cache_dir else None
    if cached is not None and cached.is_file():
        raw = json.loads(cached.read_text(encoding="utf-8"))
        return Execution(
            "ran",
            cells=raw["cells"],
            tables={k: _decode_table(v) for k, v in raw["tables"].items()},
        )
    specs = question_specs(nbformat.read(notebook, as_version=4))
    execution = execute(
        course,
        assignment,
        notebook.name,
        notebook,
        limits=limits,
        sandbox=sandbox,
        server_url=server_url,
        release_dir=release_dir,
        env={**dict(env), "MLSD_GRADING_SEED": str(seed)},
        tables=checks.tables(),
        progress=(lambda step: progress(f"reference solution, {step}")) if progress else None,
    )
    _validate(execution, checks, specs, f"{assignment}/{notebook.name}")
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "cells": [
                {"grade_id": c.get("grade_id"), "index": c.get("index"), "records": c.get("records", [])}
                for c in execution.cells
                if c.get("records")
            ],
            "tables": {k: _encode_table(v) for k, v in execution.tables.items()},
        }
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload), encoding="utf-8")
        tmp.replace(cached)
    return execution
