"""mlsd.labeling: vote matrices, LF statistics and majority votes, checked against hand counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlsd.labeling import (
    ABSTAIN,
    NEGATIVE,
    POSITIVE,
    LabelingFunction,
    apply_lfs,
    label_coverage,
    labeling_function,
    lf_summary,
    majority_vote,
)


@pytest.fixture
def applicants() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "late_90": [3, 0, 2, 0, 0, 1],
            "revolving_utilization": [1.2, 0.1, 0.95, 0.2, 0.5, 0.3],
            "monthly_income": [1000.0, 8000.0, None, 500.0, 4000.0, 9000.0],
        },
        index=[10, 11, 12, 13, 14, 15],
    )


@labeling_function()
def late_90(row):
    return POSITIVE if row["late_90"] >= 2 else ABSTAIN


@labeling_function(vectorized=True)
def maxed_out(df):
    return np.where(df["revolving_utilization"] > 0.9, POSITIVE, ABSTAIN)


@labeling_function(name="high_income", vectorized=True)
def _high_income(df):
    return pd.Series(np.where(df["monthly_income"] >= 5000, NEGATIVE, ABSTAIN), index=df.index)


@labeling_function()
def low_income(row):
    income = row["monthly_income"]
    return POSITIVE if income == income and income < 2000 else ABSTAIN  # income == income: not NaN


LFS = [late_90, maxed_out, _high_income, low_income]

# The vote matrix, by hand (rows 10..15):
#           late_90  maxed_out  high_income  low_income
#   10         1         1          -1           1
#   11        -1        -1           0          -1
#   12         1         1          -1          -1      (income missing)
#   13        -1        -1          -1           1
#   14        -1        -1          -1          -1
#   15        -1        -1           0          -1
EXPECTED_VOTES = {
    "late_90": [1, -1, 1, -1, -1, -1],
    "maxed_out": [1, -1, 1, -1, -1, -1],
    "high_income": [-1, 0, -1, -1, -1, 0],
    "low_income": [1, -1, -1, 1, -1, -1],
}


def test_apply_lfs_builds_the_vote_matrix(applicants):
    votes = apply_lfs(applicants, LFS)
    assert list(votes.columns) == ["late_90", "maxed_out", "high_income", "low_income"]
    assert votes.index.equals(applicants.index)
    assert votes.to_dict("list") == EXPECTED_VOTES
    assert (votes.dtypes == "int64").all()


def test_row_wise_and_vectorized_lfs_agree(applicants):
    row_wise = LabelingFunction(
        "util", lambda row: POSITIVE if row["revolving_utilization"] > 0.9 else ABSTAIN
    )
    vectorized = LabelingFunction("util", maxed_out.func, vectorized=True)
    pd.testing.assert_series_equal(row_wise(applicants), vectorized(applicants))


def test_summary_by_hand(applicants):
    votes = apply_lfs(applicants, LFS)
    y = pd.Series([1, 0, 1, 0, 0, None])  # the last label is not observed yet
    summary = lf_summary(votes, y)
    # coverage: late_90 rows 10,12; maxed_out 10,12; high_income 11,15; low_income 10,13
    assert summary["coverage"].tolist() == pytest.approx([2 / 6, 2 / 6, 2 / 6, 2 / 6])
    # overlaps: rows with 2+ votes are 10 (three LFs) and 12 (two LFs)
    assert summary["overlaps"].tolist() == pytest.approx([2 / 6, 2 / 6, 0, 1 / 6])
    # no row has both a 0 and a 1 vote
    assert summary["conflicts"].tolist() == [0, 0, 0, 0]
    # accuracy on covered rows with a known label:
    # late_90 10 (y=1), 12 (y=1): 2/2; high_income 11 (y=0) right, 15 unknown: 1/1;
    # low_income 10 (y=1) right, 13 (y=0) wrong: 1/2
    assert summary["correct"].tolist() == [2, 2, 1, 1]
    assert summary["incorrect"].tolist() == [0, 0, 0, 1]
    assert summary["emp_accuracy"].tolist() == pytest.approx([1.0, 1.0, 1.0, 0.5])
    assert summary["polarity"].tolist() == [[1], [1], [0], [1]]


def test_conflicts_by_hand():
    votes = pd.DataFrame(
        {
            "a": [1, 1, 0, -1, 1],
            "b": [0, 1, -1, 0, -1],
            "c": [-1, 0, 1, 0, -1],
        }
    )
    summary = lf_summary(votes)
    # a votes on rows 0,1,2,4; others vote on 0 (b), 1 (b, c), 2 (c): overlaps 3/5;
    # a disagrees in row 0 (b=0), row 1 (c=0), row 2 (c=1): conflicts 3/5.
    # b votes on 0,1,3: overlaps 0,1,3 (c=0 in row 3) = 3/5; conflicts 0 (a=1), 1 (c=0) = 2/5.
    # c votes on 1,2,3: overlaps 3/5; conflicts 1 (a=1, b=1), 2 (a=0) = 2/5; row 3 agrees with b.
    assert summary["coverage"].tolist() == pytest.approx([4 / 5, 3 / 5, 3 / 5])
    assert summary["overlaps"].tolist() == pytest.approx([3 / 5, 3 / 5, 3 / 5])
    assert summary["conflicts"].tolist() == pytest.approx([3 / 5, 2 / 5, 2 / 5])
    assert "emp_accuracy" not in summary
    assert summary["polarity"].tolist() == [[0, 1], [0, 1], [0, 1]]
    assert label_coverage(votes) == pytest.approx(1.0)
    assert label_coverage(votes.iloc[3:]) == pytest.approx(1.0)
    assert label_coverage(votes[["a"]]) == pytest.approx(4 / 5)


def test_majority_vote_by_hand_with_each_tie_break():
    votes = pd.DataFrame(
        {
            "a": [1, 1, 0, -1, 1, -1],
            "b": [1, 0, 0, -1, 0, 1],
            "c": [0, -1, -1, -1, -1, -1],
        },
        index=list("uvwxyz"),
    )
    # u: 1,1,0 -> 1; v: tie; w: 0; x: nobody; y: tie; z: 1
    assert majority_vote(votes).tolist() == [1, -1, 0, -1, -1, 1]
    assert majority_vote(votes, tie_break=NEGATIVE).tolist() == [1, 0, 0, -1, 0, 1]
    assert majority_vote(votes, tie_break=POSITIVE).tolist() == [1, 1, 0, -1, 1, 1]
    assert majority_vote(votes).index.equals(votes.index)


def test_random_tie_break_is_seeded_and_touches_only_ties():
    votes = pd.DataFrame({"a": [1, 0] * 200 + [1], "b": [0, 1] * 200 + [-1]})  # 400 ties, then one 1
    first = majority_vote(votes, tie_break="random", random_state=3)
    assert first.equals(majority_vote(votes, tie_break="random", random_state=3))
    assert not first.equals(majority_vote(votes, tie_break="random", random_state=4))
    assert first.iloc[-1] == POSITIVE
    assert set(first.iloc[:-1]) == {0, 1}
    assert 150 < first.iloc[:-1].sum() < 250  # about half the ties go each way


def test_bad_labels_and_names_are_explained(applicants):
    forgot_abstain = LabelingFunction("forgot", lambda row: POSITIVE if row["late_90"] > 0 else None)
    with pytest.raises(ValueError, match="'forgot' returned None"):
        apply_lfs(applicants, [forgot_abstain])
    with pytest.raises(ValueError, match="returned 2"):
        apply_lfs(applicants, [LabelingFunction("two", lambda row: 2)])
    with pytest.raises(ValueError, match="3 labels for 6 rows"):
        apply_lfs(applicants, [LabelingFunction("short", lambda df: [1, 1, 1], vectorized=True)])
    with pytest.raises(ValueError, match="unique"):
        apply_lfs(applicants, [late_90, late_90])
    with pytest.raises(ValueError, match="tie_break"):
        majority_vote(apply_lfs(applicants, LFS), tie_break="coin")
    with pytest.raises(ValueError, match="y has 2 labels"):
        lf_summary(apply_lfs(applicants, LFS), y=[0, 1])


def test_decorator_keeps_the_function_name():
    assert late_90.name == "late_90" and not late_90.vectorized
    assert _high_income.name == "high_income" and _high_income.vectorized
