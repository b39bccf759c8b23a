"""Numbers that the slides and texts quote from a notebook run, kept equal to that run.

A notebook cell shows a table or a value through :func:`mlsd.course.quotable`, which displays it
as usual and attaches its numbers, under a name, to the cell's output. A text that quotes one of
them puts a marker right after the number::

    p50 0.14 ms<!-- run: 01:latency/features of one application/p50_ms x3 -->

The marker names the session (``01``), the published name (``latency``) and, for a table, the row
and the column (a ``|`` in a name is written ``\\|``, as everywhere in a Markdown table); then,
optionally, a tolerance and ``any-scale``. The marker applies to the last
number before it on the same line. Tolerances:

- none: the quoted number equals the run's value at the quoted precision ("0.343" allows
  0.3425 to 0.3435; "9.4%" is compared with 0.094 and allows 0.0935 to 0.0945);
- ``x3``: a factor, for timings (the run's value divided or multiplied by 3 at most);
- ``±0.01`` (or ``+-0.01``): an absolute difference; ``±5%``: a relative one.

Values are measured at the ``small`` scale (``mlsd course run``); ``any-scale`` marks a number
that does not depend on the data's size (a constant, a threshold from costs), which the notebook
tests also check at the ``tiny`` scale. HTML comments do not show on GitHub or in Marp.

In a table row that quotes a run, every number standing alone in a cell carries a marker, or
``<!-- fixed -->`` when the course sets it (a threshold, a rule's points): :func:`unmarked_numbers`.

This module parses the markers (:func:`find_markers`, :func:`scan_texts`), reads the published
numbers from executed notebooks (:func:`published_numbers`) or from their sources
(:func:`published_names`), and compares the two (:func:`compare`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mlsd.config import repo_root

__all__ = [
    "METADATA_KEY",
    "NUMBERS_NAME",
    "Finding",
    "Marker",
    "compare",
    "find_markers",
    "flatten",
    "parse_number",
    "published_names",
    "published_numbers",
    "read_numbers",
    "scan_texts",
    "unmarked_numbers",
    "text_files",
    "write_numbers",
]

METADATA_KEY = "mlsd_quotable"  # in the output metadata of a cell: {"name": ..., "numbers": {...}}
NUMBERS_NAME = "numbers.json"  # next to summary.json in the folder of `mlsd course run`

MARKER = re.compile(r"<!--\s*run:\s*(?P<body>.*?)\s*-->")
# 1,185 / 0.343 / -3.26 / 9.4%; not the 50 of "p50", nor 2025-04 or a range such as 4-6.
NUMBER = re.compile(
    r"(?<![\w.\-])(?P<sign>[-−])?(?P<digits>\d{1,3}(?:,\d{3})+|\d+)(?P<decimals>\.\d+)?(?P<pct>%)?(?!\d|-\d)"
)
NAME = re.compile(r"^(?P<session>\d\d):(?P<name>[^/\s].*)$")
FACTOR = re.compile(r"^x(?P<factor>\d+(?:\.\d+)?)$")
ABSOLUTE = re.compile(r"^(?:±|\+-)(?P<tol>\d+(?:\.\d+)?)(?P<pct>%)?$")
PUBLISH_CALL = re.compile(r"quotable\(\s*(?P<quote>['\"])(?P<name>[^'\"]+)(?P=quote)")


@dataclass(frozen=True)
class Marker:
    """One quoted number with its marker."""

    path: Path
    line: int
    quoted: str  # the number as written, e.g. "9.4%"
    session: str  # "01"
    name: str  # "latency/features of one application/p50_ms"
    factor: float | None = None
    absolute: float | None = None
    relative: float | None = None
    any_scale: bool = False
    problem: str = ""  # a marker that cannot be read says why

    @property
    def value(self) -> float:
        return parse_number(self.quoted)

    @property
    def key(self) -> str:
        return f"{self.session}:{self.name}"

    def tolerance(self) -> str:
        if self.factor:
            return f"x{self.factor:g}"
        if self.absolute is not None:
            return f"±{self.absolute:g}"
        if self.relative is not None:
            return f"±{self.relative:g}%"
        return f"±{_precision(self.quoted):g}"

    def agrees(self, run_value: float) -> bool:
        """Whether the run's value is within this marker's tolerance of the quoted number."""
        quoted = self.value
        if self.factor:
            return run_value > 0 and quoted > 0 and max(quoted / run_value, run_value / quoted) <= self.factor
        if self.absolute is not None:
            allowed = self.absolute
        elif self.relative is not None:
            allowed = abs(run_value) * self.relative / 100
        else:
            allowed = _precision(self.quoted)
        return abs(quoted - run_value) <= allowed + 1e-9

    def where(self, root: Path | None = None) -> str:
        try:
            name = self.path.relative_to(root or repo_root())
        except ValueError:
            name = self.path
        return f"{name}:{self.line}"


@dataclass(frozen=True)
class Finding:
    """A marker that the run contradicts, or cannot confirm."""

    marker: Marker
    problem: str  # "stale", "unknown" (no such number in the run), "not run", "bad marker"
    run_value: object = None


def parse_number(text: str) -> float:
    """The value of a number as written in prose: ``1,185`` is 1185, ``9.4%`` is 0.094.

    Examples
    --------
    >>> parse_number("1,185"), parse_number("9.4%"), parse_number("-3.26")
    (1185.0, 0.094, -3.26)
    """
    match = NUMBER.search(str(text).strip())
    if not match:
        raise ValueError(f"no number in {text!r}")
    value = float(match["digits"].replace(",", "") + (match["decimals"] or ""))
    value = -value if match["sign"] else value
    return round(value / 100, 12) if match["pct"] else value


def _precision(quoted: str) -> float:
    """Half a unit of the last digit written: 0.343 -> 0.0005, 9.4% -> 0.0005, 1,185 -> 0.5."""
    match = NUMBER.search(quoted)
    decimals = len(match["decimals"] or ".") - 1
    half = 0.5 * 10.0**-decimals
    return half / 100 if match["pct"] else half


def find_markers(text: str, path: Path | str = "<text>") -> list[Marker]:
    """Every marker in a text, with the number it follows."""
    markers = []
    for number, line in enumerate(text.splitlines(), start=1):
        start = 0
        for match in MARKER.finditer(line):
            before = MARKER.sub(" ", line[start : match.start()])
            start = match.end()
            numbers = list(NUMBER.finditer(before))
            markers.append(_marker(match["body"], numbers[-1][0] if numbers else "", Path(path), number))
    return markers


def _marker(body: str, quoted: str, path: Path, line: int) -> Marker:
    tokens = body.split()
    options: dict = {}
    while tokens:
        token = tokens[-1]
        if token == "any-scale":
            options["any_scale"] = True
        elif match := FACTOR.match(token):
            options["factor"] = float(match["factor"])
        elif match := ABSOLUTE.match(token):
            options["relative" if match["pct"] else "absolute"] = float(match["tol"])
        else:
            break
        tokens.pop()
    written = " ".join(tokens)
    name = NAME.match(written.replace("\\|", "|"))  # a Markdown table needs its pipes escaped, even here
    problem = ""
    if not quoted:
        problem = "no number before the marker on its line"
    elif re.search(r"(?<!\\)\|", written):
        problem = f"a bare | ends a Markdown table cell: write \\| in {body!r}"
    elif not name:
        problem = f"cannot read {body!r}: expected `NN:name[/row/column] [x3 | ±0.01 | ±5%] [any-scale]`"
    if options.get("factor") is not None and options["factor"] <= 1:
        problem = f"a factor must be above 1: {body!r}"
    session, key = (name["session"], name["name"].strip()) if name else ("", body)
    return Marker(path, line, quoted, session, key, problem=problem, **options)


def text_files(root: Path | None = None) -> list[Path]:
    """The texts that may quote a run: slides, the labs' README, the notebooks' Markdown cells,
    the answer keys and the playbook."""
    root = root or repo_root()
    files = [
        *sorted((root / "01_materials" / "slides").glob("*.md")),
        root / "01_materials" / "labs" / "README.md",
        *sorted((root / "01_materials" / "labs").glob("[0-9][0-9]_*.ipynb")),
        *sorted((root / "03_instructional_team" / "answer_keys").glob("*.md")),
        root / "03_instructional_team" / "README.md",
    ]
    return [p for p in files if p.is_file()]


def _markdown_of(path: Path) -> str:
    """A Markdown file's text; a notebook's Markdown cells, with blank lines for its other lines,
    so that line numbers count the cells' lines in order."""
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines = []
    for cell in cells:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        keep = cell["cell_type"] == "markdown"
        lines += [line if keep else "" for line in source.splitlines()]
    return "\n".join(lines)


FIXED = "<!-- fixed -->"  # a number the course sets (a parameter, an assumption), not one a run measures
BARE_NUMBER = re.compile(r"[*`\s]*[-+]?\d[\d,]*(?:\.\d+)?%?[*`\s]*")


def unmarked_numbers(text: str, path: Path | str = "<text>") -> list[tuple[Path, int, str]]:
    """Numbers standing alone in a table cell of a row that quotes a run, without a marker.

    A row with a marker quotes a run, so its other numbers most likely do too: each needs its own
    marker, or ``<!-- fixed -->`` when the course sets it (a threshold, a rule's points). The first
    cell is the row's label.
    """
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.lstrip().startswith("|") or not MARKER.search(line):
            continue
        cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
        found += [(Path(path), number, c.strip()) for c in cells[1:] if BARE_NUMBER.fullmatch(c)]
    return found


def scan_texts(files: Iterable[Path] | None = None) -> list[Marker]:
    """Every marker in the course texts (:func:`text_files` by default)."""
    return [
        m
        for path in (files if files is not None else text_files())
        for m in find_markers(_markdown_of(path), path)
    ]


def flatten(name: str, obj) -> dict[str, object]:
    """The numbers of a value, a Series or a DataFrame as ``{"name/row/column": value}``.

    Examples
    --------
    >>> import pandas as pd
    >>> flatten("latency", pd.DataFrame({"p50_ms": [0.2]}, index=["lookup"]))
    {'latency/lookup/p50_ms': 0.2}
    >>> flatten("break_even", 0.118)
    {'break_even': 0.118}
    """
    if hasattr(obj, "columns"):  # DataFrame
        return {
            f"{name}/{_label(row)}/{_label(column)}": _plain(value)
            for row, values in obj.iterrows()
            for column, value in values.items()
        }
    if hasattr(obj, "items") and hasattr(obj, "index"):  # Series
        return {f"{name}/{_label(index)}": _plain(value) for index, value in obj.items()}
    if isinstance(obj, Mapping):
        return {f"{name}/{_label(key)}": _plain(value) for key, value in obj.items()}
    return {name: _plain(obj)}


def _label(label) -> str:
    return "/".join(map(str, label)) if isinstance(label, tuple) else str(label)


def _plain(value):
    """A JSON value: numbers as float or int, missing or infinite as None, anything else as its text."""
    if isinstance(value, bool):
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None if value is None else str(value)
    if not math.isfinite(number):  # JSON has no NaN or infinity (a threshold that flags nothing is inf)
        return None
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def published_numbers(notebook) -> dict[str, object]:
    """The numbers an executed notebook published through :func:`mlsd.course.quotable`."""
    numbers: dict[str, object] = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            published = output.get("metadata", {}).get(METADATA_KEY)
            if published:
                # an empty table (no slice big enough at the tiny scale) still publishes its name
                numbers.update(published["numbers"] or {published["name"]: None})
    return numbers


def published_names(notebook_path: Path) -> set[str]:
    """The names a notebook's code publishes (``course.quotable("name", ...)``), read from its source."""
    cells = json.loads(Path(notebook_path).read_text(encoding="utf-8"))["cells"]
    code = "\n".join(
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in cells
        if c["cell_type"] == "code"
    )
    return {m["name"] for m in PUBLISH_CALL.finditer(code)}


def write_numbers(out: Path, scale: str, runs: Iterable) -> Path:
    """Add the numbers of executed notebooks (:class:`mlsd.notebooks.NotebookRun`) to ``out/numbers.json``.

    Sessions that did not run keep their numbers from an earlier run at the same scale.
    """
    path = Path(out) / NUMBERS_NAME
    known = read_numbers(path) if path.is_file() else {}
    sessions = known.get("sessions", {}) if known.get("scale") == scale else {}
    for run in runs:
        if run.notebook is not None and run.ok:
            sessions[run.path.name[:2]] = {
                "notebook": run.path.name,
                "numbers": published_numbers(run.notebook),
            }
    path.write_text(json.dumps({"scale": scale, "sessions": dict(sorted(sessions.items()))}, indent=1))
    return path


def read_numbers(path: Path) -> dict:
    """A ``numbers.json`` written by :func:`write_numbers`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def compare(
    markers: Iterable[Marker], sessions: Mapping[str, Mapping[str, object]], *, scale: str = "small"
) -> list[Finding]:
    """The markers that the run's numbers contradict or cannot confirm.

    ``sessions`` maps a session (``"01"``) to the numbers its notebook published. A marker of a
    session that did not run is reported as ``not run``. At a scale other than ``small`` only the
    markers flagged ``any-scale`` are compared by value, the others only by name, and only the
    published name must exist (a table of the top rows may hold other rows at another scale).
    """
    findings = []
    for marker in markers:
        if marker.problem:
            findings.append(Finding(marker, "bad marker", marker.problem))
            continue
        if marker.session not in sessions:
            findings.append(Finding(marker, "not run"))
            continue
        numbers = sessions[marker.session]
        if marker.name not in numbers:
            # At another scale a top-k table may hold other rows: the name itself must be published.
            published = marker.name.split("/")[0]
            if scale == "small" or not any(k == published or k.startswith(f"{published}/") for k in numbers):
                findings.append(Finding(marker, "unknown"))
            continue
        value = numbers[marker.name]
        if scale != "small" and not marker.any_scale:
            continue
        try:
            run_value = parse_number(value) if isinstance(value, str) else value
        except ValueError:
            run_value = None
        if run_value is None or not marker.agrees(float(run_value)):
            findings.append(Finding(marker, "stale", value))
    return findings
