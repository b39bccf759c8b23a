"""Comparisons for the demo assignment (run by the grader, never in a learner's kernel)."""

from mlsd.grading.checks import CheckSet, close, expect, same

checks = CheckSet()


@checks.add("test_add_visible")
def add_visible(got, ref):
    expect(same(got["one_plus_two"], ref["one_plus_two"]), "add(1, 2) should be 3")


@checks.add("test_add_hidden")
def add_hidden(got, ref):
    expect(same(got["ten_plus_five"], ref["ten_plus_five"]), "add(10, 5) should be 15")
    expect(same(got["negatives"], ref["negatives"]), "add should work for negative numbers")
    expect(close(got["floats"], ref["floats"]), "add should work for floats")


@checks.add("test_count", tables=["public.demo_loans"])
def count(got, ref):
    expect(same(got["seven"], ref["seven"]), "count_rows should find the 7 rows of demo_loans")
    expect(same(got["ten"], ref["ten"]), "count_rows should count every row, duplicates and NULLs included")
    table = got.table("public.demo_loans")
    expect(table is not None and len(table) == got["ten"], "count_rows should count the rows of demo_loans")


@checks.add("test_rate")
def rate(got, ref):
    expect(close(got["visible"], ref["visible"]), "2 defaults among 8 known outcomes")
    expect(same(got["empty"], ref["empty"]), "no known outcome: the rate should be 0.0")
