"""Reading the CSV files people make: whatever a spreadsheet or an LMS saved.

Excel, Numbers, LibreOffice and Canvas save CSV in several ways: UTF-8 with or without a byte-order
mark, UTF-16 (Excel's "Unicode text"), Windows-1252/Latin-1, CRLF line ends, and a semicolon as the
separator where the decimal mark is a comma. :func:`read_csv_text` finds which, and whatever it
cannot read becomes one :class:`~mlsd.errors.MLSDError` line that says what to do, never a
traceback.

Examples
--------
>>> decode_csv_bytes("learner;quiz_1\\r\\nzoë;80\\r\\n".encode("cp1252"))[1]
';'
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from mlsd.errors import MLSDError

__all__ = ["CsvError", "decode_csv_bytes", "read_csv_rows", "read_csv_text"]

_SAVE_AS = 'save it again as "CSV UTF-8 (comma delimited)" (Excel) or "Text CSV" with UTF-8 (LibreOffice)'


class CsvError(MLSDError):
    """A CSV file that cannot be read: the message names the file and what to do."""


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data[:200].count(b"\x00") > 20:  # UTF-16 without a byte-order mark
        return data.decode("utf-16-le" if data[1:2] == b"\x00" else "utf-16-be")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # every byte is a character: the last resort never fails


def decode_csv_bytes(data: bytes) -> tuple[str, str]:
    """The text of a CSV file and its separator (``,``, ``;`` or a tab)."""
    text = _decode(data).replace("\r\n", "\n").replace("\r", "\n")
    header = text.split("\n", 1)[0]
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    separator = max(counts, key=lambda sep: counts[sep]) if any(counts.values()) else ","
    return text, separator


def read_csv_text(path: str | os.PathLike) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the rows ``(line number, values)`` of a CSV file; blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise CsvError(f"{path} does not exist.")
    try:
        text, separator = decode_csv_bytes(path.read_bytes())
    except UnicodeDecodeError:
        raise CsvError(f"{path.name} is not a text file that can be read as CSV: {_SAVE_AS}.") from None
    reader = csv.reader(io.StringIO(text), delimiter=separator)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise CsvError(f"{path.name} is empty.") from None
    except csv.Error as err:
        raise CsvError(f"{path.name} is not valid CSV ({err}): {_SAVE_AS}.") from None
    rows = []
    try:
        for number, values in enumerate(reader, start=2):
            if any(v.strip() for v in values):
                rows.append((number, values))
    except csv.Error as err:
        raise CsvError(f"{path.name} line {reader.line_num}: not valid CSV ({err}): {_SAVE_AS}.") from None
    return header, rows


def read_csv_rows(
    path: str | os.PathLike, *, required: Sequence[str] = (), optional: Sequence[str] | None = None
) -> list[tuple[int, dict[str, str]]]:
    """Rows as ``(line number, {column: value})`` with the ``required`` columns checked.

    ``optional=None`` allows any other column; a sequence limits them to those.
    """
    path = Path(path)
    header, rows = read_csv_text(path)
    missing = [c for c in required if c not in header]
    if missing:
        raise CsvError(
            f"{path.name} has the columns {', '.join(header) or '(none)'}; it needs "
            f"{', '.join(required)} (missing: {', '.join(missing)})."
        )
    if len(header) != len(set(header)):
        raise CsvError(f"{path.name} names a column twice: {', '.join(header)}.")
    if optional is not None:
        extra = [c for c in header if c not in required and c not in optional]
        if extra:
            raise CsvError(
                f"{path.name} has the columns {', '.join(header)}; expected {', '.join([*required, *optional])}."
            )
    out = []
    for number, values in rows:
        if len(values) != len(header):
            raise CsvError(f"{path.name} line {number}: {len(values)} values for {len(header)} columns.")
        out.append((number, {h: v.strip() for h, v in zip(header, values, strict=True)}))
    return out
