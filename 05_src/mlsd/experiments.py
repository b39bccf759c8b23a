"""Testing models in production, and the feedback loop that a lender's own decisions create.

The book's chapter 9 ("Continual Learning and Test in Production") replaces a champion only
after a challenger has been tested on live traffic. This module holds the pure parts of those
tests; the notebook of session 6 (``06_explain_deploy_monitor.ipynb``) runs them on the
prediction log.

- **Shadow deployment**: the challenger scores the same applications as the champion, its
  scores are logged, its decisions are never acted on. :func:`shadow_comparison` compares the
  two logs application by application.
- **A/B test**: :func:`ab_sample_size` says how many applications each arm needs to detect a
  difference between two proportions, :func:`two_proportion_ztest` reads the result, and
  :func:`months_to_decide` adds the wait for delayed labels.
- **Canary release**: :func:`assign_arm` routes a small, fixed share of applicants to the
  challenger, by a hash of their id, so an applicant always meets the same model.
- **Degenerate feedback loop**: a lender learns the outcome of approved loans only.
  :func:`lending_policy` approves below a threshold, plus a small random **exploration** budget
  above it, and records each approval's **propensity**; :func:`ipw_weights` turns propensities
  into inverse-propensity weights; :func:`feedback_loop_experiment` retrains on what each policy
  lets the lender observe and scores every model on the whole population, whose outcomes the
  course's generator knows.

Examples
--------
>>> ab_sample_size(0.10, 0.15)
686
>>> assign_arm(["A1", "A2"], share=0.5, salt="demo").tolist() == assign_arm(["A1", "A2"], share=0.5, salt="demo").tolist()
True
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import clone
from sklearn.metrics import average_precision_score, roc_auc_score

from mlsd._validation import check_columns

__all__ = [
    "FeedbackLoopResult",
    "ab_sample_size",
    "approval_propensity",
    "assign_arm",
    "feedback_loop_experiment",
    "ipw_mean",
    "ipw_weights",
    "lending_policy",
    "months_to_decide",
    "shadow_comparison",
    "two_proportion_ztest",
]


# -- A/B tests ----------------------------------------------------------------------------


def ab_sample_size(p_control: float, p_treatment: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Applications per arm to detect ``p_control`` vs ``p_treatment`` with a two-sided test.

    The normal-approximation formula for comparing two proportions with equal arms (Fleiss,
    Levin and Paik, *Statistical Methods for Rates and Proportions*, without the continuity
    correction)::

        n = (z_{1-alpha/2} * sqrt(2 * pbar * (1 - pbar)) + z_{power} * sqrt(p1 (1 - p1) + p2 (1 - p2)))^2
            / (p1 - p2)^2,        pbar = (p1 + p2) / 2

    rounded up. The first term is the spread of the difference when the arms are equal (the
    null), the second its spread at the difference we hope to see.

    Parameters
    ----------
    p_control, p_treatment : float
        The rates in each arm (e.g. the default rate of approved loans), strictly between 0 and 1.
    alpha : float
        False-positive rate of the test (two-sided).
    power : float
        Chance of detecting the difference when it is real.

    Returns
    -------
    int
        Applications in *each* arm.

    Examples
    --------
    >>> ab_sample_size(0.10, 0.15)   # the worked example: 685.6, rounded up
    686
    >>> ab_sample_size(0.10, 0.15, power=0.9) > ab_sample_size(0.10, 0.15)
    True
    """
    for name, p in (("p_control", p_control), ("p_treatment", p_treatment)):
        if not 0 < p < 1:
            raise ValueError(f"{name} must be strictly between 0 and 1, got {p}.")
    if p_control == p_treatment:
        raise ValueError("p_control equals p_treatment: no sample size detects a difference of zero.")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power must be strictly between 0 and 1, got {alpha} and {power}.")
    z_alpha, z_power = norm.ppf(1 - alpha / 2), norm.ppf(power)
    pbar = (p_control + p_treatment) / 2
    spread_null = math.sqrt(2 * pbar * (1 - pbar))
    spread_alt = math.sqrt(p_control * (1 - p_control) + p_treatment * (1 - p_treatment))
    n = (z_alpha * spread_null + z_power * spread_alt) ** 2 / (p_control - p_treatment) ** 2
    return math.ceil(n - 1e-9)  # an exact integer stays itself despite rounding error


def two_proportion_ztest(successes_a: int, n_a: int, successes_b: int, n_b: int) -> tuple[float, float]:
    """The pooled two-sided z-test of two proportions: ``(z, p_value)``, ``z > 0`` when B's rate is higher.

    Examples
    --------
    >>> z, p = two_proportion_ztest(100, 1000, 150, 1000)
    >>> round(z, 2), round(p, 4)
    (3.38, 0.0007)
    """
    if min(n_a, n_b) <= 0:
        raise ValueError("Each arm needs at least one observation.")
    rate_a, rate_b = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 0.0, 1.0
    z = (rate_b - rate_a) / se
    return float(z), float(2 * norm.sf(abs(z)))


def months_to_decide(
    n_per_arm: int, applications_per_month: float, *, arms: int = 2, label_delay_months: float = 0.0
) -> float:
    """Months from the start of a test to its answer: enrolment of every arm, then the wait for labels.

    Examples
    --------
    >>> months_to_decide(686, 500, label_delay_months=6)   # 1,372 applications at 500 a month, then 6 months
    8.744
    """
    if applications_per_month <= 0:
        raise ValueError("applications_per_month must be positive.")
    return round(arms * n_per_arm / applications_per_month + label_delay_months, 3)


# -- canary and shadow ----------------------------------------------------------------------


def assign_arm(
    ids: Sequence[Any], share: float, *, salt: str = "canary", arm: str = "challenger"
) -> pd.Series:
    """Route a fixed share of ids to ``arm`` (the rest to ``"champion"``) by a salted hash of the id.

    The same id always lands in the same arm (an applicant who asks twice meets the same model),
    and a new ``salt`` draws a new, independent split. Widening ``share`` keeps everyone already
    in the arm there: a canary grows from 5% to 20% without moving anyone back.

    Examples
    --------
    >>> arms = assign_arm([f"A{i}" for i in range(10_000)], share=0.1)
    >>> round(float((arms == "challenger").mean()), 2)
    0.1
    """
    if not 0 <= share <= 1:
        raise ValueError(f"share must be between 0 and 1, got {share}.")
    position = np.array(
        [int.from_bytes(hashlib.sha256(f"{salt}:{i}".encode()).digest()[:8], "big") / 2**64 for i in ids]
    )
    return pd.Series(
        np.where(position < share, arm, "champion"),
        index=ids.index if isinstance(ids, pd.Series) else None,
        name="arm",
    )


def shadow_comparison(
    champion: pd.DataFrame,
    shadow: pd.DataFrame,
    *,
    by: str | None = None,
    id_col: str = "application_id",
) -> pd.DataFrame:
    """Compare the champion's and a shadow model's logged predictions on the same applications.

    Parameters
    ----------
    champion, shadow : pandas.DataFrame
        Rows of the prediction log: ``application_id``, ``score`` and ``decision`` (1 = decline).
        Applications scored by only one of the two are left out (and counted in ``attrs``).
    by : str, optional
        A column of ``champion`` to group by (e.g. ``month``); one overall row otherwise.

    Returns
    -------
    pandas.DataFrame
        Per group: ``n``, ``champion_mean_score``, ``shadow_mean_score``, ``rank_correlation``
        (Spearman), ``champion_decline_rate``, ``shadow_decline_rate``, ``agreement`` (same
        decision), ``only_champion_declines`` and ``only_shadow_declines`` (shares of ``n``).

    Examples
    --------
    >>> a = pd.DataFrame({"application_id": ["x", "y", "z"], "score": [0.1, 0.5, 0.9], "decision": [0, 1, 1]})
    >>> b = a.assign(score=[0.2, 0.1, 0.8], decision=[1, 0, 1])
    >>> shadow_comparison(a, b)[["n", "agreement", "only_champion_declines", "only_shadow_declines"]].round(3)
       n  agreement  only_champion_declines  only_shadow_declines
    0  3      0.333                   0.333                 0.333
    """
    columns = [id_col, "score", "decision"]
    check_columns(champion, columns + ([by] if by else []), what="The champion's log")
    check_columns(shadow, columns, what="The shadow's log")
    pairs = champion[[*columns, *([by] if by else [])]].merge(
        shadow[columns], on=id_col, suffixes=("_champion", "_shadow"), validate="one_to_one"
    )

    def summary(part: pd.DataFrame) -> pd.Series:
        a, b = part["decision_champion"].astype(int), part["decision_shadow"].astype(int)
        return pd.Series(
            {
                "n": len(part),
                "champion_mean_score": part["score_champion"].mean(),
                "shadow_mean_score": part["score_shadow"].mean(),
                "rank_correlation": part["score_champion"].corr(part["score_shadow"], method="spearman"),
                "champion_decline_rate": a.mean(),
                "shadow_decline_rate": b.mean(),
                "agreement": (a == b).mean(),
                "only_champion_declines": ((a == 1) & (b == 0)).mean(),
                "only_shadow_declines": ((a == 0) & (b == 1)).mean(),
            }
        )

    if by:
        table = pd.DataFrame({key: summary(part) for key, part in pairs.groupby(by)}).T.rename_axis(by)
    else:
        table = summary(pairs).to_frame().T
    table["n"] = table["n"].astype(int)
    table.attrs["unmatched"] = {"champion": len(champion) - len(pairs), "shadow": len(shadow) - len(pairs)}
    return table


# -- the feedback loop --------------------------------------------------------------------------


def approval_propensity(scores, threshold: float, exploration: float = 0.0) -> np.ndarray:
    """P(approved) of each applicant under the policy: 1 below ``threshold``, ``exploration`` at or above.

    Examples
    --------
    >>> approval_propensity([0.05, 0.3], threshold=0.2, exploration=0.1).tolist()
    [1.0, 0.1]
    """
    if not 0 <= exploration <= 1:
        raise ValueError(f"exploration must be between 0 and 1, got {exploration}.")
    return np.where(np.asarray(scores, dtype=float) < threshold, 1.0, float(exploration))


def ipw_weights(propensity) -> np.ndarray:
    """Inverse-propensity weights ``1 / propensity`` for the observed (approved) rows.

    An approved applicant who had a 5% chance of approval stands for the twenty like them who
    were declined, so the weighted observed rows estimate the whole population (Horvitz-Thompson).
    A row that could not have been observed (propensity 0) has no weight: the estimate cannot
    cover it, and this raises.

    Examples
    --------
    >>> ipw_weights([1.0, 0.05]).tolist()
    [1.0, 20.0]
    """
    p = np.asarray(propensity, dtype=float)
    if (p <= 0).any() or (p > 1).any() or np.isnan(p).any():
        raise ValueError(
            "Propensities must be in (0, 1]: a row observed with probability 0 has no inverse weight. "
            "Give the policy an exploration budget above 0."
        )
    return 1.0 / p


def ipw_mean(values, propensity) -> float:
    """The population mean of ``values`` estimated from observed rows and their propensities.

    Examples
    --------
    >>> ipw_mean([0, 1], [1.0, 0.5])   # the second row stands for two
    0.6667
    """
    weights = ipw_weights(propensity)
    return round(float(np.sum(weights * np.asarray(values, dtype=float)) / np.sum(weights)), 4)


def lending_policy(
    scores, threshold: float, *, exploration: float = 0.0, random_state: int | None = None
) -> pd.DataFrame:
    """Decide on each applicant: approve below ``threshold``; above it, approve a random ``exploration`` share.

    Returns
    -------
    pandas.DataFrame
        ``score``, ``propensity`` (P(approved) under the policy), ``approved`` and ``explored``
        (approved although the model would decline), one row per applicant in input order.

    Examples
    --------
    >>> policy = lending_policy([0.1, 0.9, 0.95], threshold=0.5, exploration=0.0, random_state=0)
    >>> policy["approved"].tolist(), policy["propensity"].tolist()
    ([True, False, False], [1.0, 0.0, 0.0])
    """
    scores = np.asarray(scores, dtype=float)
    propensity = approval_propensity(scores, threshold, exploration)
    below = scores < threshold
    explored = ~below & (np.random.default_rng(random_state).random(len(scores)) < exploration)
    return pd.DataFrame(
        {"score": scores, "propensity": propensity, "approved": below | explored, "explored": explored}
    )


@dataclass
class FeedbackLoopResult:
    """What :func:`feedback_loop_experiment` measured.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per training set; see :func:`feedback_loop_experiment`.
    policy : pandas.DataFrame
        The decisions on the live applicants (:func:`lending_policy`), with their true outcome ``y``.
    models : dict
        The fitted models, by training set.
    """

    table: pd.DataFrame
    policy: pd.DataFrame
    models: dict[str, Any] = field(repr=False)


def feedback_loop_experiment(
    model,
    X_history: pd.DataFrame,
    y_history,
    X_live: pd.DataFrame,
    y_live,
    X_eval: pd.DataFrame,
    y_eval,
    *,
    threshold: float,
    exploration: float = 0.05,
    random_state: int | None = 0,
    cost_fp: float = 1.0,
    cost_fn: float = 5.0,
    truth_eval=None,
) -> FeedbackLoopResult:
    """Retrain on what a lender observes, and score each retrained model on the whole population.

    1. Fit ``model`` on ``X_history`` (every outcome known: the lender's first model).
    2. It scores the live applicants; :func:`lending_policy` approves those below ``threshold``
       and, with probability ``exploration``, each of the others. Only approved loans reveal their
       outcome.
    3. Fit a fresh clone of ``model`` on the live window four ways: **all labels** (what no lender
       sees: the reference), **approved only** (no exploration: the degenerate loop),
       **approved + exploration** (unweighted) and **approved + exploration, IPW** (each row
       weighted by :func:`ipw_weights`).
    4. Score each on ``X_eval``, every applicant of later months with their true outcome.

    Parameters
    ----------
    model : scikit-learn estimator or pipeline
        Cloned for each fit; a pipeline's weights go to its last step (``<step>__sample_weight``).
    X_history, y_history, X_live, y_live, X_eval, y_eval
        Three periods in time order, with every outcome (the generator knows them).
    threshold : float
        Decline at or above this score (the policy's, kept for the retrained models' decisions).
    exploration : float
        Share of would-be declined applicants approved at random.
    random_state : int, optional
        Seeds the exploration draws.
    cost_fp, cost_fn : float
        Costs of declining a repayer and of approving a defaulter, for ``cost_per_application``.
    truth_eval : array-like, optional
        True default probabilities of the ``X_eval`` rows; adds ``rank_corr_truth``.

    Returns
    -------
    FeedbackLoopResult
        ``table`` has one row per training set: ``train_rows``, ``train_default_rate`` (weighted
        for IPW: the estimate of the live population's default rate), ``roc_auc``, ``pr_auc``,
        ``mean_score`` and ``default_rate`` (on the population), ``brier``,
        ``decline_rate`` and ``cost_per_application`` at ``threshold``, and ``rank_corr_truth``.
    """
    y_history, y_live, y_eval = (np.asarray(y, dtype=int) for y in (y_history, y_live, y_eval))
    first = clone(model).fit(X_history, y_history)
    policy = lending_policy(
        first.predict_proba(X_live)[:, 1], threshold, exploration=exploration, random_state=random_state
    ).assign(y=y_live)
    if not policy["approved"].any():
        raise ValueError("The policy approved nobody: raise the threshold.")
    below = policy["score"].to_numpy() < threshold
    approved = policy["approved"].to_numpy()
    weights = np.where(approved, 1.0 / np.where(approved, policy["propensity"], 1.0), 0.0)
    training_sets: dict[str, tuple[np.ndarray, np.ndarray | None]] = {
        "all labels (no lender sees these)": (np.ones(len(y_live), dtype=bool), None),
        "approved only": (below, None),
    }
    if exploration > 0:
        training_sets["approved + exploration"] = (approved, None)
        training_sets["approved + exploration, IPW"] = (approved, weights)
    weight_param = f"{model.steps[-1][0]}__sample_weight" if hasattr(model, "steps") else "sample_weight"
    rows, models = {}, {}
    for name, (mask, w) in training_sets.items():
        fit_params = {} if w is None else {weight_param: w[mask]}
        fitted = clone(model).fit(X_live[mask], y_live[mask], **fit_params)
        scores = fitted.predict_proba(X_eval)[:, 1]
        declined = scores >= threshold
        row = {
            "train_rows": int(mask.sum()),
            "train_default_rate": float(np.average(y_live[mask], weights=None if w is None else w[mask])),
            "roc_auc": roc_auc_score(y_eval, scores),
            "pr_auc": average_precision_score(y_eval, scores),
            "mean_score": float(scores.mean()),
            "default_rate": float(y_eval.mean()),
            "brier": float(np.mean((scores - y_eval) ** 2)),
            "decline_rate": float(declined.mean()),
            "cost_per_application": float(
                (cost_fp * (declined & (y_eval == 0)) + cost_fn * (~declined & (y_eval == 1))).mean()
            ),
        }
        if truth_eval is not None:
            row["rank_corr_truth"] = float(
                pd.Series(scores).corr(pd.Series(np.asarray(truth_eval)), method="spearman")
            )
        rows[name], models[name] = row, fitted
    table = pd.DataFrame(rows).T.rename_axis("trained on")
    table["train_rows"] = table["train_rows"].astype(int)
    return FeedbackLoopResult(table, policy, models)
