"""Re-identification risk by quasi-identifiers, and keyed pseudonyms."""

from __future__ import annotations

import pandas as pd
import pytest

from mlsd import privacy


def test_risk_counts_rows_in_small_groups():
    people = pd.DataFrame({
        "age": [30, 30, 30, 30, 52, 52, 71],
        "region": ["n", "n", "n", "s", "n", "n", "s"],
    })  # fmt: skip
    risk = privacy.reidentification_risk(people, {"age": ["age"], "both": ["age", "region"]}, k=3)
    assert risk.loc["age", "unique"] == pytest.approx(1 / 7)  # only the 71-year-old
    assert risk.loc["age", "below_k"] == pytest.approx(3 / 7)  # the two 52s and the 71
    assert risk.loc["both", "unique"] == pytest.approx(2 / 7)  # (30, s) and (71, s)
    assert risk.loc["both", "below_k"] == pytest.approx(4 / 7)
    assert risk.loc["both", "groups"] == 4 and risk.loc["both", "smallest_group"] == 1


def test_more_columns_never_lower_the_risk():
    people = pd.DataFrame({"a": [1, 1, 2, 2, 2], "b": ["x", "y", "x", "x", "y"]})
    risk = privacy.reidentification_risk(people, {"a": ["a"], "a, b": ["a", "b"]}, k=2)
    assert risk.loc["a, b", "below_k"] >= risk.loc["a", "below_k"]


def test_pseudonyms_are_stable_per_key_distinct_across_keys_and_keep_the_index():
    ids = pd.Series(["A1", "A2", "A1"], index=[10, 11, 12])
    one = privacy.pseudonymise(ids, key="secret")
    assert one.index.tolist() == [10, 11, 12]
    assert one[10] == one[12] and one[10] != one[11]
    assert (one != privacy.pseudonymise(ids, key="other")).all()
    assert "A1" not in one.tolist()


def test_pseudonymise_refuses_an_empty_key():
    with pytest.raises(ValueError, match="secret key"):
        privacy.pseudonymise(["A1"], key="")
