"""What spreadsheets save: every encoding and separator they use reads the same; the rest says what to do."""

from __future__ import annotations

import pytest

from mlsd._csv import CsvError, read_csv_rows, read_csv_text

TEXT = "learner;quiz_1\r\nZoë;80,5\r\nBjörn;90\r\n"


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("utf-8", TEXT),
        ("utf-8-sig", TEXT),
        ("utf-16", TEXT),
        ("utf-16-le", TEXT),
        ("cp1252", TEXT),
        ("latin-1", TEXT),
        ("utf-8", TEXT.replace(";", ",").replace("80,5", '"80,5"')),
        ("utf-8", TEXT.replace(";", "\t")),
    ],
    ids=["utf8", "utf8-bom", "utf16-bom", "utf16-no-bom", "cp1252", "latin1", "comma", "tab"],
)
def test_what_spreadsheets_save_reads_the_same(tmp_path, encoding, text):
    path = tmp_path / "scores.csv"
    path.write_bytes(text.encode(encoding))
    rows = read_csv_rows(path, required=("learner", "quiz_1"))
    assert [(line, row["learner"], row["quiz_1"]) for line, row in rows] == [
        (2, "Zoë", "80,5"),
        (3, "Björn", "90"),
    ]


def test_problems_name_the_file_and_what_to_do(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(CsvError, match="empty.csv is empty"):
        read_csv_text(empty)
    with pytest.raises(CsvError, match="does not exist"):
        read_csv_text(tmp_path / "nope.csv")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("name,score\nada,1\n")
    with pytest.raises(CsvError, match="needs learner, quiz_1 \\(missing: learner, quiz_1\\)"):
        read_csv_rows(wrong, required=("learner", "quiz_1"))
    short = tmp_path / "short.csv"
    short.write_text("learner,quiz_1\nada\n")
    with pytest.raises(CsvError, match="line 2: 1 values for 2 columns"):
        read_csv_rows(short, required=("learner",))
