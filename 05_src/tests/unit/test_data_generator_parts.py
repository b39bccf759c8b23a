"""Small pure pieces of the data generator: hashing, ids, categories, scenarios, the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlsd.data as data
from mlsd.data import _generate, _rng, _simulate
from mlsd.data._defects import LEADING_SPACE
from mlsd.errors import ConfigError, MLSDError


def test_hash_uniforms_are_deterministic_open_and_independent():
    idx = np.arange(200_000)
    u = _rng.hash_uniform(3, 1, idx)
    assert np.array_equal(u, _rng.hash_uniform(3, 1, idx))
    assert ((u > 0) & (u < 1)).all()
    assert abs(u.mean() - 0.5) < 0.005
    assert abs(np.corrcoef(u, _rng.hash_uniform(3, 2, idx))[0, 1]) < 0.01  # another stream
    assert abs(np.corrcoef(u, _rng.hash_uniform(4, 1, idx))[0, 1]) < 0.01  # another seed
    z = _rng.hash_normal(3, 5, idx)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01


def test_month_streams_are_reproducible_and_distinct():
    a = _rng.month_rng(1, 24_300, "bureau", 0).random(5)
    assert np.array_equal(a, _rng.month_rng(1, 24_300, "bureau", 0).random(5))
    assert not np.array_equal(a, _rng.month_rng(1, 24_300, "bureau", 1).random(5))
    assert not np.array_equal(a, _rng.month_rng(1, 24_301, "bureau", 0).random(5))


def test_ids_are_prefixed_and_zero_padded():
    values = np.array([0, 7, 12345, 99_999_999])
    ids = _generate._ids("C", 8, values).to_pylist()
    assert ids == [f"C{v:08d}" for v in values]
    big = np.random.default_rng(0).integers(0, 10**10, 1000)
    assert _generate._ids("A", 10, big).to_pylist() == [f"A{v:010d}" for v in big]


def test_largest_remainder_sums_exactly():
    parts = _simulate._largest_remainder(1001, np.array([1.0, 1.0, 1.0]))
    assert parts.sum() == 1001 and parts.max() - parts.min() <= 1


def test_plan_counts_add_up():
    plan = _simulate.make_plan(50_000, 1, "2024-01", 30, data.resolve_scenarios())
    assert plan.n_apps.sum() == 50_000 and len(plan.months) == 30
    assert plan.n_ret[0] == 0 and plan.n_apps[-1] > plan.n_apps[0]
    assert plan.as_of == "2026-07-01"
    # candidates are the applicants, except under the label shift, whose applicants come from a
    # pool about twice their number (a would-be repayer applies with probability 1/2)
    shifted = np.array([month >= "2025-07" for month in plan.months])
    assert (plan.selective == shifted).all()
    candidates = plan.n_new + plan.n_ret
    assert (candidates[~shifted] == plan.n_apps[~shifted]).all()
    assert (candidates[shifted] >= 2 * plan.n_apps[shifted]).all()
    assert (candidates[shifted] <= 2.2 * plan.n_apps[shifted] + 40).all()
    off = _simulate.make_plan(50_000, 1, "2024-01", 30, data.resolve_scenarios({"label_shift": False}))
    assert not off.selective.any() and (off.n_new + off.n_ret == off.n_apps).all()
    assert (off.cust_offset[:19] == plan.cust_offset[:19]).all()  # nothing changes before 2025-07


def test_draw_by_label_keeps_each_class_and_doubles_the_odds():
    rng = np.random.default_rng(5)
    label = (rng.random(200_000) < 0.08).astype(np.int8)
    x = rng.standard_normal(len(label)) + label  # a feature that differs by class
    taken = _simulate.draw_by_label(np.random.default_rng(6), label, 80_000, odds_ratio=2.0)
    assert len(taken) == 80_000 and (np.diff(taken) > 0).all()
    odds = label.mean() / (1 - label.mean())
    assert label[taken].mean() / (1 - label[taken].mean()) == pytest.approx(2 * odds, rel=0.05)
    for value in (0, 1):  # within a class, a random subset: the same distribution of x
        assert x[taken][label[taken] == value].mean() == pytest.approx(x[label == value].mean(), abs=0.03)
    assert len(_simulate.draw_by_label(np.random.default_rng(6), label[:100], 1_000)) < 100  # pool too small


def test_population_skips_candidates_left_out():
    plan = _simulate.make_plan(6_000, 1, "2024-01", 30, data.resolve_scenarios())
    population = _simulate.Population(plan)
    m = plan.months.index("2025-07")
    first = plan.cust_offset[m]
    candidates = first + np.arange(plan.n_new[m])
    kept = np.arange(len(candidates)) % 2 == 0
    population.record(m, candidates, kept)
    assert (population.exists(candidates) == kept).all()
    assert population.exists(np.array([0, first - 1])).all()  # earlier months have no holes
    drawn = _simulate._draw_returning(np.random.default_rng(0), int(plan.cust_offset[m + 1]), 500, population)
    assert len(np.unique(drawn)) == 500 and population.exists(drawn).all()


@pytest.mark.parametrize("column", sorted(data.CATEGORY_VALUES))
def test_every_spelling_variant_maps_back(column):
    mapping = data.CATEGORY_CANONICAL[column]
    assert set(mapping.values()) == set(data.CATEGORY_VALUES[column])
    for value in data.CATEGORY_VALUES[column]:
        assert mapping[value] == value
        variants = data.spelling_variants(value)
        assert len(variants) >= 4 and value not in variants
        assert variants[LEADING_SPACE] == " " + value  # the near-duplicate change relies on it
        for variant in variants:
            assert mapping[variant.strip().lower()] == value


def test_scenarios_resolve_from_names_mappings_and_months():
    default = data.resolve_scenarios()
    assert all(record["enabled"] for record in default.values())
    assert default["covariate_shift"]["start_month"] == "2025-04"
    assert list(default) == ["covariate_shift", "label_shift", "concept_drift"]  # the book's taxonomy
    only = data.resolve_scenarios(["concept_drift"])
    assert [name for name, r in only.items() if r["enabled"]] == ["concept_drift"]
    moved = data.resolve_scenarios({"label_shift": "2025-01", "concept_drift": False})
    assert moved["label_shift"]["start_month"] == "2025-01" and not moved["concept_drift"]["enabled"]
    assert moved["covariate_shift"]["enabled"]
    with pytest.raises(ConfigError, match="Unknown drift scenario"):
        data.resolve_scenarios(["data_drift"])
    with pytest.raises(ConfigError, match="called label_shift"):
        data.resolve_scenarios(["prior_shift"])
    with pytest.raises(ConfigError, match="YYYY-MM"):
        data.resolve_scenarios({"label_shift": "July"})


def test_sizes_resolve_and_reject_nonsense():
    assert _generate.resolve_size("tiny", None) == ("tiny", 3_000)
    assert _generate.resolve_size("small", 5_000) == ("rows=5000", 5_000)
    assert _generate.resolve_size("50000", None) == ("rows=50000", 50_000)
    with pytest.raises(ConfigError, match="not a scale"):
        _generate.resolve_size("huge", None)
    with pytest.raises(ConfigError, match="too few"):
        _generate.resolve_size(None, 10)


def test_ground_truth_follows_the_scenarios_by_month():
    base = data.ground_truth()
    assert base["intercept"] == data.INTERCEPT and base["link"] == "logistic"
    assert data.ground_truth("2025-06")["intercept"] == data.INTERCEPT
    july = data.ground_truth("2025-07")  # label shift: Bayes' rule moves the intercept by ln(odds ratio)
    assert july["intercept"] == pytest.approx(data.INTERCEPT + np.log(2.0))
    assert july["coefficients"] == data.COEFFICIENTS
    october = data.ground_truth("2025-10")  # concept drift: income's effect changes sign
    assert data.COEFFICIENTS["monthly_income"] < 0 < october["coefficients"]["monthly_income"]
    assert {k: v for k, v in october["coefficients"].items() if k != "monthly_income"} == {
        k: v for k, v in data.COEFFICIENTS.items() if k != "monthly_income"
    }
    assert october["active_scenarios"] == ["covariate_shift", "label_shift", "concept_drift"]
    assert data.ground_truth("2026-06", scenarios=[])["intercept"] == data.INTERCEPT
    assert set(data.TRANSFORMS) == set(data.COEFFICIENTS)


def _applicant(**changes) -> dict:
    row = dict(
        revolving_utilization=0.3,
        debt_ratio=0.35,
        monthly_income=5400.0,
        open_credit_lines=8,
        real_estate_loans=1,
        dependents=1,
        late_30_59=0,
        late_60_89=0,
        late_90=0,
        age=45,
    )
    row.update(changes)
    return row


@pytest.mark.parametrize(
    ("column", "low", "high"),
    [
        ("revolving_utilization", 0.1, 0.9),
        ("late_30_59", 0, 3),
        ("late_60_89", 0, 2),
        ("late_90", 0, 2),
        ("debt_ratio", 0.1, 1.5),
        ("age", 70, 30),  # age is protective: the younger applicant is riskier
        ("monthly_income", 12_000.0, 2_000.0),
    ],
)
def test_true_probability_moves_in_the_documented_direction(column, low, high):
    p = data.true_probability(pd.DataFrame([_applicant(**{column: low}), _applicant(**{column: high})]))
    assert p[1] > p[0]


def test_noise_features_do_not_move_the_truth():
    p = data.true_probability(
        pd.DataFrame([_applicant(), _applicant(open_credit_lines=30, real_estate_loans=6)])
    )
    assert p[0] == p[1]


def test_sentinel_codes_and_silver_nulls_give_the_same_truth():
    coded = _applicant(late_30_59=98, late_60_89=98, late_90=98)
    nulled = _applicant(late_30_59=None, late_60_89=None, late_90=None)
    p = data.true_probability(pd.DataFrame([coded, nulled, _applicant()]))
    assert p[0] == pytest.approx(p[1]) and p[0] > p[2]


def test_true_probability_matches_the_formula_and_takes_months_per_row():
    frame = pd.DataFrame([_applicant(), _applicant(revolving_utilization=1.2, late_90=1)])
    features = data.truth_features(frame)
    eta = data.INTERCEPT + features.mul(pd.Series(data.COEFFICIENTS)).sum(axis=1)
    np.testing.assert_allclose(data.true_probability(frame), 1 / (1 + np.exp(-eta)))
    per_row = data.true_probability(frame, month=["2025-01", "2025-11"])
    assert per_row[0] == pytest.approx(data.true_probability(frame.iloc[[0]], month="2025-01")[0])
    assert per_row[1] == pytest.approx(data.true_probability(frame.iloc[[1]], month="2025-11")[0])
    with pytest.raises(KeyError, match="bureau columns"):
        data.true_probability(frame.drop(columns="age"))


def test_landing_dir_defaults_to_the_data_dir(isolated_env):
    path = data.landing_dir(scale="tiny", seed=3)
    assert path == isolated_env / "data" / "landing" / "tiny_seed3"
    assert data.landing_dir(rows=5000).name == "rows5000_seed42"
    assert not path.exists()


def test_read_manifest_explains_a_missing_run(tmp_path):
    with pytest.raises(MLSDError, match="generate the data"):
        data.read_manifest(tmp_path)
