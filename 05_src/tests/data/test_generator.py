"""Properties of the generated course data: determinism, realism, defects, drift, truth, memory.

Generation is cheap at ``tiny`` (3,000 applications) and ``small`` (40,000), so each property is
checked on data generated here. Tests that depend on randomness hold for any seed:
``MLSD_TEST_SEED=7 uv run pytest 05_src/tests/data`` runs them with another one.
"""

from __future__ import annotations

import hashlib
import operator
import os

import numpy as np
import pandas as pd
import pytest

import mlsd.data as data
from mlsd.errors import MLSDError

pytestmark = pytest.mark.data

SEED = int(os.environ.get("MLSD_TEST_SEED", "42"))
NO_DRIFT = "2025-04"  # first month of any drift


@pytest.fixture(scope="session", autouse=True)
def _print_seed():
    print(f"\nmlsd.data tests use seed {SEED} (set MLSD_TEST_SEED to change it)")


def _digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _stream(**kwargs) -> dict[str, pd.DataFrame]:
    """All months of ``iter_month_frames`` concatenated per table."""
    parts: dict[str, list[pd.DataFrame]] = {}
    for _, frames in data.iter_month_frames(seed=SEED, **kwargs):
        for table, frame in frames.items():
            parts.setdefault(table, []).append(frame)
    return {table: pd.concat(frames, ignore_index=True) for table, frames in parts.items()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    return out, data.generate(out, scale="tiny", seed=SEED, progress=False)


@pytest.fixture(scope="module")
def small_landing(tmp_path_factory):
    """Small scale, Parquet, with defects: what bronze loads."""
    out = tmp_path_factory.mktemp("small")
    manifest = data.generate(out, scale="small", seed=SEED, progress=False)
    return manifest, {t: data.read_landing(out, t) for t in data.TABLES}


@pytest.fixture(scope="module")
def small_clean():
    """Small scale without defects, with the answer key; all scenarios on."""
    return _stream(scale="small", defects=False, with_truth=True)


# ------------------------------------------------------------------------------------------------
# a pandas re-implementation of the silver rules documented in mlsd.data (the pipeline does it in SQL)

_OPS = {"<": operator.lt, "<=": operator.le, "=": operator.eq}


def silver(table: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    counts: dict[str, int] = {}
    n = len(frame)
    frame = frame.drop_duplicates()
    counts["exact_duplicates"] = n - len(frame)
    n = len(frame)
    frame = frame.sort_values("ingested_at", kind="stable").drop_duplicates(
        list(data.PRIMARY_KEYS[table]), keep="last"
    )
    counts["near_duplicates"] = n - len(frame)
    event = pd.to_datetime(frame[data.EVENT_TIME_COLUMNS[table]], utc=True)
    counts["late_arriving"] = int((event.dt.strftime("%Y-%m") < frame["month"]).sum())
    frame = frame.copy()
    spellings = 0
    for column in data.CATEGORY_COLUMNS.get(table, ()):
        mapping = data.CATEGORY_CANONICAL[column]
        values = frame[column]
        wrong = values.notna() & ~values.isin(set(mapping.values()))
        spellings += int(wrong.sum())
        frame[column] = values.where(~wrong, values.str.strip().str.lower().map(mapping))
    if table in data.CATEGORY_COLUMNS:
        counts["category_spellings"] = spellings
    if table in data.EXTRA_NULL_COLUMNS:
        counts["extra_nulls"] = 0
        for column in data.EXTRA_NULL_COLUMNS[table]:
            counts["extra_nulls"] += int(frame[column].isna().sum())
            if column in data.CATEGORY_VALUES:
                frame[column] = frame[column].fillna(data.NULL_CATEGORY)
    if table in data.IMPOSSIBLE_VALUE_RULES:
        counts["impossible_values"] = 0
        for column, (op, threshold) in data.IMPOSSIBLE_VALUE_RULES[table].items():
            bad = _OPS[op](frame[column], threshold)
            counts["impossible_values"] += int(bad.sum())
            frame[column] = frame[column].mask(bad)
    if table == "bureau":
        sentinel = frame[list(data.LATE_COLUMNS)].isin(data.SENTINEL_CODES).any(axis=1)
        counts["sentinel_codes"] = int(sentinel.sum())
        for column in data.LATE_COLUMNS:
            frame[column] = frame[column].mask(sentinel)
    keys = list(data.PRIMARY_KEYS[table])
    return frame.sort_values(keys, kind="stable").reset_index(drop=True), counts


# ------------------------------------------------------------------------------------------------
# determinism and the manifest


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_same_seed_gives_identical_bytes(tmp_path, fmt):
    first = data.generate(tmp_path / "a", scale="tiny", seed=SEED, fmt=fmt, progress=False)
    second = data.generate(tmp_path / "b", scale="tiny", seed=SEED, fmt=fmt, progress=False)
    assert first == second
    digest_a, digest_b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert len(digest_a) == 5 * 30 + 1
    assert digest_a == digest_b


def test_different_seeds_differ(tmp_path, tiny):
    out, _ = tiny
    other = tmp_path / "other"
    data.generate(other, scale="tiny", seed=SEED + 1, progress=False)
    a, b = _digest(out), _digest(other)
    differing = [path for path in a if a[path] != b.get(path)]
    assert len(differing) >= 5 * 30 - 10  # nearly every file (early outcome files are empty)
    amounts_a = data.read_landing(out, "applications")["amount"]
    amounts_b = data.read_landing(other, "applications")["amount"]
    assert not np.allclose(amounts_a.head(500).to_numpy(), amounts_b.head(500).to_numpy(), equal_nan=True)


def test_manifest_matches_the_files(tiny):
    out, manifest = tiny
    assert manifest == data.read_manifest(out)
    assert manifest["months"][0] == "2024-01" and manifest["months"][-1] == "2026-06"
    assert manifest["as_of"] == "2026-07-01"
    assert manifest["labels"]["performance_window_months"] == 6
    assert manifest["labels"]["complete_through"] == "2025-12"
    assert manifest["ground_truth"]["drift"]["label_shift"]["start_month"] == "2025-07"
    listed = {path for paths in manifest["files"].values() for path in paths}
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*.parquet")}
    assert listed == on_disk
    for table in data.TABLES:
        frame = data.read_landing(out, table)
        assert len(frame) == manifest["rows"][table]
        by_month = frame.groupby("month").size().reindex(manifest["months"], fill_value=0)
        assert by_month.to_dict() == manifest["rows_by_month"][table]
        assert list(frame.columns[:-1]) == [name for name, _ in data.COLUMNS[table]]
    assert manifest["rows"]["applications"] >= data.SCALES["tiny"]
    assert set(manifest["scenarios"]) == set(data.SCENARIOS)
    assert manifest["ground_truth"]["coefficients"] == data.COEFFICIENTS


def test_parquet_and_csv_hold_the_same_rows(tmp_path, tiny):
    out, _ = tiny
    data.generate(tmp_path, scale="tiny", seed=SEED, fmt="csv", progress=False)
    for table in data.TABLES:
        pd.testing.assert_frame_equal(data.read_landing(out, table), data.read_landing(tmp_path, table))


def test_rerun_reuses_and_refuses_to_mix(tmp_path):
    first = data.generate(tmp_path, scale="tiny", seed=SEED, progress=False)
    stamp = (tmp_path / "manifest.json").stat().st_mtime_ns
    assert data.generate(tmp_path, scale="tiny", seed=SEED, progress=False) == first
    assert (tmp_path / "manifest.json").stat().st_mtime_ns == stamp
    with pytest.raises(MLSDError, match="overwrite=True"):
        data.generate(tmp_path, scale="tiny", seed=SEED + 1, progress=False)
    replaced = data.generate(tmp_path, scale="tiny", seed=SEED + 1, progress=False, overwrite=True)
    assert replaced["seed"] == SEED + 1


def test_streamed_frames_equal_the_files(tiny):
    out, _ = tiny
    streamed = _stream(scale="tiny")
    for table in data.TABLES:
        pd.testing.assert_frame_equal(streamed[table], data.read_landing(out, table))


# ------------------------------------------------------------------------------------------------
# realism: GMSC-like marginals


def test_marginals_are_close_to_give_me_some_credit(small_clean):
    truth, bureau = small_clean["truth"], small_clean["bureau"]
    rate = truth.loc[truth["month"] < NO_DRIFT, "serious_dlq"].mean()
    assert 0.055 <= rate <= 0.08
    assert 0.17 <= bureau["monthly_income"].isna().mean() <= 0.23
    assert 0.015 <= bureau["dependents"].isna().mean() <= 0.04
    assert bureau.loc[bureau["dependents"].isna(), "monthly_income"].isna().all()  # as in GMSC
    sentinel = bureau["late_90"].isin(data.SENTINEL_CODES)
    assert 0.0005 <= sentinel.mean() <= 0.005
    assert (bureau.loc[sentinel, list(data.LATE_COLUMNS)].isin(data.SENTINEL_CODES)).all().all()
    for column in data.LATE_COLUMNS:
        assert (bureau.loc[~sentinel, column] == 0).mean() >= 0.75
        assert bureau.loc[~sentinel, column].max() < 96
    assert bureau["age"].between(21, 100).all()
    assert 48 <= bureau.loc[bureau["month"] < NO_DRIFT, "age"].mean() <= 56


def test_utilisation_and_debt_ratio_are_heavy_tailed(small_clean):
    bureau = small_clean["bureau"]
    util = bureau["revolving_utilization"]
    assert 0.6 <= (util <= 1).mean() < 0.995
    assert util.quantile(0.99) > 1 and util.quantile(0.99) > 3 * util.median()
    assert util.max() > 100
    ratio = bureau["debt_ratio"]
    income_missing = bureau["monthly_income"].isna()
    assert ratio.median() < 1
    assert ratio.quantile(0.99) > 20 * ratio.median()
    assert ratio[income_missing].median() > 100  # a currency amount where income is missing


def test_categories_have_a_long_tail(small_clean):
    apps = small_clean["applications"]
    for column in ("channel", "purpose", "region"):
        shares = apps.loc[apps["month"] < NO_DRIFT, column].value_counts(normalize=True)
        assert set(shares.index) <= set(data.CATEGORY_VALUES[column])
        assert shares.iloc[0] > 0.2
        assert shares.iloc[0] / shares.iloc[-1] > 10
        assert len(shares) >= 10


def test_late_counts_and_utilisation_are_the_strongest_features(small_clean):
    features = data.truth_features(small_clean["bureau"])
    effect = {name: abs(coef) * features[name].std() for name, coef in data.COEFFICIENTS.items()}
    ranked = sorted(effect, key=effect.get, reverse=True)
    assert ranked[0] == "revolving_utilization"
    assert set(ranked[1:4]) == {"late_30_59", "late_60_89", "late_90"}
    assert data.COEFFICIENTS["age"] < 0


# ------------------------------------------------------------------------------------------------
# ground truth: recoverable point in time, outcomes delayed


def _point_in_time(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    apps = frames["applications"].sort_values("applied_at")
    snaps = frames["bureau"].drop(columns="month").sort_values("pulled_at")
    joined = pd.merge_asof(
        apps, snaps, left_on="applied_at", right_on="pulled_at", by="customer_id", direction="backward"
    )
    return joined.merge(frames["truth"][["application_id", "p_true", "serious_dlq"]], on="application_id")


def test_truth_is_recovered_from_the_point_in_time_snapshot(small_clean):
    joined = _point_in_time(small_clean)
    assert len(joined) == len(small_clean["truth"])
    p = data.true_probability(joined, month=joined["month"].to_numpy())
    np.testing.assert_allclose(p, joined["p_true"].to_numpy(), rtol=1e-12)

    # A snapshot pulled after the application is a different one, and it leaks the label.
    snaps = small_clean["bureau"].drop(columns="month").sort_values("pulled_at")
    after = pd.merge_asof(
        joined[
            ["application_id", "customer_id", "applied_at", "serious_dlq", "revolving_utilization"]
        ].sort_values("applied_at"),
        snaps[["customer_id", "pulled_at", "revolving_utilization"]],
        left_on="applied_at",
        right_on="pulled_at",
        by="customer_id",
        direction="forward",
        allow_exact_matches=False,
        tolerance=pd.Timedelta(days=31),
        suffixes=("", "_after"),
    ).dropna(subset=["pulled_at"])
    assert len(after) > 0.1 * len(joined)
    rise = (after["revolving_utilization_after"] - after["revolving_utilization"]).clip(-1, 1)
    assert rise[after["serious_dlq"] == 1].mean() > rise[after["serious_dlq"] == 0].mean() + 0.05


def test_outcomes_arrive_when_the_performance_window_allows(small_clean):
    """The label is "90 or more days past due within the first six instalments".

    A default cannot be known before the loan is 90 days past due, and a loan that repays cannot be
    known as good before the window closes: both are checked against the loan's own repayments.
    """
    window = 6
    outcomes = small_clean["outcomes"].merge(
        small_clean["applications"][["application_id", "applied_at"]], on="application_id"
    )
    as_of = pd.Timestamp("2026-07-01", tz="UTC")
    assert (outcomes["observed_at"] < as_of).all()
    repayments = small_clean["repayments"].assign(due=lambda f: pd.to_datetime(f["due_date"], utc=True))
    labelled = repayments.merge(outcomes, on="application_id")
    before = labelled[labelled["due"] < labelled["observed_at"]]
    seen = before.groupby("application_id").agg(
        instalments=("due", "size"), last_due=("due", "max"), worst=("days_late", "max")
    )
    outcomes = outcomes.join(seen, on="application_id")
    good, bad = outcomes[outcomes["serious_dlq"] == 0], outcomes[outcomes["serious_dlq"] == 1]
    # a repaid loan is observed after its whole window (all six instalments fell due) and never 90 days late
    assert (good["instalments"] == window).all() and (good["worst"] < 90).all()
    assert ((good["observed_at"] - good["last_due"]).dt.days.between(0, 2)).all()
    # a default is observed after the instalment that shows it 90 days past due, within a few days
    assert (bad["worst"] >= 90).all()
    first_90 = before[before["days_late"] >= 90].groupby("application_id")["due"].min()
    lag = (bad["observed_at"] - bad["application_id"].map(first_90)).dt.days
    assert lag.between(0, 2).all()
    delay = (outcomes["observed_at"] - outcomes["applied_at"]).dt.total_seconds() / 86_400
    delay_good, delay_bad = delay[good.index], delay[bad.index]
    assert delay_good.between(176, 188).all() and delay_bad.between(115, 188).all()
    # defaults arrive earlier than good outcomes: the newest labels are mostly defaults
    assert delay_bad.median() < delay_good.median() - 30
    cohort = outcomes.groupby(outcomes["applied_at"].dt.strftime("%Y-%m"))["serious_dlq"].agg(
        ["size", "mean"]
    )
    applied = small_clean["applications"].groupby("month").size()
    assert (
        cohort.loc[:"2025-12", "size"] == applied.loc[:"2025-12"]
    ).all()  # old enough: every label observed
    assert cohort.loc["2026-01", "mean"] == 1.0 and cohort.loc["2026-01", "size"] < 0.2 * applied["2026-01"]
    assert "2026-04" not in cohort.index  # nothing can be 90 days past due yet
    truth = small_clean["truth"].set_index("application_id")["serious_dlq"]
    assert (
        outcomes.set_index("application_id")["serious_dlq"] == truth.loc[outcomes["application_id"]]
    ).all()


def test_repayments_cover_the_performance_window(small_clean):
    repayments = small_clean["repayments"]
    per_loan = repayments.groupby("application_id").size()
    assert per_loan.max() == 6
    apps = small_clean["applications"].set_index("application_id")
    old = apps.index[apps["month"] <= "2025-12"]  # six instalments due before as_of
    assert (per_loan.reindex(old) == 6).all()
    truth = small_clean["truth"].set_index("application_id")["serious_dlq"]
    missed = repayments.merge(truth.rename("y"), left_on="application_id", right_index=True)
    # only defaults miss instalments; their delinquency climbs in 30-day buckets to 90 and beyond
    assert (missed.loc[missed["y"] == 0, "days_late"] < 30).all()
    assert set(missed.loc[missed["y"] == 1, "days_late"]) >= {0, 30, 60, 90, 120, 150}


# ------------------------------------------------------------------------------------------------
# defects: counted exactly, found and fixed by the documented silver rules


def test_each_defect_class_is_found_by_silver_with_the_manifest_count(small_landing):
    manifest, landing = small_landing
    for table in data.TABLES:
        _, found = silver(table, landing[table])
        expected = manifest["defects"][table]
        assert set(expected) == set(data.DEFECTS_BY_TABLE[table])
        for kind, count in expected.items():
            assert found[kind] == count, (table, kind)
            assert count > 0, (table, kind)  # every class is present, so the check has teeth
    age = landing["bureau"]["age"]
    assert (age.between(21, 100) | (age == 0)).all()  # 0 only as an injected impossible value
    assert 0 < (age == 0).sum() <= manifest["defects"]["bureau"]["impossible_values"]


def test_silver_recovers_the_clean_data(small_landing):
    manifest, landing = small_landing
    clean = _stream(scale="small", defects=False)
    for table in data.TABLES:
        fixed, _ = silver(table, landing[table])
        reference, counts = silver(table, clean[table])
        assert sum(v for k, v in counts.items() if k != "sentinel_codes") == 0
        assert len(fixed) == len(reference)
        columns = [c for c, _ in data.COLUMNS[table] if c != "ingested_at"]
        left, right = fixed[columns], reference[columns]
        differs = ~((left == right) | (left.isna() & right.isna()))
        nulled = manifest["defects"][table].get("impossible_values", 0) + manifest["defects"][table].get(
            "extra_nulls", 0
        )
        assert int(differs.to_numpy().sum()) == nulled, table


def test_defects_can_be_switched_off(small_clean):
    for table in data.TABLES:
        _, counts = silver(table, small_clean[table])
        assert all(v == 0 for k, v in counts.items() if k != "sentinel_codes"), table


# ------------------------------------------------------------------------------------------------
# drift scenarios: the intended change, at the intended month, nowhere else


@pytest.fixture(scope="module")
def no_drift():
    return _stream(scale="small", defects=False, with_truth=True, scenarios=[])


def _by_month(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame.groupby("month")[column].mean()


def test_covariate_shift_brings_partner_app_from_april_2025(small_clean, no_drift):
    partner = small_clean["applications"].assign(partner=lambda f: f["channel"] == "partner_app")
    share = _by_month(partner, "partner")
    assert (share[share.index < "2025-04"] == 0).all()
    assert share[share.index >= "2025-04"].between(0.22, 0.40).all()
    apps_age = _point_in_time(small_clean).groupby("month")["age"].mean()
    assert apps_age[apps_age.index >= "2025-04"].mean() < apps_age[apps_age.index < "2025-04"].mean() - 3
    off = no_drift["applications"].assign(partner=lambda f: f["channel"] == "partner_app")
    assert not off["partner"].any()


@pytest.fixture(scope="module")
def shifted():
    """All scenarios, 120,000 applications: enough defaults per quarter for two-sample tests."""
    frames = _stream(rows=120_000, defects=False, with_truth=True)
    joined = _point_in_time(frames)
    features = data.truth_features(joined)
    from sklearn.linear_model import LogisticRegression

    fit = joined["month"] <= "2024-12"  # a fixed model, trained before any drift
    model = LogisticRegression(max_iter=1000).fit(features[fit], joined.loc[fit, "serious_dlq"])
    late = features[["late_30_59", "late_60_89", "late_90"]].sum(axis=1)
    return joined.assign(
        score=model.predict_proba(features)[:, 1],
        utilisation_capped=features["revolving_utilization"],  # heavy tail capped, as the truth does
        late_payments_capped=late,
    )


LABEL_SHIFT_BEFORE = ("2025-04", "2025-06")  # the covariate shift is on in both quarters
LABEL_SHIFT_AFTER = ("2025-07", "2025-09")  # ... and the concept drift in neither


def _quarters(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return frame[frame["month"].between(*LABEL_SHIFT_BEFORE)], frame[
        frame["month"].between(*LABEL_SHIFT_AFTER)
    ]


def test_label_shift_doubles_the_odds_of_default_from_july_2025(shifted):
    rate = _by_month(shifted, "serious_dlq")
    before, after = _quarters(shifted)
    odds = [part["serious_dlq"].mean() / (1 - part["serious_dlq"].mean()) for part in (before, after)]
    print(f"default rate {before['serious_dlq'].mean():.3f} -> {after['serious_dlq'].mean():.3f}")
    assert 1.6 < odds[1] / odds[0] < 2.5  # the odds ratio of the scenario is 2
    assert rate[rate.index < "2025-04"].between(0.04, 0.1).all()
    assert rate[rate.index.to_series().between(*LABEL_SHIFT_AFTER)].between(0.11, 0.2).all()
    # the answer key agrees: an applicant's true probability includes the shifted prior
    assert after["p_true"].mean() == pytest.approx(after["serious_dlq"].mean(), abs=0.015)


def test_label_shift_keeps_each_class_as_it_was_and_moves_the_inputs(shifted):
    """P(x | y) is unchanged, so P(x) and the score of a fixed model move with P(y).

    Within each class, Mann-Whitney tests between the quarters before and after find nothing
    (each p above 1e-4: ten tests, so a false failure once in a thousand seeds). Over all
    applicants the score, utilisation and late payments rise by more than three standard errors
    (about 9, 5 and 7 at this scale), by as much as the mixture of the two classes predicts.
    """
    from scipy import stats

    before, after = _quarters(shifted)
    for column in ("score", "revolving_utilization", "late_30_59", "age", "monthly_income"):
        for label in (0, 1):
            x, y = (part.loc[part["serious_dlq"] == label, column].dropna() for part in (before, after))
            p = stats.mannwhitneyu(x, y).pvalue
            assert p > 1e-4, f"{column} | serious_dlq={label} moved (p={p:.2g}): P(x | y) should not"
    # the mixture predicts the move: E[x] = P(y=1) E[x | 1] + P(y=0) E[x | 0], class means from before
    rate = after["serious_dlq"].mean()
    for column in ("score", "utilisation_capped", "late_payments_capped"):
        by_class = before.groupby("serious_dlq")[column].mean()
        predicted = rate * by_class[1] + (1 - rate) * by_class[0]
        observed, earlier = after[column].mean(), before[column].mean()
        se = np.hypot(after[column].std() / np.sqrt(len(after)), before[column].std() / np.sqrt(len(before)))
        print(f"{column}: {earlier:.4f} -> {observed:.4f} (mixture predicts {predicted:.4f}, se {se:.4f})")
        assert observed - earlier > 3 * se, f"{column} should rise with the share of defaulters"
        assert abs(observed - predicted) < 3 * se, column
    assert stats.ks_2samp(before["score"], after["score"]).pvalue < 1e-4  # the score's distribution moved


@pytest.fixture(scope="module")
def concept_gold(tmp_path_factory):
    """Only the concept drift, through the course's own gold layer (the Dask version of the SQL).

    Labels are the answer key's, observed or not, so every month after the drift counts.
    """
    import dask

    from mlsd.pipelines import dask_layers

    rows, scenarios = 120_000, ["concept_drift"]
    out = tmp_path_factory.mktemp("concept") / "landing"
    data.generate(out, rows=rows, seed=SEED, scenarios=scenarios, defects=False, progress=False)
    with dask.config.set(scheduler="synchronous"):
        gold = dask_layers.gold_frame(dask_layers.silver_frames(out, npartitions=1)).compute()
    truth = _stream(rows=rows, defects=False, with_truth=True, scenarios=scenarios)["truth"]
    gold = gold.drop(columns="serious_dlq").merge(
        truth[["application_id", "serious_dlq"]], on="application_id"
    )
    return gold.sort_values(["applied_at", "application_id"], ignore_index=True)


def test_concept_drift_turns_the_effect_of_income_around():
    assert data.COEFFICIENTS["monthly_income"] < 0
    assert data.ground_truth("2025-10")["coefficients"]["monthly_income"] > 0
    assert data.ground_truth("2025-10", scenarios=[])["coefficients"] == data.COEFFICIENTS
    rich = dict(revolving_utilization=0.3, debt_ratio=0.3, open_credit_lines=8, real_estate_loans=1,
                dependents=0, late_30_59=0, late_60_89=0, late_90=0, age=45)  # fmt: skip
    pair = pd.DataFrame([dict(rich, monthly_income=2_500.0), dict(rich, monthly_income=15_000.0)])
    before, after = data.true_probability(pair, "2025-09"), data.true_probability(pair, "2025-10")
    assert before[1] < before[0] and after[1] > after[0]  # the richer applicant was safer, now riskier


def test_a_model_trained_before_the_concept_drift_loses_pr_auc(concept_gold):
    """The champion's recipe, trained on 2024, scored on the months after it.

    Drift-free months after training (2025-01..03 and 2025-04..09) agree within three standard
    errors (bootstrap); the concept-drift months (2025-10..2026-06) score at least 0.06 lower and
    four standard errors lower. 0.06 is about half the loss at this scale (0.42 -> 0.30): a drift
    that only strengthened an effect the model already uses would raise PR-AUC instead.
    """
    from sklearn.metrics import average_precision_score

    from mlsd import training

    fit = concept_gold[concept_gold["month"] <= "2024-12"]
    model = training.tuned_pipeline(random_state=SEED).set_params(
        model__max_iter=100, model__max_leaf_nodes=15
    )
    model.fit(training.model_input(fit), fit["serious_dlq"].astype(int))
    scored = concept_gold.assign(score=model.predict_proba(training.model_input(concept_gold))[:, 1])
    rng = np.random.default_rng(SEED)

    def pr_auc(first: str, last: str) -> tuple[float, float]:
        part = scored[scored["month"].between(first, last)]
        y, s = part["serious_dlq"].to_numpy(dtype=int), part["score"].to_numpy()
        resampled = (rng.integers(0, len(y), len(y)) for _ in range(200))
        return average_precision_score(y, s), float(
            np.std([average_precision_score(y[i], s[i]) for i in resampled])
        )

    early, later, free, drift = (
        pr_auc(*months)
        for months in (
            ("2025-01", "2025-03"),
            ("2025-04", "2025-09"),
            ("2025-01", "2025-09"),
            ("2025-10", "2026-06"),
        )
    )
    print(f"PR-AUC 2025-01..03 {early[0]:.3f}, 2025-04..09 {later[0]:.3f}, drift {drift[0]:.3f}")
    assert abs(early[0] - later[0]) < 3 * np.hypot(early[1], later[1])
    assert free[0] - drift[0] > max(0.06, 4 * np.hypot(free[1], drift[1]))


# ------------------------------------------------------------------------------------------------
# bounded memory


_MEMORY_PROBE = """
import sys, threading, time
import psutil
import mlsd.data as data

rows, seed = int(sys.argv[1]), int(sys.argv[2])
list(data.iter_month_frames(rows=2_400, seed=seed))  # imports and caches are not growth
process = psutil.Process()
base = process.memory_info().rss
peak, done = [base], threading.Event()

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        time.sleep(0.002)

sampler = threading.Thread(target=sample)
sampler.start()
n = 0
for _, frames in data.iter_month_frames(rows=rows, seed=seed):
    n += sum(len(frame) for frame in frames.values())
done.set()
sampler.join()
print(n, (peak[0] - base) / 2**20)
"""


def test_streaming_keeps_memory_bounded():
    """Peak memory follows the size of a month, not of the run (measured in a fresh interpreter)."""
    import subprocess
    import sys

    def probe(rows: int) -> tuple[int, float]:
        result = subprocess.run(
            [sys.executable, "-c", _MEMORY_PROBE, str(rows), str(SEED)],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        n, growth = result.stdout.split()
        return int(n), float(growth)

    rows, growth_mb = probe(300_000)
    print(f"streamed {rows:,} rows, peak RSS growth {growth_mb:.0f} MB")
    assert rows > 2_500_000
    # Holding all 2.7 million rows as pandas frames grows RSS by about 330 MB; a month is a 30th.
    assert growth_mb < 120
