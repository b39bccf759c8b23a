"""Tests in production and the feedback loop: sample sizes, z-tests, canary arms, shadow logs, IPW."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from mlsd import experiments


def test_sample_size_matches_the_worked_normal_approximation():
    # p1 = 0.10, p2 = 0.15, alpha = 0.05 two-sided, power 0.8, worked by hand:
    # pbar = 0.125; sqrt(2 * 0.125 * 0.875) = 0.46771; sqrt(0.09 + 0.1275) = 0.46637
    # (1.95996 * 0.46771 + 0.84162 * 0.46637)^2 / 0.05^2 = 685.6 -> 686 per arm
    assert experiments.ab_sample_size(0.10, 0.15) == 686
    assert experiments.ab_sample_size(0.15, 0.10) == 686  # symmetric in the two arms


def test_sample_size_grows_with_power_and_shrinks_with_the_effect():
    base = experiments.ab_sample_size(0.07, 0.056)
    assert experiments.ab_sample_size(0.07, 0.056, power=0.9) > base
    assert experiments.ab_sample_size(0.07, 0.056, alpha=0.01) > base
    assert experiments.ab_sample_size(0.07, 0.035) < base


def test_sample_size_gives_the_power_it_promises_in_simulated_ab_tests():
    rng = np.random.default_rng(0)
    p_a, p_b = 0.10, 0.15
    n = experiments.ab_sample_size(p_a, p_b)
    a, b = rng.binomial(n, p_a, 4_000), rng.binomial(n, p_b, 4_000)
    pooled = (a + b) / (2 * n)
    z = (b - a) / n / np.sqrt(pooled * (1 - pooled) * 2 / n)
    power = np.mean(np.abs(z) > norm.ppf(0.975))
    assert 0.77 < power < 0.83, power


@pytest.mark.parametrize("bad", [dict(p_control=0.0), dict(p_treatment=1.0), dict(p_treatment=0.1)])
def test_sample_size_refuses_impossible_inputs(bad):
    kwargs = {"p_control": 0.1, "p_treatment": 0.15} | bad
    with pytest.raises(ValueError):
        experiments.ab_sample_size(**kwargs)


def test_z_test_agrees_with_a_hand_computation():
    z, p = experiments.two_proportion_ztest(100, 1000, 150, 1000)
    pooled = 250 / 2000
    expected = 0.05 / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert z == pytest.approx(expected)
    assert p == pytest.approx(2 * norm.sf(expected))
    assert experiments.two_proportion_ztest(150, 1000, 100, 1000)[0] == pytest.approx(-expected)


def test_months_to_decide_adds_the_label_delay():
    assert experiments.months_to_decide(500, 250, label_delay_months=6) == pytest.approx(10.0)
    assert experiments.months_to_decide(500, 250) == pytest.approx(4.0)


def test_canary_arms_are_sticky_the_right_size_and_grow_without_moving_anyone_back():
    ids = pd.Series([f"A{i:06d}" for i in range(20_000)])
    five = experiments.assign_arm(ids, share=0.05)
    twenty = experiments.assign_arm(ids, share=0.20)
    assert five.equals(experiments.assign_arm(ids, share=0.05))
    assert abs((five == "challenger").mean() - 0.05) < 0.01
    assert abs((twenty == "challenger").mean() - 0.20) < 0.01
    assert (twenty[five == "challenger"] == "challenger").all()
    other = experiments.assign_arm(ids, share=0.05, salt="another test")
    assert ((other == "challenger") & (five == "challenger")).mean() < 0.01  # independent: about 0.25%


def test_shadow_comparison_counts_disagreements_by_group():
    champion = pd.DataFrame({
        "application_id": ["a", "b", "c", "d"],
        "score": [0.1, 0.2, 0.8, 0.9],
        "decision": [0, 0, 1, 1],
        "month": ["m1", "m1", "m2", "m2"],
    })  # fmt: skip
    shadow = pd.DataFrame({
        "application_id": ["d", "c", "b", "a", "e"],  # another order, and one the champion never scored
        "score": [0.95, 0.1, 0.7, 0.05, 0.5],
        "decision": [1, 0, 1, 0, 1],
    })  # fmt: skip
    table = experiments.shadow_comparison(champion, shadow, by="month")
    assert table.loc["m1", "only_shadow_declines"] == 0.5
    assert table.loc["m2", "only_champion_declines"] == 0.5
    assert table.loc["m1", "agreement"] == 0.5
    assert table["n"].tolist() == [2, 2]
    assert table.attrs["unmatched"] == {"champion": 0, "shadow": 1}
    overall = experiments.shadow_comparison(champion, shadow)
    assert overall.loc[0, "shadow_mean_score"] == pytest.approx((0.95 + 0.1 + 0.7 + 0.05) / 4)


def test_ipw_weights_invert_propensities_and_refuse_zero():
    assert experiments.ipw_weights([1.0, 0.5, 0.1]).tolist() == pytest.approx([1.0, 2.0, 10.0])
    with pytest.raises(ValueError, match="exploration"):
        experiments.ipw_weights([1.0, 0.0])


def test_policy_approves_below_the_threshold_and_explores_the_budget_above_it():
    scores = np.random.default_rng(1).random(20_000)
    policy = experiments.lending_policy(scores, threshold=0.8, exploration=0.1, random_state=3)
    below = scores < 0.8
    assert policy.loc[below, "approved"].all() and not policy.loc[below, "explored"].any()
    assert abs(policy.loc[~below, "approved"].mean() - 0.1) < 0.02
    assert (policy.loc[~below, "propensity"] == 0.1).all() and (policy.loc[below, "propensity"] == 1).all()
    again = experiments.lending_policy(scores, threshold=0.8, exploration=0.1, random_state=3)
    assert again.equals(policy)


def test_ipw_mean_recovers_the_population_rate_that_the_approved_understate():
    rng = np.random.default_rng(5)
    risk = rng.beta(1, 12, 50_000)
    outcome = rng.random(len(risk)) < risk
    policy = experiments.lending_policy(risk, threshold=0.15, exploration=0.2, random_state=6)
    seen = policy["approved"].to_numpy()
    naive = outcome[seen].mean()
    corrected = experiments.ipw_mean(outcome[seen], policy.loc[seen, "propensity"])
    assert naive < outcome.mean() - 0.01
    assert abs(corrected - outcome.mean()) < 0.005
