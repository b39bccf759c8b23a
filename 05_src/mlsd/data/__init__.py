"""The course dataset: a lending business, generated offline at any scale.

Customers apply for loans (``applications``); a credit bureau reports on them (``bureau``,
GMSC-like: heavy-tailed utilisation and debt ratio, ~20% missing income, the 96/98 sentinel codes);
approved loans are repaid monthly (``repayments``); the label, 90 or more days past due within a
six-instalment performance window, is observed when it can be known: about 4 to 6 months after the
application for a default, 6 months for a loan that repays (``outcomes``: delayed labels, only when
observed before ``as_of``). Labels come from a documented logistic ground truth
(:func:`ground_truth`, :func:`true_probability`). Three drift scenarios (covariate shift, label
shift, concept drift) start at known months, and data-quality defects are injected at known rates and listed,
with exact counts, in ``manifest.json``. Same seed, same bytes. Table and column names are fixed in
``05_src/mlsd/data/CONTRACT.md``.

Silver rules
------------
Apply per table to the union of its landing files (``month`` is the file's landing month), in this
order. The manifest's ``defects[table][kind]`` equals the count in brackets.

1. **exact_duplicates** - rows equal in every landing column (``ingested_at`` and ``month``
   included): keep one. [rows removed]
2. **near_duplicates** - rows sharing the primary key (:data:`PRIMARY_KEYS`) after step 1: keep
   the row with the latest ``ingested_at`` (there are no ties); the others are stale versions with
   one field changed (:data:`NEAR_DUPLICATE_CHANGES`). [rows removed]
3. **late_arriving** - rows whose event month (:data:`EVENT_TIME_COLUMNS`, UTC, truncated to the
   month) is earlier than their file's ``month``: keep them and file them under their event month;
   an incremental load must neither drop nor double them. [rows]
4. **category_spellings** - in :data:`CATEGORY_COLUMNS`, a non-NULL value that is not canonical:
   replace ``v`` by ``CATEGORY_CANONICAL[column][lower(trim(v))]`` (every injected spelling is a
   key). [cells changed]
5. **impossible_values** - :data:`IMPOSSIBLE_VALUE_RULES` (``applications.amount <= 0``,
   ``bureau.monthly_income < 0``, ``bureau.age < 18``): set the cell to NULL. [cells]
6. **sentinel_codes** - bureau late counts of 96 or 98 (:data:`SENTINEL_CODES`; the three late
   columns carry the code together): set all three to NULL, "unknown". [rows]
7. **extra_nulls** - NULL cells in :data:`EXTRA_NULL_COLUMNS`, columns that are never NULL in clean
   data: category columns become :data:`NULL_CATEGORY` (``'unknown'``); other columns stay NULL.
   [cells] ``bureau.monthly_income`` and ``bureau.dependents`` are NULL by nature (GMSC): not
   defects, left as they are.

Every defect touches its own rows (no row carries two), and steps 5-7 touch different columns, so
after steps 1-2 their order does not matter. Counts in steps 3-7 are over rows surviving steps 1-2.

Example
-------
>>> import tempfile
>>> from mlsd.data import generate, read_landing
>>> with tempfile.TemporaryDirectory() as out:
...     manifest = generate(out, scale="tiny", seed=7, progress=False)
...     applications = read_landing(out, "applications")
>>> len(applications) == manifest["rows"]["applications"]
True
>>> manifest["defects"]["applications"]["category_spellings"] > 0
True
"""

from mlsd.data._generate import (
    FORMATS,
    GENERATOR_VERSION,
    SCALES,
    arrow_schema,
    generate,
    iter_month_frames,
)
from mlsd.data._scenarios import SCENARIOS, resolve_scenarios
from mlsd.data._schema import (
    CATEGORY_CANONICAL,
    CATEGORY_COLUMNS,
    CATEGORY_VALUES,
    COLUMNS,
    DEFECT_RATES,
    DEFECT_TYPES,
    DEFECTS_BY_TABLE,
    EVENT_TIME_COLUMNS,
    EXTRA_NULL_COLUMNS,
    IMPOSSIBLE_VALUE_RULES,
    LATE_COLUMNS,
    NATURALLY_NULLABLE,
    NEAR_DUPLICATE_CHANGES,
    NULL_CATEGORY,
    PRIMARY_KEYS,
    SENTINEL_CODES,
    TABLES,
    spelling_variants,
)
from mlsd.data._truth import (
    COEFFICIENTS,
    INTERCEPT,
    TRANSFORMS,
    TRUTH_INPUT_COLUMNS,
    ground_truth,
    true_probability,
    truth_features,
)
from mlsd.data.manifest import landing_dir, read_landing, read_manifest

__all__ = [
    "CATEGORY_CANONICAL",
    "CATEGORY_COLUMNS",
    "CATEGORY_VALUES",
    "COEFFICIENTS",
    "COLUMNS",
    "DEFECTS_BY_TABLE",
    "DEFECT_RATES",
    "DEFECT_TYPES",
    "EVENT_TIME_COLUMNS",
    "EXTRA_NULL_COLUMNS",
    "FORMATS",
    "GENERATOR_VERSION",
    "IMPOSSIBLE_VALUE_RULES",
    "INTERCEPT",
    "LATE_COLUMNS",
    "NATURALLY_NULLABLE",
    "NEAR_DUPLICATE_CHANGES",
    "NULL_CATEGORY",
    "PRIMARY_KEYS",
    "SCALES",
    "SCENARIOS",
    "SENTINEL_CODES",
    "TABLES",
    "TRANSFORMS",
    "TRUTH_INPUT_COLUMNS",
    "arrow_schema",
    "generate",
    "ground_truth",
    "iter_month_frames",
    "landing_dir",
    "read_landing",
    "read_manifest",
    "resolve_scenarios",
    "spelling_variants",
    "true_probability",
    "truth_features",
]
