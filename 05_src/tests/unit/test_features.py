"""mlsd.features: every factory fits on data with gaps and transforms data with surprises."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from mlsd.features import (
    DateParts,
    FeatureCross,
    HashingEncoder,
    binner,
    course_feature_columns,
    feature_cross,
    imputer,
    make_preprocessor,
    one_hot,
    power_transformer,
    scaler,
)

SEED = 11


def gold_like(n: int, seed: int = SEED) -> pd.DataFrame:
    """Rows shaped like gold.application_features, with missing values."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(8, 0.8, n)
    income[rng.random(n) < 0.2] = np.nan
    dependents = rng.integers(0, 4, n).astype(float)
    dependents[rng.random(n) < 0.1] = np.nan
    applied_at = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 90 * 24, n), unit="h")
    frame = pd.DataFrame(
        {
            "application_id": [f"A{i:010d}" for i in range(n)],
            "customer_id": [f"C{i:08d}" for i in rng.integers(0, n // 2, n)],
            "applied_at": applied_at,
            "month": applied_at.strftime("%Y-%m"),
            "channel": rng.choice(["web", "branch", "mobile", "broker"], n),
            "purpose": rng.choice(["car", "credit_card", "debt_consolidation"], n),
            "amount": rng.lognormal(9, 0.5, n),
            "term_months": rng.choice([12, 24, 36, 48, 60], n),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "age": rng.integers(21, 90, n),
            "revolving_utilization": rng.pareto(3, n),
            "debt_ratio": rng.pareto(2, n),
            "monthly_income": income,
            "open_credit_lines": rng.integers(0, 20, n),
            "real_estate_loans": rng.integers(0, 3, n),
            "dependents": dependents,
            "late_30_59": rng.integers(0, 3, n),
            "late_60_89": rng.integers(0, 2, n),
            "late_90": rng.integers(0, 2, n),
            "prior_applications": rng.integers(0, 5, n),
            "prior_late_payments": rng.integers(0, 3, n),
            "serious_dlq": (rng.random(n) < 0.2).astype(int),
        }
    )
    frame.loc[frame.sample(frac=0.05, random_state=1).index, "channel"] = None
    return frame


@pytest.fixture
def train() -> pd.DataFrame:
    return gold_like(300)


@pytest.fixture
def new_rows() -> pd.DataFrame:
    """Later data: categories never seen in training, more gaps, a new region."""
    frame = gold_like(40, seed=SEED + 1)
    frame.loc[:9, "channel"] = "partner_app"
    frame.loc[10:14, "purpose"] = "wedding"
    frame.loc[15:19, "region"] = "far_north"
    frame.loc[20:24, "amount"] = np.nan  # amount had no gaps in training
    frame.loc[25:29, "channel"] = None
    return frame


# -- single-step factories ------------------------------------------------------------


def test_imputer_fills_with_the_median_and_flags_missing():
    df = pd.DataFrame({"income": [1.0, np.nan, 5.0, 3.0], "age": [30.0, 40.0, 50.0, 60.0]})
    out = imputer().fit_transform(df)
    assert list(out.columns) == ["income", "age", "missingindicator_income"]
    assert out["income"].tolist() == [1.0, 3.0, 5.0, 3.0]
    assert out["missingindicator_income"].tolist() == [0.0, 1.0, 0.0, 0.0]
    new = pd.DataFrame({"income": [np.nan], "age": [np.nan]}, index=[99])
    assert imputer().fit(df).transform(new).loc[99, ["income", "age"]].tolist() == [3.0, 45.0]


def test_scalers_standardise_and_resist_outliers():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 1000.0]})
    standard = scaler("standard").fit_transform(df)["x"]
    assert standard.mean() == pytest.approx(0) and standard.std(ddof=0) == pytest.approx(1)
    robust = scaler("robust").fit_transform(df)["x"]
    assert robust.median() == pytest.approx(0)
    assert robust.iloc[:4].tolist() == pytest.approx([-1.0, -0.5, 0.0, 0.5])  # IQR = 2
    with pytest.raises(ValueError, match="Unknown scaler 'minmax'"):
        scaler("minmax")


def test_power_transforms_pull_in_the_tail(train):
    df = train[["revolving_utilization", "debt_ratio"]]
    yeo = power_transformer().fit_transform(df)
    assert list(yeo.columns) == list(df.columns)
    assert (yeo.skew().abs() < df.skew().abs() / 2).all()
    logged = power_transformer("log1p").fit_transform(df)
    np.testing.assert_allclose(logged.to_numpy(), np.log1p(df.to_numpy()))
    assert list(logged.columns) == list(df.columns)
    with_gap = pd.DataFrame({"x": [0.0, np.nan, 3.0]})
    assert power_transformer("log1p").fit_transform(with_gap)["x"].isna().tolist() == [False, True, False]
    with pytest.raises(ValueError, match="log1p needs values >= 0"):
        power_transformer("log1p").fit_transform(pd.DataFrame({"x": [-2.0, 1.0]}))


def test_binner_makes_quantile_bins(train):
    df = train[["age"]]
    bins = binner(4).fit_transform(df)["age"]
    assert sorted(bins.unique()) == [0.0, 1.0, 2.0, 3.0]
    assert bins.value_counts().min() >= 0.2 * len(df)  # about a quarter each
    # bins follow the order of the values
    assert df["age"].groupby(bins).max().is_monotonic_increasing
    onehot = binner(3, encode="onehot").fit_transform(df)
    assert list(onehot.columns) == ["age_0.0", "age_1.0", "age_2.0"]
    assert (onehot.sum(axis=1) == 1).all()


def test_one_hot_pools_rare_and_unseen_categories(train, new_rows):
    train = train.assign(channel=train["channel"].fillna("missing"))
    train.loc[:2, "channel"] = "call_centre"  # 3 rows: rare
    encoder = one_hot(min_frequency=5).fit(train[["channel"]])
    names = list(encoder.get_feature_names_out())
    assert "channel_call_centre" not in names and "channel_infrequent_sklearn" in names
    out = encoder.transform(new_rows[["channel"]].fillna("missing"))
    assert out.index.equals(new_rows.index)
    assert (out.sum(axis=1) == 1).all()
    assert (out.loc[:9, "channel_infrequent_sklearn"] == 1).all()  # partner_app never seen
    # without rare categories an unseen one is all zeros, and nothing fails
    plain = one_hot().fit(pd.DataFrame({"c": ["a", "b"]}))
    assert plain.transform(pd.DataFrame({"c": ["zzz"]})).sum(axis=1).tolist() == [0.0]


# -- custom transformers --------------------------------------------------------------


def test_hashing_encoder_names_columns_and_handles_unseen_categories(train, new_rows):
    encoder = HashingEncoder(n_features=8).fit(train[["region", "customer_id"]])
    out = encoder.transform(new_rows[["region", "customer_id"]])
    assert list(out.columns) == [f"region_hash_{i}" for i in range(8)] + [
        f"customer_id_hash_{i}" for i in range(8)
    ]
    assert out.index.equals(new_rows.index)
    region = out.filter(like="region_hash")
    assert (region.sum(axis=1) == 1).all()  # one bucket per row, unseen "far_north" included
    # a category always lands in the same bucket, in any fit and any batch
    again = HashingEncoder(n_features=8).fit(new_rows[["region"]])
    both = pd.concat([train, new_rows], ignore_index=True)
    buckets = again.transform(both[["region"]]).to_numpy().argmax(axis=1)
    assert pd.Series(buckets).groupby(both["region"]).nunique().eq(1).all()
    assert len(set(buckets)) > 1


def test_hashing_encoder_takes_a_series_and_missing_values():
    encoder = HashingEncoder(n_features=4).fit(pd.Series(["a", "b"], name="code"))
    out = encoder.transform(pd.Series(["a", None, "new"], name="code"))
    assert list(out.columns) == ["code_hash_0", "code_hash_1", "code_hash_2", "code_hash_3"]
    assert out.sum(axis=1).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="positive whole number"):
        HashingEncoder(n_features=0).fit(pd.Series(["a"], name="code"))


def test_feature_cross_values_and_encodings():
    df = pd.DataFrame(
        {"channel": ["web", "web", "branch", None], "region": ["n", "s", "n", "n"], "term": [12, 12, 36, 36]}
    )
    crossed = FeatureCross([("channel", "region"), ("channel", "region", "term")]).fit_transform(df)
    assert list(crossed.columns) == ["channel_x_region", "channel_x_region_x_term"]
    assert crossed["channel_x_region"].tolist() == ["web_x_n", "web_x_s", "branch_x_n", "missing_x_n"]
    assert crossed["channel_x_region_x_term"].iloc[2] == "branch_x_n_x_36"
    encoded = feature_cross([("channel", "region")]).fit(df)
    out = encoded.transform(pd.DataFrame({"channel": ["web", "broker"], "region": ["s", "s"]}))
    assert "channel_x_region_web_x_s" in out.columns
    assert out["channel_x_region_web_x_s"].tolist() == [1.0, 0.0]
    assert out.sum(axis=1).tolist() == [1.0, 0.0]  # an unseen cross encodes as zeros
    hashed = feature_cross([("channel", "region")], encode="hash", n_features=4).fit_transform(df)
    assert list(hashed.columns) == [f"channel_x_region_hash_{i}" for i in range(4)]
    with pytest.raises(ValueError, match="at least two columns"):
        FeatureCross([("channel",)]).fit(df)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['nope'\]"):
        FeatureCross([("channel", "nope")]).fit(df)


def test_date_parts_values():
    stamps = pd.Series(
        pd.to_datetime(["2025-03-01 14:30", "2025-03-03 09:00", "2025-12-28 23:59", None], utc=True),
        name="applied_at",
    )
    out = DateParts().fit_transform(stamps.to_frame())
    # 2025-03-01 is a Saturday, 2025-03-03 a Monday, 2025-12-28 a Sunday
    assert out.columns.tolist() == [
        "applied_at_month",
        "applied_at_day_of_week",
        "applied_at_hour",
        "applied_at_is_weekend",
    ]
    assert out.iloc[:3].to_numpy().tolist() == [[3, 5, 14, 1], [3, 0, 9, 0], [12, 6, 23, 1]]
    assert out.iloc[3].isna().all()
    as_text = DateParts(parts=["hour"]).fit_transform(pd.DataFrame({"t": ["2025-03-01T14:30:00+00:00"]}))
    assert as_text["t_hour"].tolist() == [14.0]
    with pytest.raises(ValueError, match="Unknown date part 'minute'"):
        DateParts(parts=["minute"]).fit(stamps.to_frame())


# -- the ColumnTransformer ------------------------------------------------------------


def test_course_preprocessor_on_unseen_data(train, new_rows):
    columns = course_feature_columns()
    prep = make_preprocessor(**columns).fit(train)
    out = prep.transform(new_rows)
    names = list(out.columns)
    assert names == list(prep.get_feature_names_out())
    assert out.index.equals(new_rows.index)
    assert not out.isna().any().any()
    assert not [n for n in names if "__" in n]  # no "numeric__" prefixes
    assert set(columns["numeric"]) <= set(names)
    assert "missingindicator_monthly_income" in names and "missingindicator_amount" not in names
    assert {"channel_web", "channel_missing", "purpose_car", "region_north"} <= set(names)
    # no calendar parts by default (the truth has no time term, session 4); only when asked for
    assert not [n for n in names if n.startswith("applied_at")]
    dated = make_preprocessor(**(columns | {"dates": ["applied_at"]})).fit(train)
    assert {"applied_at_month", "applied_at_is_weekend"} <= set(dated.get_feature_names_out())
    assert "channel_partner_app" not in names
    # numeric columns are standardised on the training data
    scaled = prep.transform(train)
    assert scaled["amount"].mean() == pytest.approx(0, abs=1e-9)
    assert scaled["amount"].std(ddof=0) == pytest.approx(1)
    # refitting gives the same, stable names
    assert list(clone(prep).fit(train).get_feature_names_out()) == names


def test_preprocessor_options_change_the_numeric_branch(train):
    base = dict(numeric=["debt_ratio", "age"], categorical=["channel"])
    plain = make_preprocessor(**base, scaler=None).fit_transform(train)
    assert plain["age"].tolist() == train["age"].astype(float).tolist()
    robust = make_preprocessor(**base, scaler="robust").fit_transform(train)
    assert robust["debt_ratio"].median() == pytest.approx(0)
    powered = make_preprocessor(**base, power=True).fit_transform(train)
    assert abs(powered["debt_ratio"].skew()) < abs(robust["debt_ratio"].skew()) / 2
    binned = make_preprocessor(**base, bins={"age": 4}).fit_transform(train)
    assert sorted(binned["age"].unique()) == [0.0, 1.0, 2.0, 3.0]
    assert binned["debt_ratio"].mean() == pytest.approx(0, abs=1e-9)  # still scaled
    hashed = make_preprocessor(numeric=["age"], high_cardinality=["region"], n_hash_features=4)
    assert list(hashed.fit(train).get_feature_names_out()) == ["age"] + [f"region_hash_{i}" for i in range(4)]
    crossed = make_preprocessor(categorical=["channel"], crosses=[("channel", "region")]).fit(train)
    assert any(n.startswith("channel_x_region_") for n in crossed.get_feature_names_out())


def test_preprocessor_explains_bad_arguments():
    with pytest.raises(ValueError, match="Unknown scaler"):
        make_preprocessor(numeric=["a"], scaler="minmax")
    with pytest.raises(ValueError, match="more than one kind"):
        make_preprocessor(numeric=["a"], categorical=["a"])
    with pytest.raises(ValueError, match="not in numeric"):
        make_preprocessor(numeric=["a"], bins={"b": 3})
    with pytest.raises(ValueError, match="No columns"):
        make_preprocessor()


def test_preprocessor_in_a_model_pipeline_keeps_feature_names(train, new_rows):
    model = make_pipeline(make_preprocessor(**course_feature_columns()), LogisticRegression(max_iter=500))
    model.fit(train, train["serious_dlq"])
    assert list(model[-1].feature_names_in_) == list(model[0].get_feature_names_out())
    assert model.predict_proba(new_rows).shape == (len(new_rows), 2)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(restored.predict_proba(new_rows), model.predict_proba(new_rows))
