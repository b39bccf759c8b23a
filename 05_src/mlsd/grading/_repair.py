"""Read a submitted notebook and put the instructors' cells back before nbgrader sees it.

:func:`read_submission` decides whether a file is a notebook at all (merge-conflict markers,
bad JSON, not a Jupyter notebook: ``invalid`` with a message that says what to do).

:func:`repair` compares the submission with the learner copy that ``generate_assignment`` made
(the release copy, so hidden-test cells are never reported as edited) and restores what a
learner may not change: deleted, edited, duplicated or re-typed test and read-only cells,
their nbgrader metadata, and the kernel. Every restoration becomes a flag. nbgrader's own
``OverwriteCells`` (with ``add_missing_cells``) then runs as a second line of defence and
puts the hidden tests back from the gradebook.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlsd.grading._common import (
    KERNEL_NAME,
    KERNELSPEC,
    describe_cell,
    grade_id,
    is_grade,
    is_locked,
    is_solution,
    is_task,
    nbgrader_meta,
)

if TYPE_CHECKING:
    import nbformat

CONFLICT_MARKERS = ("<<<<<<<", ">>>>>>>")
MAX_NOTEBOOK_BYTES = 20_000_000


@dataclass
class Submission:
    """A submitted file after reading: either a notebook or the reason it is not one."""

    notebook: nbformat.NotebookNode | None
    problem: str | None = None  # why the file is invalid, with the next step


@dataclass
class Repair:
    """The repaired notebook and what was restored."""

    notebook: nbformat.NotebookNode
    flags: list[str] = field(default_factory=list)
    kernel_changed: bool = False


def read_submission(data: bytes, name: str = "the notebook") -> Submission:
    """Parse submitted bytes as a Jupyter notebook, or explain why they are not one.

    Parameters
    ----------
    data : bytes
        The file's content.
    name : str
        The file name, for messages.
    """
    if len(data) > MAX_NOTEBOOK_BYTES:
        return Submission(
            None,
            f"{name} is {len(data) / 1e6:.0f} MB, more than the {MAX_NOTEBOOK_BYTES // 10**6} MB a submission "
            "may have: clear the outputs (VS Code: Clear All Outputs), save and push again.",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return Submission(
            None,
            f"{name} is not a text file (byte {err.start} is not UTF-8): it is not a Jupyter notebook. "
            "Submit the .ipynb file that Jupyter or VS Code saves.",
        )
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(CONFLICT_MARKERS):
            return Submission(
                None,
                f"{name} contains git merge-conflict markers ({line[:7]} at line {number}), so it is not "
                "valid JSON and cannot be opened. Resolve the conflict: take one side "
                "(`git checkout --ours` or `--theirs` on the notebook), open it in Jupyter or VS Code to "
                "check that it loads, then commit and push again.",
            )
    if not text.strip():
        return Submission(None, f"{name} is empty: commit the notebook with your answers and push again.")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        return Submission(
            None,
            f"{name} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}), so Jupyter "
            "cannot open it; it was probably edited as text or cut short. Restore the last version that "
            "opens (`git log -- <notebook>`, then `git checkout <commit> -- <notebook>`), redo the "
            "change in Jupyter or VS Code, and push again.",
        )
    except (RecursionError, MemoryError):
        return Submission(
            None,
            f"{name} is nested too deeply to be a notebook that Jupyter saved: submit the .ipynb file that "
            "Jupyter or VS Code saves.",
        )
    if isinstance(raw, dict) and raw.get("nbformat") == 3 and "worksheets" in raw:
        pass  # an old notebook format: nbformat converts it below
    elif not isinstance(raw, dict) or "cells" not in raw or "nbformat" not in raw:
        return Submission(
            None,
            f"{name} holds JSON but not a Jupyter notebook (no 'cells' or 'nbformat'): submit the .ipynb "
            "file that Jupyter or VS Code saves.",
        )
    elif raw.get("nbformat") not in (4,):
        return Submission(
            None,
            f"{name} is in notebook format {str(raw.get('nbformat'))[:10]}, which this grader does not read "
            "(old notebook format or a newer one): open it in Jupyter or VS Code, save it again, and push.",
        )
    import nbformat

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # missing or duplicate cell ids: repaired below
            nb = nbformat.reads(text, as_version=4, capture_validation_error={})
            _normalise_structure(nb)
            nbformat.validate(nb)
    except (RecursionError, MemoryError):
        return Submission(None, f"{name} is nested too deeply to be a notebook that Jupyter saved.")
    except Exception as err:  # nbformat raises several types for malformed notebooks
        detail = " ".join(str(err).split())[:200]
        return Submission(
            None,
            f"{name} is not a valid Jupyter notebook ({type(err).__name__}: {detail}). Open it in Jupyter "
            "or VS Code, save it again, and push.",
        )
    return Submission(nb)


def _normalise_structure(nb) -> None:
    """Drop outputs and give every cell a unique id, so small editor quirks never make a notebook invalid."""
    nb.nbformat, nb.nbformat_minor = 4, max(int(nb.get("nbformat_minor", 5)), 5)
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        cell.setdefault("metadata", {})
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
        cid = cell.get("id")
        if not isinstance(cid, str) or not cid or cid in seen or len(cid) > 64:
            cid = f"cell-{index}"
            while cid in seen:
                cid += "x"
            cell["id"] = cid
        seen.add(cid)


def _same_content(a, b) -> bool:
    return a.cell_type == b.cell_type and a.source.rstrip() == b.source.rstrip()


def _answered(cell, release_cell) -> bool:
    return cell.source.strip() != release_cell.source.strip()


@dataclass(frozen=True)
class RepairContext:
    """What a repair step compares the submission with (trusted notebooks, never the learner's).

    Attributes
    ----------
    release : NotebookNode
        The learner copy made by ``nbgrader generate_assignment``.
    reference : dict
        Grade id -> the learner copy's cell.
    instructors : dict
        Grade id -> the instructors' cell (hidden tests included); empty without a source.
    """

    release: nbformat.NotebookNode
    reference: dict[str, nbformat.NotebookNode]
    instructors: dict[str, nbformat.NotebookNode]

    @classmethod
    def of(cls, release: nbformat.NotebookNode, source: nbformat.NotebookNode | None = None) -> RepairContext:
        """The context for a learner copy and, optionally, the instructors' notebook."""
        return cls(
            release,
            {grade_id(c): c for c in release.cells if grade_id(c)},
            {grade_id(c): c for c in (source.cells if source is not None else []) if grade_id(c)},
        )


def _changed_kernel(nb) -> str | None:
    """The kernel the notebook names when it is not the course's (``None`` when it is, or names none)."""
    spec = nb.metadata.get("kernelspec") or {}
    name = spec.get("name") if isinstance(spec, dict) else None
    return name if name and name != KERNEL_NAME else None


def restore_kernel(nb, context: RepairContext) -> list[str]:
    """Step 1: the kernel is always the course's; ``language_info`` goes (the kernel rewrites it)."""
    changed = _changed_kernel(nb)
    nb.metadata["kernelspec"] = dict(context.release.metadata.get("kernelspec") or KERNELSPEC)
    nb.metadata.pop("language_info", None)
    return [f"kernel changed from {changed!r} to {KERNEL_NAME!r}: restored"] if changed else []


def drop_unknown_grade_ids(nb, context: RepairContext) -> list[str]:
    """Step 2: cells whose nbgrader metadata names no cell of the learner copy lose that metadata."""
    flags = []
    for index, cell in enumerate(nb.cells):
        if "nbgrader" not in cell.metadata:
            continue
        cid = grade_id(cell)
        if cid is None or cid not in context.reference:
            if is_grade(cell) or is_task(cell):
                flags.append(f"graded cell with unknown id {cid!r} (cell {index + 1}): not graded")
            del cell.metadata["nbgrader"]
    return flags


def resolve_duplicates(nb, context: RepairContext) -> list[str]:
    """Step 3: one cell per grade id. Extra copies of an instructors' cell go (the unchanged copy
    stays); of an answer cell, the answered copy is graded and the others become plain cells."""
    occurrences: dict[str, list[int]] = {}
    for index, cell in enumerate(nb.cells):
        cid = grade_id(cell)
        if cid in context.reference:
            occurrences.setdefault(cid, []).append(index)
    flags, drop = [], set()
    for cid, indices in occurrences.items():
        if len(indices) == 1:
            continue
        original = context.reference[cid]
        kind = describe_cell(original)
        if is_locked(original) or not is_solution(original):
            keep = next((i for i in indices if _same_content(nb.cells[i], original)), indices[0])
            drop |= {i for i in indices if i != keep}
            flags.append(f"{kind} {cid} was duplicated ({len(indices)} copies): extra copies removed")
        else:
            keep = next((i for i in indices if _answered(nb.cells[i], original)), indices[0])
            for i in indices:
                if i != keep:
                    del nb.cells[i].metadata["nbgrader"]
            flags.append(
                f"{kind} {cid} was duplicated ({len(indices)} copies): the copy in cell {keep + 1} is graded"
            )
    if drop:
        nb.cells = [c for i, c in enumerate(nb.cells) if i not in drop]
    return flags


def restore_kept_cells(nb, context: RepairContext) -> list[str]:
    """Step 4: each graded or read-only cell gets its type, nbgrader metadata and editable/deletable
    flags back from the learner copy, and a locked cell its source."""
    flags = []
    for cell in nb.cells:
        cid = grade_id(cell)
        original = context.reference.get(cid) if cid else None
        if original is None:
            continue
        kind = describe_cell(original)
        if cell.cell_type != original.cell_type:
            flags.append(f"{kind} {cid} was changed from {original.cell_type} to {cell.cell_type}: restored")
            cell.cell_type = original.cell_type
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
            else:
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
        theirs, ours = nbgrader_meta(cell), nbgrader_meta(original)
        changed = sorted(
            k for k in ("grade", "solution", "locked", "points", "task") if theirs.get(k) != ours.get(k)
        )
        if changed:
            flags.append(f"{kind} {cid} had its nbgrader settings changed ({', '.join(changed)}): restored")
        cell.metadata["nbgrader"] = copy.deepcopy(ours)
        for key in ("editable", "deletable"):
            if key in original.metadata:
                cell.metadata[key] = original.metadata[key]
            else:
                cell.metadata.pop(key, None)
        if is_locked(original) and cell.source.rstrip() != original.source.rstrip():
            instructors = context.instructors.get(cid)
            if instructors is None or cell.source.rstrip() != instructors.source.rstrip():
                flags.append(f"{kind} {cid} was edited: restored")
            cell.source = original.source
    return flags


def restore_missing_cells(nb, context: RepairContext) -> list[str]:
    """Step 5: deleted test, read-only and graded answer cells come back where they were: after the
    nearest cell above them in the learner copy that is still there (by grade id, else cell id).
    A deleted ungraded answer cell is only reported: the learner's code may live in other cells."""
    flags = []
    present = {grade_id(c): c for c in nb.cells if grade_id(c)}
    release = context.release
    for position, original in enumerate(release.cells):
        cid = grade_id(original)
        if cid is None or cid in present:
            continue
        kind = describe_cell(original)
        if is_solution(original) and not is_grade(original) and not is_task(original):
            flags.append(f"{kind} {cid} was deleted: not restored (code in other cells still runs)")
            continue
        restored = copy.deepcopy(original)
        restored["id"] = _unique_id(nb, f"{cid}-restored")
        where = 0
        for above in reversed(release.cells[:position]):
            anchor = present.get(grade_id(above)) if grade_id(above) else _same_id(nb, above)
            if anchor is not None:
                where = next(i for i, c in enumerate(nb.cells) if c is anchor) + 1
                break
        nb.cells.insert(where, restored)
        present[cid] = restored
        what = "restored empty" if is_solution(original) else "restored"
        flags.append(f"{kind} {cid} was deleted: {what}")
    return flags


REPAIR_STEPS: tuple[Callable[[nbformat.NotebookNode, RepairContext], list[str]], ...] = (
    restore_kernel,
    drop_unknown_grade_ids,
    resolve_duplicates,
    restore_kept_cells,
    restore_missing_cells,
)
"""The steps of :func:`repair`, in order; each mends the notebook in place and returns its flags."""


def repair(
    submitted: nbformat.NotebookNode,
    release: nbformat.NotebookNode,
    source: nbformat.NotebookNode | None = None,
) -> Repair:
    """Restore the instructors' cells of ``submitted`` from the learner copy ``release``.

    Runs :data:`REPAIR_STEPS` on a copy of the submission.

    Parameters
    ----------
    submitted : NotebookNode
        The learner's notebook, as read by :func:`read_submission`.
    release : NotebookNode
        The learner copy made by ``nbgrader generate_assignment`` (trusted).
    source : NotebookNode, optional
        The instructors' notebook: a locked cell equal to its source version (hidden tests
        included, as in the reference solution) is not reported as edited.

    Returns
    -------
    Repair
        The repaired notebook (a copy), one flag per restoration, and whether the kernel changed.
    """
    nb = copy.deepcopy(submitted)
    context = RepairContext.of(release, source)
    kernel_changed = _changed_kernel(nb) is not None
    flags = [flag for step in REPAIR_STEPS for flag in step(nb, context)]
    return Repair(nb, flags, kernel_changed)


def _same_id(nb, original):
    """The submitted cell with the same cell id and type as ``original`` (a cell without nbgrader metadata)."""
    return next(
        (
            c
            for c in nb.cells
            if c.get("id") == original.get("id") and c.cell_type == original.cell_type and not grade_id(c)
        ),
        None,
    )


def _unique_id(nb, wanted: str) -> str:
    ids = {c.get("id") for c in nb.cells}
    candidate = wanted[:64]
    n = 1
    while candidate in ids:
        n += 1
        candidate = f"{wanted[:58]}-{n}"
    return candidate
