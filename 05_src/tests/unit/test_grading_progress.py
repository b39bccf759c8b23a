"""The grader's view of a running notebook: cells counted as the progress file grows, for display only."""

from __future__ import annotations

from mlsd.grading._workspace import _CellCounter


def test_cells_are_counted_from_what_was_appended(tmp_path):
    path = tmp_path / "progress.jsonl"
    heard: list[int] = []
    counter = _CellCounter(path, heard.append)
    counter.poll()  # no file yet: nothing to say
    path.write_text('{"index": 0}\n{"index": 1}\n')
    counter.poll()
    counter.poll()  # unchanged: said once
    with open(path, "a") as lines:
        lines.write('{"index": 2}\n{"index": 3, "cut by a ki')  # a line still being written
    counter.poll()
    assert heard == [2, 3]


def test_without_a_listener_nothing_is_read(tmp_path):
    path = tmp_path / "progress.jsonl"
    path.write_text("{}\n")
    counter = _CellCounter(path, None)
    counter.poll()
    assert counter.count == 0
