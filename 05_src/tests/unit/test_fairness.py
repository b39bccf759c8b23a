"""Fairness rates by group, on a frame built by hand so each rate can be counted."""

from __future__ import annotations

import pandas as pd
import pytest

from mlsd import fairness


@pytest.fixture
def frame():
    # group a: 2 defaulters (scores 0.9, 0.4), 3 repayers (0.6, 0.2, 0.1)
    # group b: 1 defaulter (0.7), 3 repayers (0.3, 0.2, 0.05); one row with no group
    return pd.DataFrame({
        "region": ["a"] * 5 + ["b"] * 4 + [None],
        "serious_dlq": [1, 1, 0, 0, 0, 1, 0, 0, 0, 0],
        "score": [0.9, 0.4, 0.6, 0.2, 0.1, 0.7, 0.3, 0.2, 0.05, 0.8],
    })  # fmt: skip


def test_group_rates_count_approvals_tpr_and_fpr(frame):
    rates = fairness.group_rates(frame, "region", threshold=0.5, min_size=3)
    a, b = rates.loc["a"], rates.loc["b"]
    assert (a["n"], a["defaults"]) == (5, 2)
    assert a["approval_rate"] == pytest.approx(3 / 5)  # 0.4, 0.2, 0.1 approved
    assert a["tpr"] == pytest.approx(1 / 2)  # 0.9 declined, 0.4 approved
    assert a["fpr"] == pytest.approx(1 / 3)  # 0.6 declined
    assert b["approval_rate"] == pytest.approx(3 / 4)
    assert b["tpr"] == pytest.approx(1.0)
    assert b["fpr"] == pytest.approx(0.0)
    assert rates.loc["<missing>", "small"] and not rates.loc["a", "small"]
    assert rates.loc["all", "n"] == 10
    assert rates.loc["all", "approval_rate"] == pytest.approx(6 / 10)
    assert a["approval_ratio"] == pytest.approx((3 / 5) / (3 / 4))  # b has the highest rate of the groups


def test_a_small_group_sets_no_bar_for_the_approval_ratio(frame):
    approved_stranger = frame.assign(score=frame["score"].where(frame["region"].notna(), 0.0))
    rates = fairness.group_rates(approved_stranger, "region", threshold=0.5, min_size=3)
    assert rates.loc["<missing>", "approval_rate"] == 1.0  # one row, approved: the highest rate
    assert rates.loc["b", "approval_ratio"] == pytest.approx(1.0)  # b, the best large group, is the bar


def test_a_lower_threshold_declines_more_in_every_group(frame):
    rates = fairness.rates_by_threshold(frame, "region", [0.25, 0.5], min_size=3)
    strict = rates[rates["threshold"] == 0.25].set_index("group")
    lenient = rates[rates["threshold"] == 0.5].set_index("group")
    assert (strict.loc[["a", "b"], "approval_rate"] <= lenient.loc[["a", "b"], "approval_rate"]).all()
    assert strict.loc["a", "fpr"] == pytest.approx(1 / 3) and strict.loc["b", "fpr"] == pytest.approx(1 / 3)


def test_gaps_compare_only_groups_large_enough(frame):
    gaps = fairness.fairness_gaps(fairness.rates_by_threshold(frame, "region", [0.25, 0.5], min_size=3))
    assert gaps.loc[0.5, "groups"] == 2  # a and b; the missing group is small
    assert gaps.loc[0.5, "fpr_gap"] == pytest.approx(1 / 3)
    assert gaps.loc[0.25, "fpr_gap"] == pytest.approx(0.0)  # this threshold equalises FPR
    assert gaps.loc[0.5, "approval_rate_gap"] == pytest.approx(3 / 4 - 3 / 5)


def test_group_rates_name_missing_columns(frame):
    with pytest.raises(ValueError, match="age_band"):
        fairness.group_rates(frame, "age_band")
