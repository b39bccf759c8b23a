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

import codecs
import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from mlsd.errors import MLSDError

__all__ = ["CsvError", "decode_csv_bytes", "read_csv_rows", "read_csv_text", "sniff_csv_file", "unreadable"]

_SAVE_AS = 'save it again as "CSV UTF-8 (comma delimited)" (Excel) or "Text CSV" with UTF-8 (LibreOffice)'


class CsvError(MLSDError):
    """A CSV file that cannot be read: the message names the file and what to do."""


def _encoding(data: bytes, *, complete: bool = True) -> str:
    """The codec that reads ``data``; ``complete=False`` for the first bytes of a longer file."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if data[:200].count(b"\x00") > 20:  # UTF-16 without a byte-order mark
        return "utf-16-le" if data[1:2] == b"\x00" else "utf-16-be"
    for codec in ("utf-8-sig", "cp1252"):
        try:
            # A sample may end inside a character: the incremental decoder waits for the rest.
            codecs.getincrementaldecoder(codec)().decode(data, final=complete)
            return codec
        except UnicodeDecodeError:
            pass
    return "latin-1"  # every byte is a character: the last resort never fails


def _decode(data: bytes) -> str:
    return data.decode(_encoding(data))


def _separator(header: str) -> str:
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    return max(counts, key=lambda sep: counts[sep]) if any(counts.values()) else ","


def decode_csv_bytes(data: bytes) -> tuple[str, str]:
    """The text of a CSV file and its separator (``,``, ``;`` or a tab)."""
    text = _decode(data).replace("\r\n", "\n").replace("\r", "\n")
    return text, _separator(text.split("\n", 1)[0])


def sniff_csv_file(path: str | os.PathLike, sample: int = 2**16) -> tuple[str, str]:
    """The encoding and separator of a CSV file, from its first ``sample`` bytes.

    For readers that stream a file rather than hold it (PostgreSQL's ``COPY``): open it with
    this encoding and read it with this separator. A byte further on that the encoding cannot
    read raises ``UnicodeDecodeError`` there; :func:`unreadable` turns it into one line.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "scores.csv"
    ...     _ = path.write_bytes("learner;score\\r\\nzoë;80\\r\\n".encode("utf-16"))
    ...     sniff_csv_file(path)
    ('utf-16', ';')
    """
    with open(path, "rb") as handle:
        head = handle.read(sample)
    complete = len(head) < sample
    encoding = _encoding(head, complete=complete)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=complete)
    return encoding, _separator(text.lstrip("\ufeff").splitlines()[0] if text.strip() else "")


def unreadable(path: str | os.PathLike, encoding: str) -> CsvError:
    """The error for a file that turned out not to be ``encoding`` past its first bytes."""
    return CsvError(
        f"{Path(path).name} mixes character encodings (it starts as {encoding}, then has bytes that "
        f"are not): {_SAVE_AS}."
    )


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
