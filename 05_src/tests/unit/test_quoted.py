"""Numbers quoted from a run: the marker parser, the comparison, and the markers of this repository."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mlsd import quoted
from mlsd.config import repo_root
from mlsd.course import lab_notebooks, quotable


def one(text: str) -> quoted.Marker:
    markers = quoted.find_markers(text, "slide.md")
    assert len(markers) == 1, markers
    return markers[0]


def check(text: str, numbers: dict, scale: str = "small") -> list[quoted.Finding]:
    return quoted.compare(quoted.find_markers(text, "slide.md"), {"01": numbers}, scale=scale)


# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "value"),
    [("1,185", 1185), ("0.343", 0.343), ("9.4%", 0.094), ("-3.26", -3.26), ("+25%", 0.25), ("**474**", 474)],
)
def test_a_number_reads_as_written(written, value):
    assert quoted.parse_number(written) == pytest.approx(value)


def test_the_marker_follows_the_last_number_before_it_and_names_row_and_column():
    marker = one("| p50 about 0.22 ms<!-- run: 01:latency/features of one application/p50_ms x3 --> | 200 |")
    assert (marker.quoted, marker.session, marker.name) == (
        "0.22",
        "01",
        "latency/features of one application/p50_ms",
    )
    assert (marker.factor, marker.line, marker.problem) == (3.0, 1, "")


def test_numbers_in_names_and_dates_are_not_quoted_numbers():
    marker = one("p50 in 2025-04<!-- run: 01:x -->")
    assert marker.problem == "no number before the marker on its line"


def test_two_markers_on_a_line_each_take_their_own_number():
    markers = quoted.find_markers("| 0.094<!-- run: 01:a --> | 1.01<!-- run: 01:b ±0.05 --> |")
    assert [(m.quoted, m.name, m.absolute) for m in markers] == [("0.094", "a", None), ("1.01", "b", 0.05)]


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        ("x2.5", "factor", 2.5),
        ("±0.01", "absolute", 0.01),
        ("+-0.01", "absolute", 0.01),
        ("±5%", "relative", 5.0),
    ],
)
def test_tolerances(body, field, value):
    assert getattr(one(f"0.5<!-- run: 01:t {body} -->"), field) == value


def test_a_marker_without_a_session_is_reported_not_skipped():
    (finding,) = check("0.5<!-- run: latency -->", {"latency": 0.5})
    assert finding.problem == "bad marker"


# -- comparing -------------------------------------------------------------------------------


def test_a_fresh_number_passes_and_a_stale_one_fails():
    assert check("lift 3.7<!-- run: 01:lift -->", {"lift": 3.66}) == []
    (finding,) = check("lift 3.7<!-- run: 01:lift -->", {"lift": 3.64})
    assert (finding.problem, finding.run_value) == ("stale", 3.64)


def test_the_default_tolerance_is_the_quoted_precision():
    assert check("9.4%<!-- run: 01:rate -->", {"rate": 0.0944}) == []
    assert check("9.4%<!-- run: 01:rate -->", {"rate": 0.0946})[0].problem == "stale"
    assert check("1,185<!-- run: 01:n -->", {"n": 1185}) == []
    assert check("1,185<!-- run: 01:n -->", {"n": 1186})[0].problem == "stale"


def test_a_timing_passes_within_its_factor_either_way():
    text = "0.05 ms<!-- run: 01:p50 x3 -->"
    assert check(text, {"p50": 0.14}) == []
    assert check(text, {"p50": 0.02}) == []
    assert check(text, {"p50": 0.22})[0].problem == "stale"  # the slide's old lookup time


def test_a_relative_tolerance_scales_with_the_value():
    assert check("200<!-- run: 01:v ±5% -->", {"v": 209}) == []
    assert check("200<!-- run: 01:v ±5% -->", {"v": 211})[0].problem == "stale"


def test_a_number_the_run_did_not_publish_fails():
    (finding,) = check(
        "0.343<!-- run: 01:baselines/rule scorecard/pr_auc -->", {"baselines/random/pr_auc": 0.1}
    )
    assert finding.problem == "unknown"


def test_a_session_that_did_not_run_is_reported():
    (finding,) = quoted.compare(quoted.find_markers("0.3<!-- run: 02:x -->"), {"01": {"x": 0.3}})
    assert finding.problem == "not run"


def test_a_published_text_compares_as_its_number():
    assert check("+25%<!-- run: 01:growth -->", {"growth": "25%"}) == []
    assert check("+25%<!-- run: 01:growth -->", {"growth": "31%"})[0].problem == "stale"


def test_at_another_scale_only_any_scale_numbers_compare_by_value():
    text = "0.343<!-- run: 01:pr_auc -->\n0.118<!-- run: 01:break_even any-scale -->"
    numbers = {"pr_auc": 0.2, "break_even": 0.2}
    assert [f.marker.name for f in check(text, numbers, scale="tiny")] == ["break_even"]
    assert [f.marker.name for f in check(text, numbers)] == ["pr_auc", "break_even"]
    assert [f.problem for f in check(text, {}, scale="tiny")] == ["unknown", "unknown"]


# -- publishing ------------------------------------------------------------------------------


def test_a_table_publishes_every_cell_under_row_and_column():
    table = pd.DataFrame({"p50_ms": [0.2, None], "n": [3, 4]}, index=["lookup", "month"])
    assert quoted.flatten("latency", table) == {
        "latency/lookup/p50_ms": 0.2,
        "latency/lookup/n": 3,
        "latency/month/p50_ms": None,
        "latency/month/n": 4,
    }
    assert quoted.flatten("growth", pd.Series({"growth": "25%"})) == {"growth/growth": "25%"}
    assert quoted.flatten("costs", pd.Series({"approve everyone": float("inf")})) == {
        "costs/approve everyone": None
    }


def test_quotable_shows_the_object_and_attaches_its_numbers():
    bundle, metadata = quotable(
        "latency", pd.DataFrame({"p50_ms": [0.2]}, index=["lookup"])
    )._repr_mimebundle_()
    assert "p50_ms" in bundle["text/plain"] and "<table" in bundle["text/html"]
    assert metadata[quoted.METADATA_KEY]["numbers"] == {"latency/lookup/p50_ms": 0.2}


def test_published_numbers_are_read_from_executed_outputs(tmp_path):
    published = {"name": "x", "numbers": {"x": 0.118}}
    cells = [
        {
            "cell_type": "code",
            "outputs": [{"output_type": "execute_result", "metadata": {"mlsd_quotable": published}}],
        }
    ]
    assert quoted.published_numbers({"cells": cells}) == {"x": 0.118}


# -- the repository's markers ----------------------------------------------------------------

MARKERS = quoted.scan_texts()
SESSIONS = {p.name[:2]: p for p in lab_notebooks()}


def test_the_course_texts_carry_markers():
    assert len(MARKERS) >= 20, "the slides quote numbers from the runs: mark them (see mlsd.quoted)"


@pytest.mark.parametrize("marker", MARKERS, ids=lambda m: f"{m.where()}:{m.key}")
def test_every_marker_names_a_number_its_notebook_publishes(marker):
    assert not marker.problem, f"{marker.where()}: {marker.problem}"
    assert marker.session in SESSIONS, f"{marker.where()}: no session notebook {marker.session}"
    names = quoted.published_names(SESSIONS[marker.session])
    published = marker.name.split("/")[0]
    assert published in names, (
        f"{marker.where()}: {SESSIONS[marker.session].name} publishes {sorted(names)}, not {published!r}"
    )


def test_notebook_markdown_keeps_its_line_numbers(tmp_path):
    nb = {
        "cells": [
            {"cell_type": "code", "source": ["x = 1\n", "y = 2"]},
            {"cell_type": "markdown", "source": "rate 9.4%<!-- run: 01:rate -->"},
        ]
    }
    path = tmp_path / "01_x.ipynb"
    path.write_text(json.dumps(nb))
    (marker,) = quoted.scan_texts([path])
    assert (marker.line, marker.quoted) == (3, "9.4%")


def test_the_texts_scanned_include_slides_notebooks_and_answer_keys():
    names = {str(p.relative_to(repo_root())) for p in quoted.text_files()}
    assert "01_materials/slides/session_01.md" in names
    assert "01_materials/labs/01_ml_system_design.ipynb" in names
    assert any(n.startswith("03_instructional_team/answer_keys/") for n in names)
    assert all(Path(repo_root(), n).is_file() for n in names)


def test_a_pipe_in_a_name_is_escaped_so_that_the_table_survives():
    marker = one("| 0.574<!-- run: 01:truth/age/mean \\|contribution\\| --> |")
    assert (marker.name, marker.problem) == ("truth/age/mean |contribution|", "")
    assert "bare |" in one("| 0.574<!-- run: 01:truth/age/mean |contribution| --> |").problem


def test_at_another_scale_a_row_of_a_published_table_may_be_missing():
    text = "0.002<!-- run: 01:importance/age/mean -->"
    assert check(text, {"importance/late_90/mean": 0.1}, scale="tiny") == []
    assert check(text, {"importance/late_90/mean": 0.1})[0].problem == "unknown"
    assert check(text, {"shap/age/mean": 0.1}, scale="tiny")[0].problem == "unknown"


def test_a_bare_number_in_a_row_that_quotes_a_run_needs_a_marker():
    row = "| rule | 0.5<!-- fixed --> | 1.2<!-- run: 01:x --> | **3** | 2025-04 |"
    assert [cell for _, _, cell in quoted.unmarked_numbers(row)] == ["**3**"]
    assert quoted.unmarked_numbers("| rule | 0.5 | 3 |") == []  # a row that quotes no run


@pytest.mark.parametrize("path", quoted.text_files(), ids=lambda p: str(p.relative_to(repo_root())))
def test_rows_that_quote_a_run_mark_every_number(path):
    unmarked = quoted.unmarked_numbers(quoted._markdown_of(path), path)
    assert not unmarked, "mark these numbers with <!-- run: ... --> or <!-- fixed -->: " + ", ".join(
        f"line {line}: {cell}" for _, line, cell in unmarked
    )


def run_agreeing_with_the_texts() -> dict:
    """A numbers.json whose values are the quoted ones: what a run that agrees with every marker writes."""
    sessions: dict = {}
    for marker in sorted(MARKERS, key=lambda m: len(m.quoted)):  # the most precise quote of a value last
        numbers = sessions.setdefault(marker.session, {"notebook": f"{marker.session}.ipynb", "numbers": {}})
        numbers["numbers"][marker.name] = marker.value
    return {"scale": "small", "sessions": sessions}


def test_mlsd_course_numbers_lists_a_stale_number_with_its_file_and_line(tmp_path, capsys):
    from mlsd import cli

    run = run_agreeing_with_the_texts()
    (tmp_path / "numbers.json").write_text(json.dumps(run))
    assert cli.main(["course", "numbers", "--out", str(tmp_path)]) == 0
    assert "0 to fix" in capsys.readouterr().out

    stale = next(m for m in MARKERS if not m.factor)
    run["sessions"][stale.session]["numbers"][stale.name] = stale.value + 1
    (tmp_path / "numbers.json").write_text(json.dumps(run))
    assert cli.main(["course", "numbers", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "1 to fix" in out and stale.where() in out and stale.key in out


def test_a_course_run_shows_a_machine_s_timings_but_fails_only_on_the_data_s_numbers(tmp_path, capsys):
    from mlsd.cli.course import _check_numbers

    run = run_agreeing_with_the_texts()
    timing = next(m for m in MARKERS if m.factor)
    run["sessions"][timing.session]["numbers"][timing.name] = timing.value * timing.factor * 2
    numbers = tmp_path / "numbers.json"
    numbers.write_text(json.dumps(run))
    assert _check_numbers(numbers, timings_fail=False) == 0  # a slow laptop: shown, not a failure
    assert timing.where() in capsys.readouterr().out
    quotes = sum(m.key == timing.key for m in MARKERS)  # the same value may be quoted in several texts
    assert _check_numbers(numbers) == quotes  # `mlsd course numbers` counts them

    data = next(m for m in MARKERS if not m.factor)
    run["sessions"][data.session]["numbers"][data.name] = data.value + 1
    numbers.write_text(json.dumps(run))
    assert _check_numbers(numbers, timings_fail=False) == sum(m.key == data.key for m in MARKERS)


def test_mlsd_course_numbers_without_a_run_says_what_to_do(tmp_path, capsys):
    from mlsd import cli

    assert cli.main(["course", "numbers", "--out", str(tmp_path)]) == 1
    assert "uv run mlsd course run" in capsys.readouterr().out


def test_an_empty_table_still_publishes_its_name():
    empty = {"name": "worst", "numbers": quoted.flatten("worst", pd.DataFrame({"n": []}))}
    cells = [
        {
            "cell_type": "code",
            "outputs": [{"output_type": "execute_result", "metadata": {"mlsd_quotable": empty}}],
        }
    ]
    numbers = quoted.published_numbers({"cells": cells})
    assert check("563<!-- run: 01:worst/age band/n -->", numbers, scale="tiny") == []
    assert check("563<!-- run: 01:worst/age band/n -->", numbers)[0].problem == "unknown"
