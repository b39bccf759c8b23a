"""Feature engineering: scikit-learn transformers and point-in-time feature retrieval.

The book's chapter 5, "Feature Engineering". Two halves:

- Factories for scikit-learn transformers (imputation with missing indicators,
  scaling, power transforms, binning, one-hot encoding with unknown categories, the
  hashing trick, feature crosses, date parts) and :func:`make_preprocessor`, which
  assembles them into one ``ColumnTransformer``. Everything outputs pandas
  DataFrames with readable column names (``monthly_income``,
  ``missingindicator_monthly_income``, ``channel_web``, ``region_hash_3``,
  ``applied_at_hour``), so feature names survive into models and explanations.
- I/O at the edge: :func:`point_in_time_features` joins each application to the
  latest bureau snapshot taken at or before its time (never after: no leakage from
  the future), and :func:`gold_features` reads the gold feature table. Both take
  their connection as the first argument.

Example
-------
>>> import pandas as pd
>>> from mlsd.features import make_preprocessor
>>> train = pd.DataFrame({"income": [1.0, None, 3.0], "channel": ["web", "branch", "web"]})
>>> prep = make_preprocessor(numeric=["income"], categorical=["channel"]).fit(train)
>>> list(prep.get_feature_names_out())
['income', 'missingindicator_income', 'channel_branch', 'channel_web']
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from psycopg2 import extensions, sql
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction import FeatureHasher
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    OneHotEncoder,
    PowerTransformer,
    RobustScaler,
    StandardScaler,
)
from sklearn.utils.validation import check_is_fitted

from mlsd._validation import check_columns
from mlsd.data._schema import COLUMNS as _SCHEMA_COLUMNS  # constants only: cheap to import
from mlsd.db import copy_dataframe, read_sql

if TYPE_CHECKING:
    import psycopg2.extensions


__all__ = [
    "BUREAU_FEATURES",
    "DATE_PARTS",
    "TARGET",
    "DateParts",
    "FeatureCross",
    "HashingEncoder",
    "binner",
    "course_feature_columns",
    "feature_cross",
    "gold_features",
    "imputer",
    "make_preprocessor",
    "one_hot",
    "point_in_time_features",
    "power_transformer",
    "scaler",
]


TARGET = "serious_dlq"
"""The label column of the gold table (NULL while the outcome is not observed yet)."""

BUREAU_FEATURES = tuple(
    name
    for name, _ in _SCHEMA_COLUMNS["bureau"]
    if name not in ("snapshot_id", "customer_id", "pulled_at", "ingested_at")
)
"""Feature columns of a bureau snapshot (``silver.bureau``), from the data contract in ``mlsd.data``."""

DATE_PARTS = ("month", "day_of_week", "hour", "is_weekend")
"""Parts that :class:`DateParts` can extract from a timestamp."""

MISSING = "missing"
"""The category that stands for a missing value in categorical columns."""


# -- input checks ---------------------------------------------------------------------


def _as_frame(X) -> pd.DataFrame:
    """A DataFrame from a DataFrame or a single named Series (one column)."""
    if isinstance(X, pd.Series):
        return X.to_frame()
    if not isinstance(X, pd.DataFrame):
        raise ValueError(f"Expected a pandas DataFrame (or Series), got {type(X).__name__}.")
    return X


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"Unknown {name} {value!r}: use one of {list(allowed)}.")


# -- transformer factories ------------------------------------------------------------


def imputer(strategy: str = "median", *, add_indicator: bool = True, fill_value=None) -> SimpleImputer:
    """A ``SimpleImputer`` that also adds a 0/1 column flagging each imputed value.

    Missingness is often informative (no reported income says something about the
    applicant), so the indicator keeps that signal after the value is filled.
    Indicators are added only for columns with missing values during ``fit``.

    Parameters
    ----------
    strategy : {"median", "mean", "most_frequent", "constant"}
        How to fill; the median resists the heavy tails of the course data.
    add_indicator : bool
        Add ``missingindicator_<column>`` columns.
    fill_value : optional
        The value for ``strategy="constant"``.

    Examples
    --------
    >>> imputer().fit_transform(pd.DataFrame({"income": [1.0, None, 5.0]}))
       income  missingindicator_income
    0     1.0                      0.0
    1     3.0                      1.0
    2     5.0                      0.0
    """
    _choice("strategy", strategy, ("median", "mean", "most_frequent", "constant"))
    step = SimpleImputer(strategy=strategy, add_indicator=add_indicator, fill_value=fill_value)
    return step.set_output(transform="pandas")


def scaler(kind: str = "standard") -> StandardScaler | RobustScaler:
    """A scaler: ``"standard"`` (mean 0, sd 1) or ``"robust"`` (median 0, IQR 1, for heavy tails).

    Examples
    --------
    >>> scaler("robust").fit_transform(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 100.0]}))["x"].tolist()
    [-1.0, -0.5, 0.0, 0.5, 48.5]
    """
    _choice("scaler", kind, ("standard", "robust"))
    step = StandardScaler() if kind == "standard" else RobustScaler()
    return step.set_output(transform="pandas")


def _log1p(X):
    """``log(1 + x)`` for values >= 0 (missing values stay missing)."""
    if np.any(np.asarray(X, dtype=float) < 0):
        raise ValueError(
            "log1p needs values >= 0: clip or clean negative values first, or use power='yeo-johnson'."
        )
    return np.log1p(X)


def power_transformer(
    method: str = "yeo-johnson", *, standardize: bool = False
) -> PowerTransformer | FunctionTransformer:
    """A transform that pulls in heavy right tails (utilisation, debt ratio, income).

    Parameters
    ----------
    method : {"yeo-johnson", "log1p"}
        ``"yeo-johnson"`` learns the best power per column (works for any sign);
        ``"log1p"`` is ``log(1 + x)`` for non-negative values, nothing learned.
    standardize : bool
        Also standardise (Yeo-Johnson only); scaling is usually a separate step.

    Examples
    --------
    >>> power_transformer("log1p").fit_transform(pd.DataFrame({"x": [0.0, np.e - 1]}))["x"].tolist()
    [0.0, 1.0]
    """
    _choice("power method", method, ("yeo-johnson", "log1p"))
    if method == "log1p":
        step = FunctionTransformer(
            _log1p, inverse_func=np.expm1, feature_names_out="one-to-one", check_inverse=False
        )
    else:
        step = PowerTransformer(method="yeo-johnson", standardize=standardize)
    return step.set_output(transform="pandas")


def binner(n_bins: int = 5, *, strategy: str = "quantile", encode: str = "ordinal") -> KBinsDiscretizer:
    """Cut a numeric column into bins (``KBinsDiscretizer``); impute missing values first.

    Parameters
    ----------
    n_bins : int
        Number of bins (fewer when values repeat).
    strategy : {"quantile", "uniform", "kmeans"}
        ``"quantile"``: about the same number of rows per bin; ``"uniform"``: equal widths.
    encode : {"ordinal", "onehot"}
        One column of bin numbers 0, 1, ..., or one 0/1 column per bin.

    Examples
    --------
    >>> binner(2).fit_transform(pd.DataFrame({"age": [20, 30, 40, 50]}))["age"].tolist()
    [0.0, 0.0, 1.0, 1.0]
    """
    _choice("strategy", strategy, ("quantile", "uniform", "kmeans"))
    _choice("encode", encode, ("ordinal", "onehot"))
    step = KBinsDiscretizer(
        n_bins=n_bins,
        strategy=strategy,
        encode="onehot-dense" if encode == "onehot" else "ordinal",
        quantile_method="averaged_inverted_cdf",
    )
    return step.set_output(transform="pandas")


def one_hot(*, min_frequency: int | float | None = None, max_categories: int | None = None) -> OneHotEncoder:
    """A one-hot encoder that survives categories never seen in training.

    Categories rarer than ``min_frequency`` (a count, or a fraction of rows) are
    pooled into ``<column>_infrequent_sklearn``, and so are unseen categories at
    transform time; without rare categories an unseen one encodes as all zeros.

    Examples
    --------
    >>> enc = one_hot(min_frequency=2).fit(pd.DataFrame({"channel": ["web", "web", "branch"]}))
    >>> enc.transform(pd.DataFrame({"channel": ["web", "new_app"]}))
       channel_web  channel_infrequent_sklearn
    0          1.0                         0.0
    1          0.0                         1.0
    """
    step = OneHotEncoder(
        handle_unknown="infrequent_if_exist",
        min_frequency=min_frequency,
        max_categories=max_categories,
        sparse_output=False,
    )
    return step.set_output(transform="pandas")


class HashingEncoder(TransformerMixin, BaseEstimator):
    """The hashing trick for high-cardinality categorical columns, with named outputs.

    Each value of each column is hashed into one of ``n_features`` columns named
    ``<column>_hash_0`` ... ``<column>_hash_<n_features - 1>``. Nothing is learned, so
    the width stays fixed and categories never seen in training still get encoded
    (at the price of collisions: different categories can share a column). Missing
    values are hashed as the category ``"missing"``.

    Parameters
    ----------
    n_features : int
        Hash columns per input column.
    alternate_sign : bool
        Let a hash flip the sign (-1) to cancel out collisions on average; off by
        default so that each row has a single 1 per column, like one-hot.

    Examples
    --------
    >>> enc = HashingEncoder(n_features=4).fit(pd.DataFrame({"region": ["north", "south"]}))
    >>> out = enc.transform(pd.DataFrame({"region": ["north", "never_seen"]}))
    >>> list(out.columns), out.sum(axis=1).tolist()
    (['region_hash_0', 'region_hash_1', 'region_hash_2', 'region_hash_3'], [1.0, 1.0])
    """

    def __init__(self, n_features: int = 16, alternate_sign: bool = False):
        self.n_features = n_features
        self.alternate_sign = alternate_sign

    def fit(self, X, y=None):
        """Record the input columns (hashing learns nothing else)."""
        X = _as_frame(X)
        if int(self.n_features) != self.n_features or self.n_features < 1:
            raise ValueError(f"n_features must be a positive whole number, got {self.n_features!r}.")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X) -> pd.DataFrame:
        """Hash each column into its block of ``n_features`` columns."""
        check_is_fitted(self)
        X = _as_frame(X)
        check_columns(X, self.feature_names_in_, what="X", hint="Pass the columns it was fitted on.")
        hasher = FeatureHasher(
            n_features=int(self.n_features), input_type="string", alternate_sign=self.alternate_sign
        )
        blocks = []
        for column in self.feature_names_in_:
            values = X[column].astype(object).where(X[column].notna(), MISSING)
            blocks.append(hasher.transform([[str(v)] for v in values]).toarray())
        return pd.DataFrame(np.hstack(blocks), columns=self.get_feature_names_out(), index=X.index)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``<column>_hash_<i>`` for every input column and hash bucket."""
        check_is_fitted(self)
        names = [f"{c}_hash_{i}" for c in self.feature_names_in_ for i in range(int(self.n_features))]
        return np.asarray(names, dtype=object)


class FeatureCross(TransformerMixin, BaseEstimator):
    """Cross categorical columns into combined string columns, e.g. ``channel_x_region``.

    A cross lets a linear model learn an effect that exists only for a combination
    (``broker`` applications from one region). Encode the result with
    :func:`one_hot` or :class:`HashingEncoder` (:func:`feature_cross` does both steps).

    Parameters
    ----------
    crosses : sequence of tuples of str
        Columns to cross, e.g. ``[("channel", "region")]``; two or more per cross.
    sep : str
        Joins column names and values: ``channel_x_region`` = ``"web_x_north"``.

    Examples
    --------
    >>> df = pd.DataFrame({"channel": ["web", "branch"], "region": ["north", None]})
    >>> FeatureCross([("channel", "region")]).fit_transform(df)["channel_x_region"].tolist()
    ['web_x_north', 'branch_x_missing']
    """

    def __init__(self, crosses: Sequence[tuple[str, ...]] = (), sep: str = "_x_"):
        self.crosses = crosses
        self.sep = sep

    def fit(self, X, y=None):
        """Check that the crossed columns exist."""
        X = _as_frame(X)
        if not self.crosses or any(len(cross) < 2 for cross in self.crosses):
            raise ValueError("crosses needs one or more tuples of at least two columns, e.g. [('a', 'b')].")
        check_columns(X, [c for cross in self.crosses for c in cross], what="X")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X) -> pd.DataFrame:
        """One string column per cross; missing values become ``"missing"``."""
        check_is_fitted(self)
        X = _as_frame(X)
        crossed = {}
        for cross, name in zip(self.crosses, self.get_feature_names_out(), strict=True):
            parts = [X[c].astype(object).where(X[c].notna(), MISSING).astype(str) for c in cross]
            crossed[name] = parts[0].str.cat(parts[1:], sep=self.sep)
        return pd.DataFrame(crossed, index=X.index)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``a_x_b`` for every cross of columns ``a`` and ``b``."""
        return np.asarray([self.sep.join(cross) for cross in self.crosses], dtype=object)


class DateParts(TransformerMixin, BaseEstimator):
    """Calendar parts of timestamp columns: month, day of week, hour, weekend flag.

    Output columns are ``<column>_<part>`` as floats (NaN for a missing timestamp):
    ``month`` 1-12, ``day_of_week`` 0 (Monday) - 6 (Sunday), ``hour`` 0-23 and
    ``is_weekend`` 0/1. Timestamps are read in their own time zone; strings are parsed
    as ISO 8601 and converted to UTC.

    Parameters
    ----------
    parts : sequence of str
        Which of ``DATE_PARTS`` to extract, in output order.

    Examples
    --------
    >>> df = pd.DataFrame({"applied_at": pd.to_datetime(["2025-03-01 14:30", "2025-03-03 09:00"])})
    >>> DateParts(parts=["day_of_week", "hour", "is_weekend"]).fit_transform(df)
       applied_at_day_of_week  applied_at_hour  applied_at_is_weekend
    0                     5.0             14.0                    1.0
    1                     0.0              9.0                    0.0
    """

    def __init__(self, parts: Sequence[str] = DATE_PARTS):
        self.parts = parts

    def fit(self, X, y=None):
        """Check the parts and record the timestamp columns."""
        X = _as_frame(X)
        for part in self.parts:
            _choice("date part", part, DATE_PARTS)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X) -> pd.DataFrame:
        """Extract the parts of every timestamp column."""
        check_is_fitted(self)
        X = _as_frame(X)
        check_columns(X, self.feature_names_in_, what="X", hint="Pass the columns it was fitted on.")
        out = {}
        for column in self.feature_names_in_:
            stamps = X[column]
            if not pd.api.types.is_datetime64_any_dtype(stamps):
                stamps = pd.to_datetime(stamps, format="ISO8601", utc=True)
            values = {
                "month": stamps.dt.month,
                "day_of_week": stamps.dt.day_of_week,
                "hour": stamps.dt.hour,
                "is_weekend": (stamps.dt.day_of_week >= 5).where(stamps.notna()),
            }
            for part in self.parts:
                out[f"{column}_{part}"] = values[part].astype("float64")
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``<column>_<part>`` for every timestamp column and part."""
        check_is_fitted(self)
        return np.asarray([f"{c}_{p}" for c in self.feature_names_in_ for p in self.parts], dtype=object)


def feature_cross(
    crosses: Sequence[tuple[str, ...]],
    *,
    encode: str = "onehot",
    min_frequency: int | float | None = None,
    n_features: int = 16,
) -> Pipeline:
    """Cross columns, then one-hot encode (``encode="onehot"``) or hash (``"hash"``) the crosses.

    Crosses multiply categories (10 channels x 12 regions = 120), so pool rare
    combinations with ``min_frequency`` or hash them into ``n_features`` columns.

    Examples
    --------
    >>> df = pd.DataFrame({"channel": ["web", "web", "branch"], "region": ["n", "n", "s"]})
    >>> list(feature_cross([("channel", "region")]).fit(df).get_feature_names_out())
    ['channel_x_region_branch_x_s', 'channel_x_region_web_x_n']
    """
    _choice("encode", encode, ("onehot", "hash"))
    encoder = one_hot(min_frequency=min_frequency) if encode == "onehot" else HashingEncoder(n_features)
    return Pipeline([("cross", FeatureCross(crosses)), ("encode", encoder)]).set_output(transform="pandas")


def _numeric_steps(impute: str, power: bool | str, scale: str | None) -> Pipeline:
    steps = [("impute", SimpleImputer(strategy=impute))]
    if power:
        steps.append(("power", power_transformer("yeo-johnson" if power is True else power)))
    if scale is not None:
        steps.append(("scale", scaler(scale)))
    return Pipeline(steps)


def make_preprocessor(
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    high_cardinality: Sequence[str] = (),
    dates: Sequence[str] = (),
    *,
    crosses: Sequence[tuple[str, ...]] = (),
    scaler: str | None = "standard",
    power: bool | str = False,
    bins: int | Mapping[str, int] | None = None,
    impute: str = "median",
    missing_indicators: bool = True,
    min_frequency: int | float | None = 0.01,
    n_hash_features: int = 16,
) -> ColumnTransformer:
    """One ``ColumnTransformer`` for the course's tabular data, with pandas output.

    Branches (each only when it has columns):

    - ``numeric``: impute (median), optionally a power transform, then scale;
    - ``missing``: ``missingindicator_<column>`` True/False flags for numeric columns
      that had missing values in training (a branch of their own so that the flags
      are not scaled or transformed; :func:`imputer` is the one-step version);
    - ``binned``: impute, then quantile bins (ordinal) for the columns in ``bins``;
    - ``categorical``: missing -> ``"missing"``, then one-hot with rare and unseen
      categories pooled into ``<column>_infrequent_sklearn``;
    - ``hashed``: the hashing trick, ``<column>_hash_<i>``;
    - ``dates``: month, day of week, hour and weekend flag;
    - ``crosses``: crossed categories, one-hot encoded.

    Output names are the plain feature names (``verbose_feature_names_out=False``);
    other columns are dropped.

    Parameters
    ----------
    numeric, categorical, high_cardinality, dates : sequence of str
        Columns of each kind (see :func:`course_feature_columns`).
    crosses : sequence of tuples of str
        Categorical columns to cross, e.g. ``[("channel", "region")]``.
    scaler : {"standard", "robust"} or None
        Scaling of numeric columns; None leaves them unscaled (fine for trees).
    power : bool or {"yeo-johnson", "log1p"}
        Power transform of numeric columns before scaling (True means Yeo-Johnson).
    bins : int or mapping of str to int, optional
        Bin numeric columns instead of scaling them: an int bins all of them into that
        many quantile bins; a mapping bins only the named columns.
    impute : {"median", "mean", "most_frequent"}
        How to fill missing numeric values.
    missing_indicators : bool
        Add the ``missing`` branch.
    min_frequency : int or float, optional
        Categories (and crosses) rarer than this (count, or fraction of rows) are pooled.
    n_hash_features : int
        Hash columns per high-cardinality column.

    Returns
    -------
    ColumnTransformer
        Unfitted; ``fit`` it on training data only.

    Examples
    --------
    >>> train = pd.DataFrame({"age": [30, 40, None], "region": ["n", "s", "n"]})
    >>> prep = make_preprocessor(numeric=["age"], high_cardinality=["region"], n_hash_features=2)
    >>> prep.fit_transform(train).columns.tolist()
    ['age', 'missingindicator_age', 'region_hash_0', 'region_hash_1']
    """
    _choice("scaler", scaler, ("standard", "robust", None))
    _choice("power", power, (False, True, "yeo-johnson", "log1p"))
    _choice("impute", impute, ("median", "mean", "most_frequent"))
    numeric = list(numeric)
    if isinstance(bins, Mapping):
        unknown = sorted(set(bins) - set(numeric))
        if unknown:
            raise ValueError(f"bins names {unknown}, which are not in numeric: list them in numeric too.")
        binned = dict(bins)
    elif bins is not None:
        binned = dict.fromkeys(numeric, bins)
    else:
        binned = {}
    scaled = [c for c in numeric if c not in binned]
    named = [*numeric, *categorical, *high_cardinality, *dates]
    repeated = sorted({c for c in named if named.count(c) > 1})
    if repeated:
        raise ValueError(f"Columns {repeated} are listed under more than one kind: keep each under one.")
    branches = []
    if scaled:
        branches.append(("numeric", _numeric_steps(impute, power, scaler), scaled))
    if numeric and missing_indicators:
        branches.append(("missing", MissingIndicator(features="missing-only", error_on_new=False), numeric))
    for column, n_bins in binned.items():
        steps = Pipeline([("impute", SimpleImputer(strategy=impute)), ("bin", binner(n_bins))])
        branches.append((f"binned_{column}", steps, [column]))
    if categorical:
        steps = Pipeline(
            [
                ("impute", SimpleImputer(strategy="constant", fill_value=MISSING)),
                ("one_hot", one_hot(min_frequency=min_frequency)),
            ]
        )
        branches.append(("categorical", steps, list(categorical)))
    if high_cardinality:
        branches.append(("hashed", HashingEncoder(n_hash_features), list(high_cardinality)))
    if dates:
        branches.append(("dates", DateParts(), list(dates)))
    if crosses:
        crossed = sorted({c for cross in crosses for c in cross})
        branches.append(("crosses", feature_cross(crosses, min_frequency=min_frequency), crossed))
    if not branches:
        raise ValueError(
            "No columns given: name at least one numeric, categorical, high_cardinality or date."
        )
    preprocessor = ColumnTransformer(branches, remainder="drop", verbose_feature_names_out=False)
    return preprocessor.set_output(transform="pandas")


def course_feature_columns() -> dict[str, list[str]]:
    """The feature columns of ``gold.application_features``, by kind.

    The keys match the arguments of :func:`make_preprocessor`, so
    ``make_preprocessor(**course_feature_columns())`` builds the course's default
    preprocessing. Keys (``application_id``, ``customer_id``), the times (``month``,
    ``applied_at``), the label ``serious_dlq`` and ``label_observed_at`` are not features.
    No gold column needs the hashing trick (regions have a long tail that
    ``min_frequency`` pools); pass a column there to try it.

    No date parts either: the true label model has no calendar term, the default rate by
    day of week differs only by noise (session 4, "Date parts"), and in a year or so of
    training months each calendar month appears once or twice, so a month feature would
    learn accidents. Pass ``dates=["applied_at"]`` to :func:`make_preprocessor` to test
    that hypothesis again.

    Examples
    --------
    >>> columns = course_feature_columns()
    >>> columns["categorical"], columns["dates"]
    (['channel', 'purpose', 'region'], [])
    """
    return {
        "numeric": [
            "amount",
            "term_months",
            "age",
            "revolving_utilization",
            "debt_ratio",
            "monthly_income",
            "open_credit_lines",
            "real_estate_loans",
            "dependents",
            "late_30_59",
            "late_60_89",
            "late_90",
            "prior_applications",
            "prior_late_payments",
        ],
        "categorical": ["channel", "purpose", "region"],
        "high_cardinality": [],
        "dates": [],
    }


# -- feature retrieval from PostgreSQL ------------------------------------------------


def _table_columns(conn: psycopg2.extensions.connection, schema: str, table: str) -> list[str]:
    """Column names of ``schema.table``, with a clear error when the table is missing."""
    target = sql.Identifier(schema, table)
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (target.as_string(conn),))
        if cur.fetchone()[0] is None:
            raise ValueError(
                f"Table {schema}.{table} does not exist: load the course data and build that layer first, "
                "or pass schema= and table= to point at another table."
            )
        cur.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(target))
        return [c.name for c in cur.description]


def _utc_text(stamps: pd.Series) -> pd.Series:
    """Timestamps as UTC text with microseconds; naive values are taken as UTC.

    Flooring to microseconds (PostgreSQL's precision) never moves an as-of time later.
    """
    utc = pd.to_datetime(stamps, utc=True, format="ISO8601").dt.floor("us")
    return utc.dt.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")


def point_in_time_features(
    conn: psycopg2.extensions.connection,
    applications: pd.DataFrame,
    *,
    columns: Sequence[str] = BUREAU_FEATURES,
    schema: str = "silver",
    table: str = "bureau",
    entity: str = "customer_id",
    as_of: str = "as_of_timestamp",
    time_column: str = "pulled_at",
) -> pd.DataFrame:
    """For each row, the latest snapshot taken at or before its as-of time (never after).

    Joining on the customer alone would attach snapshots pulled after the
    application: information the model could not have had (leakage). This is the
    point-in-time join, in one SQL query: the keys are uploaded into a temporary
    table with COPY, and a ``LEFT JOIN LATERAL`` picks, per row, the snapshot with the
    largest ``pulled_at <= as_of``. A snapshot taken exactly at the as-of time counts;
    one a microsecond later does not. Rows with no such snapshot get NULLs (NaN).
    Ties on ``pulled_at`` go to the largest ``snapshot_id`` (as in the gold SQL), or,
    in a table without one, are broken by the selected columns: results are repeatable.
    An index on ``(customer_id, pulled_at)`` makes each lookup an index probe.

    Inside a caller's open transaction it commits nothing; on an idle connection the
    transaction it opened is committed, so no locks outlive the call. The temporary
    table is dropped before returning.

    Parameters
    ----------
    conn : psycopg2 connection
        An open connection.
    applications : DataFrame
        One row per lookup with the ``entity`` and ``as_of`` columns (e.g.
        ``application_id, customer_id, as_of_timestamp``). Timestamps without a time
        zone are taken as UTC.
    columns : sequence of str
        Snapshot columns to return (the bureau features by default).
    schema, table : str
        The snapshot table, ``silver.bureau`` by default.
    entity : str
        Column identifying the customer, in both ``applications`` and the table.
    as_of : str
        Column of ``applications`` holding the as-of time.
    time_column : str
        Column of the table holding the snapshot time.

    Returns
    -------
    DataFrame
        ``applications`` (same index and row order) with ``time_column`` and
        ``columns`` of the matching snapshot appended.

    Examples
    --------
    >>> keys = pd.DataFrame({"application_id": ["A1"], "customer_id": ["C1"],
    ...                      "as_of_timestamp": [pd.Timestamp("2025-01-15", tz="UTC")]})
    >>> point_in_time_features(conn, keys)  # doctest: +SKIP
    """
    check_columns(applications, [entity, as_of], what="applications")
    columns = list(columns)
    available = _table_columns(conn, schema, table)
    check_columns(available, [entity, time_column, *columns], what=f"{schema}.{table}")
    clashes = sorted(set(applications.columns) & {time_column, *columns})
    if clashes:
        raise ValueError(f"applications already has column(s) {clashes}: drop or rename them first.")

    keys_name = f"pit_keys_{uuid.uuid4().hex[:12]}"
    keys_table = sql.Identifier("pg_temp", keys_name)
    source = sql.Identifier(schema, table)
    selected = [time_column, *columns]
    tie_break = ["snapshot_id"] if "snapshot_id" in available else selected
    query = sql.SQL(
        """
        SELECT k.row_id, s.*
        FROM {keys} AS k
        LEFT JOIN LATERAL (
            SELECT {selected}
            FROM {source} AS b
            WHERE b.{entity} = k.entity
              AND b.{time} <= k.as_of
            ORDER BY b.{time} DESC, {tie_break}
            LIMIT 1
        ) AS s ON true
        ORDER BY k.row_id
        """
    ).format(
        keys=keys_table,
        selected=sql.SQL(", ").join(sql.Identifier("b", c) for c in selected),
        source=source,
        entity=sql.Identifier(entity),
        time=sql.Identifier(time_column),
        tie_break=sql.SQL(", ").join(sql.SQL("{} DESC").format(sql.Identifier("b", c)) for c in tie_break),
    )
    upload = pd.DataFrame(
        {
            "row_id": np.arange(len(applications)),
            "entity": applications[entity].to_numpy(),
            "as_of": _utc_text(applications[as_of]).to_numpy(),
        }
    )
    was_idle = conn.info.transaction_status == extensions.TRANSACTION_STATUS_IDLE
    try:
        with conn.cursor() as cur:
            # Copy the key types from the snapshot table, so comparisons need no casts.
            cur.execute(
                sql.SQL(
                    "CREATE TEMP TABLE {keys} AS SELECT 0::bigint AS row_id, b.{entity} AS entity, "
                    "b.{time} AS as_of FROM {source} AS b WITH NO DATA"
                ).format(
                    keys=sql.Identifier(keys_name),
                    entity=sql.Identifier(entity),
                    time=sql.Identifier(time_column),
                    source=source,
                )
            )
        copy_dataframe(conn, upload, f"pg_temp.{keys_name}")
        found = read_sql(conn, query)
    finally:
        if conn.info.transaction_status != extensions.TRANSACTION_STATUS_INERROR:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(keys_table))
            if was_idle and not conn.autocommit:
                conn.commit()  # an open notebook must not keep silver.bureau locked
    found = found.drop(columns="row_id")
    found.index = applications.index
    return pd.concat([applications, found], axis=1)


def gold_features(
    conn: psycopg2.extensions.connection,
    month: str | Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    *,
    schema: str = "gold",
    table: str = "application_features",
) -> pd.DataFrame:
    """Read the gold feature table, optionally for some months and columns.

    Parameters
    ----------
    conn : psycopg2 connection
        An open connection.
    month : str or sequence of str, optional
        Month(s) ``'YYYY-MM'`` to read (the table's ``month`` column); all by default.
    columns : sequence of str, optional
        Columns to read; all by default.
    schema, table : str
        The table, ``gold.application_features`` by default.

    Returns
    -------
    DataFrame
        Rows ordered by ``applied_at`` and ``application_id`` when the table has them.
        ``serious_dlq`` is missing (NaN) for applications whose outcome is not observed yet.

    Examples
    --------
    >>> months = ["2024-01", "2024-02"]
    >>> train = gold_features(conn, month=months)  # doctest: +SKIP
    """
    available = _table_columns(conn, schema, table)
    chosen = available if columns is None else list(columns)
    check_columns(available, chosen, what=f"{schema}.{table}")
    if not chosen:
        raise ValueError("columns is empty: name at least one column, or pass None for all.")
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in chosen), sql.Identifier(schema, table)
    )
    params: tuple = ()
    if month is not None:
        if "month" not in available:
            raise ValueError(f"{schema}.{table} has no month column: call without month=.")
        months = [month] if isinstance(month, str) else list(month)
        query += sql.SQL(" WHERE {} = ANY(%s)").format(sql.Identifier("month"))
        params = (months,)
    order = [c for c in ("applied_at", "application_id") if c in available]
    if order:
        query += sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(sql.Identifier(c) for c in order))
    return read_sql(conn, query, params or None)
