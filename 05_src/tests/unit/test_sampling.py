"""mlsd.sampling: samples, splits and imbalance helpers do what they promise, for any seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chisquare
from sklearn.utils.class_weight import compute_class_weight

from mlsd import sampling
from mlsd.sampling import (
    class_balance,
    class_weights,
    group_split,
    imbalance_ratio,
    importance_weights,
    oversample,
    random_split,
    reservoir_sample,
    simple_random_sample,
    stratified_sample,
    stratified_split,
    time_split,
    undersample,
    weighted_sample,
)

SEED = 20240501


@pytest.fixture
def loans() -> pd.DataFrame:
    """3,000 applications over 12 months, ~6.7% positives, ~5 applications per customer."""
    rng = np.random.default_rng(SEED)
    n = 3000
    applied_at = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 365 * 24, n), unit="h"
    )
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:08d}" for i in rng.integers(0, 600, n)],
            "applied_at": applied_at,
            "month": applied_at.strftime("%Y-%m"),
            "channel": rng.choice(["web", "branch", "broker"], n, p=[0.6, 0.3, 0.1]),
            "amount": rng.lognormal(8, 1, n),
            "serious_dlq": (rng.random(n) < 0.067).astype(int),
        },
        index=pd.RangeIndex(1000, 1000 + n),
    )


# -- simple, stratified, weighted -----------------------------------------------------


def test_simple_random_sample_sizes_and_rows_come_from_the_input(loans):
    by_n = simple_random_sample(loans, 100, random_state=SEED)
    by_frac = simple_random_sample(loans, frac=0.1, random_state=SEED)
    assert len(by_n) == 100 and len(by_frac) == 300
    assert by_n.index.is_unique and by_n.index.isin(loans.index).all()
    pd.testing.assert_frame_equal(by_n, loans.loc[by_n.index])
    bootstrap = simple_random_sample(loans, frac=1.0, replace=True, random_state=SEED)
    assert len(bootstrap) == len(loans) and bootstrap.index.duplicated().any()


@pytest.mark.parametrize("frac", [0, -0.1, 1.5])
def test_fraction_outside_zero_one_is_refused(loans, frac):
    with pytest.raises(ValueError, match=r"frac must be in \(0, 1\]"):
        simple_random_sample(loans, frac=frac, random_state=SEED)


def test_sample_size_errors_say_what_to_do(loans):
    with pytest.raises(ValueError, match="exactly one of n"):
        simple_random_sample(loans, 10, frac=0.1)
    with pytest.raises(ValueError, match="replace=True"):
        simple_random_sample(loans, len(loans) + 1)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['nope'\]"):
        stratified_sample(loans, "nope", n=10)


def test_stratified_sample_keeps_class_proportions_within_one_point(loans):
    population = loans["serious_dlq"].mean()
    for seed in range(5):
        sample = stratified_sample(loans, "serious_dlq", n=500, random_state=seed)
        assert len(sample) == 500 and sample.index.is_unique
        assert abs(sample["serious_dlq"].mean() - population) < 0.01
        # the channel mix of a stratified-by-channel sample is exact up to rounding
        by_channel = stratified_sample(loans, "channel", frac=0.2, random_state=seed)
        shares = by_channel["channel"].value_counts(normalize=True)
        expected = loans["channel"].value_counts(normalize=True)
        assert (shares - expected).abs().max() < 0.01


def test_stratified_sample_beats_simple_sampling_on_a_rare_class():
    df = pd.DataFrame({"y": [1] * 7 + [0] * 93})
    stratified = [stratified_sample(df, "y", n=30, random_state=s)["y"].sum() for s in range(50)]
    simple = [simple_random_sample(df, 30, random_state=s)["y"].sum() for s in range(50)]
    assert set(stratified) == {2}  # 30 * 7% = 2.1 -> always 2
    assert len(set(simple)) > 2


def test_weighted_sample_favours_heavy_weights(loans):
    weights = np.where(np.arange(len(loans)) < 100, 50.0, 1.0)  # 100 heavy rows
    sample = weighted_sample(loans, 1000, weights, replace=True, random_state=SEED)
    heavy_share = np.isin(sample.index, loans.index[:100]).mean()
    expected = 100 * 50 / (100 * 50 + 2900)
    assert abs(heavy_share - expected) < 0.05
    # without replacement, heavy rows are drawn far above their 3% share of the rows
    sample = weighted_sample(loans, 100, weights, random_state=SEED)
    assert sample.index.is_unique and np.isin(sample.index, loans.index[:100]).mean() > 0.4


def test_weighted_sample_never_draws_zero_weights_and_takes_a_column(loans):
    df = loans.assign(w=(loans["serious_dlq"] == 1).astype(float))
    sample = weighted_sample(df, 50, "w", random_state=SEED)
    assert sample["serious_dlq"].eq(1).all()
    with pytest.raises(ValueError, match="positive weight"):
        weighted_sample(df, int(df["w"].sum()) + 1, "w")
    with pytest.raises(ValueError, match=">= 0"):
        weighted_sample(df, 1, -df["w"])
    with pytest.raises(ValueError, match="one weight per row"):
        weighted_sample(df, 1, [1.0, 2.0])


# -- reservoir sampling ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["R", "L"])
def test_reservoir_sampling_is_uniform(method):
    """Every item of a 20-item stream is kept with probability 5/20 (chi-square test)."""
    rng = np.random.default_rng(SEED)
    print(f"seed {SEED}")
    counts = np.zeros(20)
    runs = 4000
    for _ in range(runs):
        kept = reservoir_sample(iter(range(20)), 5, method=method, random_state=rng)
        assert len(kept) == 5 and len(set(kept)) == 5
        counts[kept] += 1
    assert counts.sum() == runs * 5
    assert chisquare(counts).pvalue > 0.001
    assert counts.min() > 0  # first and last items both get in


@pytest.mark.parametrize("method", ["R", "L"])
def test_reservoir_sampling_is_deterministic_per_seed(method):
    first = reservoir_sample(range(10_000), 10, method=method, random_state=7)
    assert first == reservoir_sample((i for i in range(10_000)), 10, method=method, random_state=7)
    assert first != reservoir_sample(range(10_000), 10, method=method, random_state=8)
    assert set(first) <= set(range(10_000))


def test_reservoir_short_stream_and_bad_k():
    assert sorted(reservoir_sample(["a", "b", "c"], 5, random_state=0)) == ["a", "b", "c"]
    assert reservoir_sample([], 3, random_state=0) == []
    for k in (0, -1, 2.5):
        with pytest.raises(ValueError, match="positive whole number"):
            reservoir_sample(range(10), k)
    with pytest.raises(ValueError, match="Unknown method"):
        reservoir_sample(range(10), 2, method="Z")


# -- importance weights ---------------------------------------------------------------


def test_importance_weights_by_hand():
    source = pd.Series(["web"] * 6 + ["branch"] * 3 + ["broker"], index=range(10, 20))
    target = pd.Series(["web"] * 2 + ["branch"] * 2)  # 50/50, no broker
    weights = importance_weights(source, target)
    assert weights.index.equals(source.index)
    # web: 0.5 / 0.6, branch: 0.5 / 0.3, broker: 0 / 0.1
    np.testing.assert_allclose(weights.to_numpy(), [0.5 / 0.6] * 6 + [0.5 / 0.3] * 3 + [0.0])
    from_mapping = importance_weights(source, {"web": 1, "branch": 1})
    pd.testing.assert_series_equal(from_mapping, weights)


def test_importance_weights_reweight_a_sample_toward_the_target(loans):
    target = loans["channel"]
    biased = weighted_sample(
        loans, 800, np.where(loans["channel"] == "web", 5.0, 1.0), random_state=SEED
    )  # over-represents web
    weights = importance_weights(biased["channel"], target)
    assert weights.mean() == pytest.approx(1.0)
    reweighted = weights.groupby(biased["channel"]).sum() / weights.sum()
    expected = target.value_counts(normalize=True)
    assert (reweighted - expected.reindex(reweighted.index)).abs().max() < 1e-9
    assert abs(biased["channel"].eq("web").mean() - expected["web"]) > 0.1  # the sample was biased


def test_importance_weights_for_a_binned_numeric_column():
    source = pd.Series([1.0, 2.0, 3.0, np.nan, 10.0])
    target = pd.Series([1.0, 1.0, 1.0, 1.0, 9.0])
    # two equal-width bins over 1..10 split at 5.5: source 3/5 low, 1/5 high, 1/5 missing
    weights = importance_weights(source, target, bins=2)
    np.testing.assert_allclose(weights.to_numpy(), [0.8 / 0.6] * 3 + [0.0, 0.2 / 0.2])
    with pytest.raises(ValueError, match="outside the bins"):
        importance_weights(source, target, bins=[0.0, 5.0])


# -- splits ---------------------------------------------------------------------------


def assert_partition(df: pd.DataFrame, split: sampling.Split) -> None:
    """The three parts are disjoint and together hold every row exactly once."""
    joined = pd.concat(split)
    assert joined.index.is_unique
    assert sorted(joined.index) == sorted(df.index)


def test_random_split_sizes_and_partition(loans):
    split = random_split(loans, valid_size=0.2, test_size=0.1, random_state=SEED)
    assert_partition(loans, split)
    assert [len(p) for p in split] == [2100, 600, 300]
    assert split.train.index.is_monotonic_increasing  # original order kept
    with pytest.raises(ValueError, match="sum to < 1"):
        random_split(loans, valid_size=0.5, test_size=0.5)


def test_stratified_split_keeps_proportions_in_every_part(loans):
    population = loans["serious_dlq"].mean()
    for seed in range(5):
        split = stratified_split(loans, "serious_dlq", valid_size=0.15, test_size=0.15, random_state=seed)
        assert_partition(loans, split)
        for part in split:
            assert abs(part["serious_dlq"].mean() - population) < 0.01


def test_time_split_never_puts_a_later_period_in_an_earlier_split(loans):
    split = time_split(loans, "applied_at", train_end="2024-06", valid_end="2024-09")
    assert_partition(loans, split)
    assert split.train["applied_at"].max() < split.valid["applied_at"].min()
    assert split.valid["applied_at"].max() < split.test["applied_at"].min()
    assert split.train["month"].max() == "2024-06" and split.valid["month"].min() == "2024-07"
    assert split.valid["month"].max() == "2024-09" and split.test["month"].min() == "2024-10"
    by_month = time_split(loans, "month", train_end="2024-06", valid_end="2024-09")
    for a, b in zip(split, by_month, strict=True):
        assert a.index.equals(b.index)


def test_time_split_test_end_drops_later_months_and_cutoffs_are_checked(loans):
    split = time_split(loans, "month", train_end="2024-06", valid_end="2024-09", test_end="2024-10")
    assert set(split.test["month"]) == {"2024-10"}
    assert len(pd.concat(split)) == (loans["month"] <= "2024-10").sum()
    with pytest.raises(ValueError, match="must increase"):
        time_split(loans, "month", train_end="2024-09", valid_end="2024-06")
    with pytest.raises(ValueError, match="YYYY-MM"):
        time_split(loans, "month", train_end="June", valid_end="2024-09")
    with pytest.raises(ValueError, match="no applied_at"):
        time_split(loans.assign(applied_at=pd.NaT), "applied_at", train_end="2024-06", valid_end="2024-09")


def test_group_split_keeps_each_customer_in_one_split(loans):
    split = group_split(loans, "customer_id", valid_size=0.2, test_size=0.2, random_state=SEED)
    assert_partition(loans, split)
    customers = [set(part["customer_id"]) for part in split]
    assert not customers[0] & customers[1]
    assert not customers[0] & customers[2]
    assert not customers[1] & customers[2]
    n_groups = loans["customer_id"].nunique()
    assert [len(c) for c in customers[1:]] == [round(0.2 * n_groups)] * 2
    # a random split, by contrast, puts most test customers in training too
    leaky = random_split(loans, valid_size=0.2, test_size=0.2, random_state=SEED)
    assert len(set(leaky.test["customer_id"]) & set(leaky.train["customer_id"])) > 100


SAMPLERS = {
    "simple": lambda df, rs: simple_random_sample(df, 50, random_state=rs),
    "stratified": lambda df, rs: stratified_sample(df, "serious_dlq", n=50, random_state=rs),
    "weighted": lambda df, rs: weighted_sample(df, 50, "amount", random_state=rs),
    "random_split": lambda df, rs: random_split(df, random_state=rs).test,
    "stratified_split": lambda df, rs: stratified_split(df, "serious_dlq", random_state=rs).test,
    "group_split": lambda df, rs: group_split(df, random_state=rs).test,
    "undersample": lambda df, rs: undersample(df, "serious_dlq", random_state=rs),
    "oversample": lambda df, rs: oversample(df, "serious_dlq", ratio=0.5, random_state=rs),
}


@pytest.mark.parametrize("name", SAMPLERS)
def test_same_seed_same_rows_different_seed_different_rows(loans, name):
    draw = SAMPLERS[name]
    before = loans.copy()
    first = draw(loans, 1)
    pd.testing.assert_frame_equal(first, draw(loans, 1))
    pd.testing.assert_frame_equal(first, draw(loans, np.random.default_rng(1)))
    assert not first.index.equals(draw(loans, 2).index)
    pd.testing.assert_frame_equal(loans, before)  # the input is never changed


# -- class imbalance ------------------------------------------------------------------


def test_class_balance_and_imbalance_ratio(loans):
    table = class_balance(loans["serious_dlq"])
    counts = loans["serious_dlq"].value_counts()
    assert table.index.tolist() == [0, 1]  # largest class first
    assert table["count"].tolist() == [counts[0], counts[1]]
    assert table["proportion"].sum() == pytest.approx(1.0)
    assert table.loc[1, "proportion"] == pytest.approx(loans["serious_dlq"].mean())
    assert table.loc[0, "ratio_to_minority"] == pytest.approx(counts[0] / counts[1])
    assert imbalance_ratio(loans["serious_dlq"]) == pytest.approx(counts[0] / counts[1])
    with pytest.raises(ValueError, match="not observed yet"):
        class_balance(pd.Series([0, 1, None]))


@pytest.mark.parametrize("ratio", [1.0, 0.5, 0.25])
def test_undersample_reaches_the_ratio_and_keeps_every_minority_row(loans, ratio):
    out = undersample(loans, "serious_dlq", ratio=ratio, random_state=SEED)
    counts = out["serious_dlq"].value_counts()
    n_minority = (loans["serious_dlq"] == 1).sum()
    assert counts[1] == n_minority
    assert counts[0] == round(n_minority / ratio)
    assert out.index.is_unique and out.index.isin(loans.index).all()


@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_oversample_repeats_only_minority_rows(loans, ratio):
    out = oversample(loans, "serious_dlq", ratio=ratio, random_state=SEED)
    counts = out["serious_dlq"].value_counts()
    n_majority = (loans["serious_dlq"] == 0).sum()
    assert counts[0] == n_majority and counts[1] == round(n_majority * ratio)
    copies = out[out.index.duplicated()]
    assert copies["serious_dlq"].eq(1).all()
    assert set(out.index) == set(loans.index)
    pd.testing.assert_frame_equal(copies, loans.loc[copies.index])


@pytest.mark.parametrize("ratio", [0, 1.5])
def test_resampling_ratio_must_be_a_fraction(loans, ratio):
    with pytest.raises(ValueError, match=r"ratio must be in \(0, 1\]"):
        undersample(loans, "serious_dlq", ratio=ratio)


def test_class_weights_match_sklearn_balanced():
    y = np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 2)
    weights = class_weights(y)
    expected = compute_class_weight("balanced", classes=np.array(["a", "b", "c"]), y=y)
    assert list(weights) == ["a", "b", "c"]
    np.testing.assert_allclose(list(weights.values()), expected)
    # each class then carries the same total weight
    totals = {label: weights[label] * (y == label).sum() for label in weights}
    assert max(totals.values()) == pytest.approx(min(totals.values()))


def test_random_state_rejects_legacy_randomstate(loans):
    with pytest.raises(ValueError, match="numpy Generator"):
        simple_random_sample(loans, 5, random_state=np.random.RandomState(0))
