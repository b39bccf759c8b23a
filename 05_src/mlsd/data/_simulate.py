"""Clean data, month by month and chunk by chunk: customers, applications, bureau, labels, loans.

"Clean" means before any defect is injected (see :mod:`mlsd.data._defects`). Every array here is
numpy; strings are kept as integer ordinals (ids) or codes (categories) until the writer formats
them, and a month is made in chunks of at most :data:`CHUNK_APPLICATIONS` applications, which keeps
a 20-million-application run within a few hundred MB.

How a month is made, and why:

1. New customers get consecutive ordinals; their permanent attributes (signup time, birth date,
   region, latent risk and income, partner_app acquisition) are hashes of ``(seed, ordinal)``, so a
   customer who returns months later is recomputed rather than remembered.
2. Returning customers are drawn without replacement from everyone who signed up earlier; nobody
   applies twice in a month, which keeps the point-in-time snapshot of each application unique.
3. Each application gets a bureau snapshot pulled shortly before it; its features come from the
   customer's latent risk, age and income with GMSC-like marginals. The label is drawn from the
   ground truth (:mod:`mlsd.data._truth`) applied to that snapshot.
4. Under the label shift, steps 1-3 make a larger pool of candidates and the month's applicants are
   drawn from it by their label (:func:`draw_by_label`), so P(x | y) stays what it was and P(y)
   rises. Candidate customers who are not drawn never existed: their ordinals are holes, which
   :class:`Population` remembers (one bit each) so that nobody returns who never came.
5. Some applications also get an earlier snapshot and some a later one in the same month (the later
   one reflects the outcome a little: using it leaks the label).
6. Repayments cover the :data:`PERFORMANCE_WINDOW` monthly instalments of the performance window. A
   default (``serious_dlq = 1``: 90 or more days past due within the window) first misses instalment
   1, 2 or 3 and is observed when it reaches 90 days past due, three instalments later; a loan that
   repays is observed when the window closes, at its last instalment. Both land in later months and
   are routed by the writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlsd.data._rng import hash_normal, hash_uniform, month_rng
from mlsd.data._scenarios import (
    COVARIATE_SHIFT_PARTNER_SHARE,
    active,
    month_number,
    month_string,
)
from mlsd.data._schema import CATEGORY_VALUES, CATEGORY_WEIGHTS
from mlsd.data._truth import LABEL_SHIFT_ODDS_RATIO, true_probability

DAY = 86_400
HOUR = 3_600
DEFAULT_MONTHS = 30
# The performance window: serious_dlq = 1 when a loan is 90 or more days past due within its first
# PERFORMANCE_WINDOW monthly instalments. Repayments cover exactly the window.
PERFORMANCE_WINDOW = 6
REPAYMENT_HORIZON = PERFORMANCE_WINDOW
# A default first misses instalment 1, 2 or 3 (with these shares) and is 90 days past due at the
# due date of the third instalment after it, still inside the window.
FIRST_MISSED_SHARES = {1: 0.5, 2: 0.3, 3: 0.2}
DAYS_PAST_DUE_DEFAULT = 90
# The lender records an outcome 0-2 days after the event (90 days past due, or the window's end), so
# a cohort's labels are complete seven months after the start of its month.
REPORTING_LAG_DAYS = (0, 2)
RETURNING_SHARE = 0.25
# A month is generated in chunks of at most this many applications, so memory does not grow with
# the size of a month. Part of the data's definition: changing it changes the bytes.
CHUNK_APPLICATIONS = 200_000
PRE_SNAPSHOT_SHARE = 0.10  # applications that also have an earlier snapshot in the month
POST_SNAPSHOT_SHARE = 0.15  # ... and a later one (it leaks the label a little)
# Under the label shift a would-be repayer applies with probability 1 / LABEL_SHIFT_ODDS_RATIO, so
# the pool of candidates must hold about LABEL_SHIFT_ODDS_RATIO times the month's applications.
_POOL_FACTOR = 1.05 * LABEL_SHIFT_ODDS_RATIO
_POOL_EXTRA = 16
TERMS = np.array([12, 24, 36, 48, 60], dtype=np.int16)
# median loan amount by purpose (currency units)
_PURPOSE_MEDIAN = {
    "debt_consolidation": 12000, "credit_card": 7000, "home_improvement": 15000, "other": 5000, "car": 14000,
    "medical": 4000, "small_business": 20000, "education": 8000, "wedding": 9000, "moving": 4000, "vacation": 3000,
}  # fmt: skip
PURPOSE_MEDIAN_AMOUNT = np.array([_PURPOSE_MEDIAN[p] for p in CATEGORY_VALUES["purpose"]], dtype=np.float64)
PARTNER_CODE = CATEGORY_VALUES["channel"].index("partner_app")
_EPOCH_MONTH = month_number("1970-01")


def month_start_day(number: np.ndarray | int) -> np.ndarray:
    """Days since 1970-01-01 of the first day of absolute month ``number`` (vectorised)."""
    months = np.asarray(number, dtype=np.int64) - _EPOCH_MONTH
    return (
        (np.datetime64("1970-01", "M") + months.astype("timedelta64[M]"))
        .astype("datetime64[D]")
        .astype(np.int64)
    )


def _cumulative(weights: tuple[float, ...]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    c = np.cumsum(w / w.sum())
    c[-1] = 1.0
    return c


def _draw_codes(u: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
    """Categorical codes from uniforms by inverting the cumulative weights."""
    return np.searchsorted(_cumulative(weights), u, side="right").astype(np.int16)


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` that sum to ``total`` exactly."""
    raw = total * weights / weights.sum()
    out = np.floor(raw).astype(np.int64)
    rest = total - int(out.sum())
    if rest:
        out[np.argsort(-(raw - out), kind="stable")[:rest]] += 1
    return out


@dataclass(frozen=True)
class Plan:
    """Everything about a run that is fixed before any random draw: months and row counts.

    ``n_apps`` is the number of applications of each month. ``n_new`` and ``n_ret`` count the
    candidates: new customer ordinals and returning customers. They add up to ``n_apps`` except
    in ``selective`` months (the label shift), where the applicants are drawn from a larger pool.
    """

    seed: int
    applications: int
    months: tuple[str, ...]
    month_numbers: np.ndarray
    bounds: np.ndarray  # epoch seconds of each month start, then as_of
    n_apps: np.ndarray
    n_new: np.ndarray
    n_ret: np.ndarray
    selective: np.ndarray  # months whose applicants are drawn by label (label shift)
    chunks: np.ndarray  # chunks per month: ceil(n_apps / CHUNK_APPLICATIONS)
    app_offset: np.ndarray
    cust_offset: np.ndarray
    scenarios: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def as_of(self) -> str:
        """First day after the last month, ``YYYY-MM-DD``."""
        return f"{month_string(int(self.month_numbers[-1]) + 1)}-01"

    def starts(self, name: str) -> int | None:
        """Index of the first month where scenario ``name`` is active, or ``None``."""
        record = self.scenarios[name]
        if not record["enabled"]:
            return None
        start = month_number(record["start_month"])
        hits = np.flatnonzero(self.month_numbers >= start)
        return int(hits[0]) if len(hits) else None


def _pool(count: int) -> int:
    """Candidates to draw ``count`` applicants from under the label shift (see :func:`draw_by_label`)."""
    return int(np.ceil(count * _POOL_FACTOR)) + _POOL_EXTRA if count else 0


def make_plan(
    applications: int, seed: int, start_month: str, n_months: int, scenarios: dict[str, dict[str, Any]]
) -> Plan:
    """Fix months, per-month counts and id offsets for a run of ``applications`` applications."""
    first = month_number(start_month)
    numbers = np.arange(first, first + n_months + 1, dtype=np.int64)
    bounds = month_start_day(numbers) * DAY
    growth = 1.0 + 0.25 * np.arange(n_months) / max(n_months - 1, 1)  # volume grows, mix does not
    n_apps = _largest_remainder(int(applications), growth)
    selective = np.array([active(scenarios, "label_shift", int(k)) for k in numbers[:-1]], dtype=bool)
    n_ret = np.zeros(n_months, dtype=np.int64)
    n_new = np.zeros(n_months, dtype=np.int64)
    known = 0  # customers so far (applicants, not the candidates left out under the label shift)
    for m in range(n_months):
        share = min(RETURNING_SHARE, 0.1 * m)
        ret = min(int(round(n_apps[m] * share)), known // 2)
        new = int(n_apps[m] - ret)
        known += new
        n_ret[m], n_new[m] = (_pool(ret), _pool(new)) if selective[m] else (ret, new)
    chunks = np.maximum(-(-n_apps // CHUNK_APPLICATIONS), 1)

    def offsets(counts: np.ndarray) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    return Plan(
        seed=int(seed),
        applications=int(applications),
        months=tuple(month_string(int(k)) for k in numbers[:-1]),
        month_numbers=numbers[:-1],
        bounds=bounds,
        n_apps=n_apps,
        n_new=n_new,
        n_ret=n_ret,
        selective=selective,
        chunks=chunks,
        app_offset=offsets(n_apps),
        cust_offset=offsets(n_new),
        scenarios=scenarios,
    )


class Population:
    """Which customer ordinals exist: all of them, except candidates that the label shift left out.

    Keeps one boolean per new-customer candidate of each selective month, so memory grows by a
    byte per such candidate (a few MB for twenty million applications), never by a row.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.kept: dict[int, np.ndarray] = {}
        self.customers = 0  # customers who exist so far

    def record(self, m: int, new_idx: np.ndarray, kept: np.ndarray) -> None:
        """Note which new-customer candidates ``new_idx`` of month ``m`` became customers."""
        if self.plan.selective[m]:
            flags = self.kept.setdefault(m, np.zeros(int(self.plan.n_new[m]), dtype=bool))
            flags[new_idx[kept] - self.plan.cust_offset[m]] = True
        self.customers += int(kept.sum())

    def exists(self, idx: np.ndarray) -> np.ndarray:
        """Whether each ordinal in ``idx`` belongs to a customer (ordinals of past months only)."""
        out = np.ones(len(idx), dtype=bool)
        month = np.searchsorted(self.plan.cust_offset, idx, side="right") - 1
        for m, flags in self.kept.items():
            hit = month == m
            out[hit] = flags[idx[hit] - self.plan.cust_offset[m]]
        return out


# ------------------------------------------------------------------------------------------------
# customers: permanent attributes as hashes of the ordinal


def _kumaraswamy(u: np.ndarray, a: float, b: float) -> np.ndarray:
    return (1.0 - (1.0 - u) ** (1.0 / b)) ** (1.0 / a)


def customer_attributes(plan: Plan, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Permanent attributes of customers ``idx`` (ordinals), recomputable at any time."""
    seed = plan.seed
    month = np.searchsorted(plan.cust_offset, idx, side="right") - 1
    rank = idx - plan.cust_offset[month]
    start = plan.bounds[month]
    usable = plan.bounds[month + 1] - start - 3 * HOUR
    # stratified in the ordinal, so ids increase with signup time
    signup_at = start + ((rank + hash_uniform(seed, 1, idx)) / plan.n_new[month] * usable).astype(np.int64)
    partner_from = plan.starts("covariate_shift")
    partner = np.zeros(len(idx), dtype=bool)
    if partner_from is not None:
        partner = (month >= partner_from) & (hash_uniform(seed, 2, idx) < COVARIATE_SHIFT_PARTNER_SHARE)
    u_age = hash_uniform(seed, 3, idx)
    age_at_signup = np.where(
        partner, 21 + 60 * _kumaraswamy(u_age, 1.4, 6.0), 21 + 77 * _kumaraswamy(u_age, 1.9, 3.6)
    )
    birth_day = np.floor(signup_at / DAY - age_at_signup * 365.2425).astype(np.int64)
    return {
        "signup_at": signup_at,
        "birth_day": birth_day,
        "region": _draw_codes(hash_uniform(seed, 4, idx), CATEGORY_WEIGHTS["region"]),
        "z_risk": hash_normal(seed, 5, idx),
        "z_income": hash_normal(seed, 7, idx) - np.where(partner, 0.45, 0.0),
        "partner": partner,
    }


def _draw_returning(
    rng: np.random.Generator, population: int, k: int, exists: Population | None = None
) -> np.ndarray:
    """``k`` distinct ordinals from ``range(population)``, in draw order, skipping holes in ``exists``."""
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    picked = np.zeros(0, dtype=np.int64)
    while len(picked) < k:
        fresh = rng.integers(0, population, size=int((k - len(picked)) * 1.1) + 16)
        if exists is not None:
            fresh = fresh[exists.exists(fresh)]
        draw = np.concatenate([picked, fresh])
        _, first = np.unique(draw, return_index=True)
        picked = draw[np.sort(first)]
    return picked[:k]


def draw_by_label(
    rng: np.random.Generator, label: np.ndarray, target: int, odds_ratio: float = LABEL_SHIFT_ODDS_RATIO
) -> np.ndarray:
    """Indices of ``target`` applicants drawn from candidates by their label, in ascending order.

    Candidates are visited in random order; each would-be defaulter is taken, each would-be repayer
    with probability ``1 / odds_ratio``, until ``target`` are taken (fewer if the pool runs out).
    Whether a candidate is taken depends on its label only, so the features of each class keep
    their distribution (P(x | y) is unchanged), and the odds of default among the applicants are
    ``odds_ratio`` times those of the pool. Candidates after the last one taken are not visited.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> label = (rng.random(100_000) < 0.08).astype(np.int8)
    >>> taken = draw_by_label(np.random.default_rng(1), label, 40_000, odds_ratio=2.0)
    >>> len(taken), round(float(label[taken].mean()), 2)
    (40000, 0.15)
    """
    order = rng.permutation(len(label))
    taken = (label[order] == 1) | (rng.random(len(label)) * odds_ratio < 1.0)
    return np.sort(order[taken][:target])


# ------------------------------------------------------------------------------------------------
# bureau features (GMSC-like marginals)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _age_at(birth_day: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    return np.clip(np.floor((seconds // DAY - birth_day) / 365.2425), 21, 100)


def bureau_features(
    rng: np.random.Generator, z_risk: np.ndarray, z_income: np.ndarray, age: np.ndarray
) -> dict[str, np.ndarray]:
    """Bureau features for one snapshot per row; NaN marks the naturally missing values."""
    n = len(age)
    agec = (age - 52.0) / 15.0
    risk = 0.75 * z_risk + 0.66 * rng.standard_normal(n) - 0.35 * agec
    # revolving utilisation: zeros, a body in (0, 1), a tail above 1 and a few absurd values
    body = _sigmoid(-1.5 + 1.1 * risk + 1.3 * rng.standard_normal(n))
    u = rng.random((3, n))
    over = u[0] < _sigmoid(-4.3 + 0.9 * risk)
    huge = over & (u[1] < 0.1)
    util = np.where(over, 1.0 + rng.exponential(0.3, n), body)
    util = np.where(huge, np.clip(np.exp(np.log(300.0) + 2.0 * rng.standard_normal(n)), 1.5, 60_000.0), util)
    util = np.where(u[2] < 0.065, 0.0, util)
    # late-payment counts: Poisson with a shared log-normal rate
    late_risk = 0.8 * risk + 0.6 * rng.standard_normal(n)
    late30 = rng.poisson(np.exp(-2.1 + 1.0 * late_risk)).astype(np.float64)
    late60 = rng.poisson(np.exp(-3.6 + 1.15 * late_risk)).astype(np.float64)
    late90 = rng.poisson(np.exp(-3.55 + 1.3 * late_risk)).astype(np.float64)
    # GMSC's sentinel rows: all three counts 98 (sometimes 96), utilisation 0.9999999
    u = rng.random((3, n))
    sentinel = u[0] < _sigmoid(-6.6 + 0.8 * risk)
    code = np.where(u[1] < 0.97, 98.0, 96.0)
    late30 = np.where(sentinel, code, late30)
    late60 = np.where(sentinel, code, late60)
    late90 = np.where(sentinel, code, late90)
    util = np.where(sentinel & (u[2] < 0.9), 0.9999999, util)
    # monthly income: log-normal with a Pareto-like tail, some zeros, about 20% missing
    log_income = (
        np.log(5400.0) + 0.6 * z_income + 0.3 * rng.standard_normal(n) - 0.12 * risk - 0.25 * agec**2 + 0.25
    )
    income = np.exp(log_income)
    u = rng.random((4, n))
    income = np.where(u[0] < 0.003, income * np.exp(1.0 + 3.5 * u[1]), income)
    income = np.where(u[2] < 0.011, 0.0, np.round(income))
    missing = u[3] < _sigmoid(np.log(0.198 / 0.802) + 0.35 * agec - 0.05 * risk)
    # debt ratio: a ratio when income is known, a currency amount when it is missing or zero
    ratio = np.exp(np.log(0.28) + 0.75 * rng.standard_normal(n) + 0.15 * risk)
    u = rng.random((3, n))
    ratio = np.where(u[0] < 0.03, ratio * np.exp(0.5 + 3.5 * u[1]), ratio)
    debt_amount = np.exp(np.log(1100.0) + 1.6 * rng.standard_normal(n))
    ratio = np.where(missing | (income == 0), np.round(debt_amount), ratio)
    ratio = np.where(u[2] < 0.025, 0.0, ratio)
    # counts
    mu = 8.45 * np.exp(0.12 * agec - 0.1 * agec**2 + 0.05 - 0.125 + 0.5 * rng.standard_normal(n))
    open_lines = rng.poisson(mu).astype(np.float64)  # Poisson-log-normal: over-dispersed like GMSC
    real_estate = rng.poisson(np.exp(-0.15 + 0.25 * z_income + 0.25 * (open_lines > 8))).astype(np.float64)
    w = np.exp(-(((age - 40.0) / 16.0) ** 2))
    u = rng.random((2, n))
    dependents = np.where(u[0] < 0.74 * w + 0.05, 1.0 + rng.poisson(0.55 + 0.3 * w), 0.0)
    dependents = np.where(missing & (u[1] < 0.13), np.nan, dependents)  # GMSC: only where income is missing
    return {
        "revolving_utilization": np.round(util, 7),
        "debt_ratio": np.round(ratio, 6),
        "monthly_income": np.where(missing, np.nan, income),
        "open_credit_lines": open_lines,
        "real_estate_loans": real_estate,
        "dependents": dependents,
        "late_30_59": late30,
        "late_60_89": late60,
        "late_90": late90,
    }


def _perturb(
    rng: np.random.Generator, features: dict[str, np.ndarray], rows: np.ndarray, label: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Features of another snapshot of the same customers: small changes; ``label`` leaks a little."""
    out = {k: v[rows].copy() for k, v in features.items()}
    n = len(rows)
    sentinel = out["late_90"] >= 96
    util = out["revolving_utilization"]
    drift = 0.04 * rng.standard_normal(n)
    if label is not None:
        drift += 0.15 * label[rows]
        extra = rng.poisson(0.4 * label[rows])
        out["late_30_59"] = np.where(sentinel, out["late_30_59"], out["late_30_59"] + extra)
    out["revolving_utilization"] = np.where(
        sentinel | (util == 0), util, np.round(np.clip(util * np.exp(drift) + 0.05 * drift, 0.0, None), 7)
    )
    out["open_credit_lines"] = out["open_credit_lines"] + (rng.random(n) < 0.1)
    return out


# ------------------------------------------------------------------------------------------------
# one month


@dataclass
class Chunk:
    """Clean rows of one chunk of a month; timestamps are epoch seconds, dates epoch days."""

    month: int
    index: int
    customers: dict[str, np.ndarray]
    applications: dict[str, np.ndarray]
    bureau: dict[str, np.ndarray]
    loans: dict[str, np.ndarray]
    outcomes: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]


def simulate_month(plan: Plan, m: int, first_snapshot: int, population: Population) -> Iterator[Chunk]:
    """Generate month ``plan.months[m]`` chunk by chunk (see :data:`CHUNK_APPLICATIONS`).

    ``first_snapshot`` is the first free snapshot ordinal; each chunk's ``bureau`` ids follow on.
    ``population`` knows which earlier ordinals are customers; this month's are added to it.
    """
    seed, num = plan.seed, int(plan.month_numbers[m])
    start, end = int(plan.bounds[m]), int(plan.bounds[m + 1])
    n_chunks = int(plan.chunks[m])
    # Returning customers are drawn for the whole month at once (nobody applies twice in a month),
    # then dealt to the chunk that covers their application time.
    rng = month_rng(seed, num, "returning")
    holes = population if population.kept else None
    n_ret = min(int(plan.n_ret[m]), population.customers)
    ret_idx = _draw_returning(rng, int(plan.cust_offset[m]), n_ret, holes)
    lo, hi = start + HOUR // 2, end - 2 * HOUR
    ret_applied = lo + (rng.random(len(ret_idx)) * (hi - lo)).astype(np.int64)
    ret_chunk = np.minimum((ret_applied - start) * n_chunks // (end - start), n_chunks - 1)
    new_cuts = np.concatenate([[0], np.cumsum(_largest_remainder(int(plan.n_new[m]), np.ones(n_chunks)))])
    targets = _largest_remainder(int(plan.n_apps[m]), np.ones(n_chunks)) if plan.selective[m] else None
    next_app, next_snap = int(plan.app_offset[m]), int(first_snapshot)
    for k in range(n_chunks):
        new_idx = plan.cust_offset[m] + np.arange(new_cuts[k], new_cuts[k + 1], dtype=np.int64)
        mine = ret_chunk == k
        target = None if targets is None else int(targets[k])
        chunk = _simulate_chunk(
            plan, m, k, new_idx, ret_idx[mine], ret_applied[mine], next_app, next_snap, target
        )
        population.record(m, new_idx, np.isin(new_idx, chunk.customers["customer_id"]))
        next_app += len(chunk.applications["application_id"])
        next_snap += len(chunk.bureau["snapshot_id"])
        yield chunk


def _without_label_shift(scenarios: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {**scenarios, "label_shift": {**scenarios["label_shift"], "enabled": False}}


def _simulate_chunk(
    plan: Plan,
    m: int,
    k: int,
    new_idx: np.ndarray,
    ret_idx: np.ndarray,
    ret_applied: np.ndarray,
    first_app: int,
    first_snap: int,
    target: int | None = None,
) -> Chunk:
    """One chunk; with ``target`` (label shift), draw ``target`` applicants from the candidates by label."""
    seed, num = plan.seed, int(plan.month_numbers[m])
    start, end = int(plan.bounds[m]), int(plan.bounds[m + 1])
    n_new = len(new_idx)
    n = n_new + len(ret_idx)
    cust_idx = np.concatenate([new_idx, ret_idx])
    cust = customer_attributes(plan, cust_idx)
    new_customers = {
        "customer_id": new_idx,
        "signup_at": cust["signup_at"][:n_new],
        "birth_date": cust["birth_day"][:n_new],
        "region": cust["region"][:n_new],
    }

    # applications -------------------------------------------------------------------------------
    rng = month_rng(seed, num, "applications", k)
    applied = np.empty(n, dtype=np.int64)
    delay = np.minimum(1200 + rng.exponential(DAY, n_new), 20 * DAY).astype(np.int64)
    applied[:n_new] = np.minimum(cust["signup_at"][:n_new] + delay, end - 2 * HOUR)
    applied[n_new:] = ret_applied
    order = np.argsort(applied, kind="stable")
    applied = applied[order]
    cust_idx = cust_idx[order]
    cust = {key: v[order] for key, v in cust.items()}

    u = rng.random((3, n))
    channel = _draw_codes(u[0], CATEGORY_WEIGHTS["channel"])
    channel = np.where(cust["partner"], np.int16(PARTNER_CODE), channel).astype(np.int16)
    purpose = _draw_codes(u[1], CATEGORY_WEIGHTS["purpose"])
    amount = PURPOSE_MEDIAN_AMOUNT[purpose] * np.exp(0.65 * rng.standard_normal(n))
    amount = np.clip(np.round(amount / 50.0) * 50.0, 500.0, 60_000.0)
    centre = np.clip((np.log(amount) - np.log(2500.0)) / 0.7, 0.0, 4.0)
    term_weights = np.exp(-((np.arange(5)[None, :] - centre[:, None]) ** 2) / 1.5)
    term_cdf = np.cumsum(term_weights, axis=1)
    term = TERMS[(term_cdf < u[2][:, None] * term_cdf[:, -1:]).sum(axis=1)]

    # bureau snapshot at the application, then the label -----------------------------------------
    rng = month_rng(seed, num, "bureau", k)
    is_new = order < n_new
    lower = np.where(is_new, np.maximum(cust["signup_at"], start + 600), start + 600)
    pulled = np.maximum(applied - 300 - rng.exponential(6 * HOUR, n).astype(np.int64), lower)
    age = _age_at(cust["birth_day"], pulled)
    features = bureau_features(rng, cust["z_risk"], cust["z_income"], age)
    features["age"] = age
    if target is None:
        p = true_probability(features, plan.months[m], plan.scenarios)
        label = (month_rng(seed, num, "labels", k).random(n) < p).astype(np.int8)
    else:
        # Label shift: label every candidate with the month's model as it would be without the
        # shift, draw the applicants by label, and keep their probability of default given that
        # they applied (the truth of the month: Bayes' rule adds ln(odds ratio) to the intercept).
        p = true_probability(features, plan.months[m], _without_label_shift(plan.scenarios))
        label = (month_rng(seed, num, "labels", k).random(n) < p).astype(np.int8)
        keep = draw_by_label(month_rng(seed, num, "selection", k), label, target)
        order, applied, cust_idx, is_new = order[keep], applied[keep], cust_idx[keep], is_new[keep]
        cust = {key: v[keep] for key, v in cust.items()}
        channel, purpose, amount, term = channel[keep], purpose[keep], amount[keep], term[keep]
        pulled, label = pulled[keep], label[keep]
        features = {key: v[keep] for key, v in features.items()}
        p = true_probability(features, plan.months[m], plan.scenarios)
        n = len(keep)
        new_rows = np.sort(order[is_new])  # the new-customer candidates who applied
        new_customers = {key: v[new_rows] for key, v in new_customers.items()}
    customers = new_customers
    app_idx = first_app + np.arange(n, dtype=np.int64)
    applications = {
        "application_id": app_idx,
        "customer_id": cust_idx,
        "applied_at": applied,
        "channel": channel,
        "purpose": purpose,
        "amount": amount,
        "term_months": term,
        "region": cust["region"],
    }

    pre_rows = np.sort(rng.choice(n, int(round(n * PRE_SNAPSHOT_SHARE)), replace=False))
    post_rows = np.sort(rng.choice(n, int(round(n * POST_SNAPSHOT_SHARE)), replace=False))
    pre = _perturb(rng, features, pre_rows, None)
    pre_pulled = start + (rng.random(len(pre_rows)) * (pulled[pre_rows] - 60 - start)).astype(np.int64)
    pre["age"] = _age_at(cust["birth_day"][pre_rows], pre_pulled)
    post = _perturb(rng, features, post_rows, label)
    room = end - HOUR - applied[post_rows] - 60
    post_pulled = applied[post_rows] + 60 + (rng.random(len(post_rows)) * room).astype(np.int64)
    post["age"] = _age_at(cust["birth_day"][post_rows], post_pulled)
    snap_pulled = np.concatenate([pulled, pre_pulled, post_pulled])
    snap_order = np.argsort(snap_pulled, kind="stable")
    bureau = {
        "snapshot_id": first_snap + np.arange(len(snap_pulled), dtype=np.int64),
        "customer_id": np.concatenate([cust_idx, cust_idx[pre_rows], cust_idx[post_rows]])[snap_order],
        "pulled_at": snap_pulled[snap_order],
    }
    for name in features:
        bureau[name] = np.concatenate([features[name], pre[name], post[name]])[snap_order]
    del features, pre, post

    # outcomes (observed later) and the loan book for repayments ----------------------------------
    # Instalment j falls due j months after the application, on the same day of the month (capped at
    # the 28th). A default first misses instalment k and is 90 days past due at the due date of
    # instalment k + 3; a loan that repays is known to be good when the window closes, at the due date
    # of its last instalment. The lender records either a few days later.
    rng = month_rng(seed, num, "outcomes", k)
    shares = np.array(list(FIRST_MISSED_SHARES.values()))
    first_missed = np.where(
        label == 1, rng.choice(np.array(list(FIRST_MISSED_SHARES), dtype=np.int8), n, p=shares), 99
    ).astype(np.int8)
    day_of_month = np.minimum(applied // DAY - start // DAY, 27)
    event_instalment = np.where(
        label == 1, first_missed.astype(np.int64) + DAYS_PAST_DUE_DEFAULT // 30, PERFORMANCE_WINDOW
    )
    event_day = month_start_day(num + event_instalment) + day_of_month
    lag = rng.integers(REPORTING_LAG_DAYS[0], REPORTING_LAG_DAYS[1] + 1, n)
    observed = (event_day + lag) * DAY + 2 * HOUR + rng.integers(0, 4 * HOUR, n)
    outcomes = {"application_id": app_idx, "observed_at": observed, "serious_dlq": label}
    apr = np.clip(0.06 + 0.8 * p, 0.06, 0.35)
    rate = apr / 12.0
    instalment = np.round(amount * rate / (1.0 - (1.0 + rate) ** (-term.astype(np.float64))), 2)
    loans = {
        "application_id": app_idx,
        "applied_day": (applied // DAY).astype(np.int32),
        "amount_due": instalment,
        "first_missed": first_missed,
        "late_propensity": (0.03 + 0.25 * p + 0.1 * label).astype(np.float32),
    }
    truth = {"application_id": app_idx, "applied_at": applied, "p_true": p, "serious_dlq": label}
    return Chunk(m, k, customers, applications, bureau, loans, outcomes, truth)


def repayments_due(plan: Plan, m: int, books: dict[int, list[dict[str, np.ndarray]]]) -> Iterator[dict]:
    """Repayment rows due in month ``m``, one dict per loan-book chunk.

    Instalment ``k`` of the loans originated in month ``m - k`` falls due in ``m`` (on the same day
    of the month, capped at the 28th); oldest loans first, so application ids ascend. From the first
    missed instalment on, a default pays nothing (or a quarter) and ``days_late`` is the account's
    delinquency on the due date in 30-day buckets: 0 at the first missed instalment, then 30, 60, 90.
    """
    for k in range(REPAYMENT_HORIZON, 0, -1):
        for c, book in enumerate(books.get(m - k, [])):
            rng = month_rng(plan.seed, int(plan.month_numbers[m - k]), "repayments", k, c)
            # the book is reused for the next instalments: never write to its arrays
            day_of_month = np.minimum(book["applied_day"] - plan.bounds[m - k] // DAY, 27)
            due = plan.bounds[m] // DAY + day_of_month.astype(np.int64)
            n = len(due)
            amount_due = book["amount_due"]
            missed = k >= book["first_missed"]
            u = rng.random((3, n))
            late = u[0] < book["late_propensity"]
            days_late = np.where(late, np.minimum(1 + rng.geometric(1 / 7, n), 29), 0)
            paid = np.where(u[1] < 0.01, np.round(amount_due * (0.3 + 0.6 * u[2]), 2), amount_due)
            partial = u[2] < 0.1
            paid = np.where(missed, np.where(partial, np.round(amount_due * 0.25, 2), 0.0), paid)
            days_late = np.where(missed, 30 * (k - book["first_missed"].astype(np.int16)), days_late)
            yield {
                "application_id": book["application_id"],
                "due_date": due,
                "amount_due": amount_due,
                "amount_paid": paid,
                "days_late": days_late.astype(np.int16),
            }
