"""Tables, columns, categories and defect rules of the course dataset (see ``CONTRACT.md``).

Everything here is a constant that the generator, the pipelines and the tests import, so that the
three agree by construction rather than by copy (and :func:`arrow_schema`, the same columns as
Arrow types, for the writer and the reader of landing files). The silver rules themselves are written out in the
docstring of :mod:`mlsd.data` and in ``CONTRACT.md``; the constants below are their parameters.
"""

from __future__ import annotations

__all__ = [
    "CATEGORY_CANONICAL",
    "CATEGORY_COLUMNS",
    "CATEGORY_VALUES",
    "CATEGORY_WEIGHTS",
    "COLUMNS",
    "DEFECTS_BY_TABLE",
    "DEFECT_RATES",
    "DEFECT_TYPES",
    "EVENT_TIME_COLUMNS",
    "EXTRA_NULL_COLUMNS",
    "ID_FORMATS",
    "IMPOSSIBLE_VALUE_RULES",
    "LATE_COLUMNS",
    "NATURALLY_NULLABLE",
    "NEAR_DUPLICATE_CHANGES",
    "NULL_CATEGORY",
    "PRIMARY_KEYS",
    "SENTINEL_CODES",
    "TABLES",
    "arrow_schema",
    "spelling_variants",
]

TABLES = ("customers", "applications", "bureau", "repayments", "outcomes")

# Landing columns in file order, with their logical type. Parquet files hold exactly these columns
# (the ``month`` of a file is its hive partition, ``month=YYYY-MM``); CSV files add ``month`` last.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "customers": (
        ("customer_id", "string"),
        ("signup_at", "timestamp"),
        ("birth_date", "date"),
        ("region", "string"),
        ("ingested_at", "timestamp"),
    ),
    "applications": (
        ("application_id", "string"),
        ("customer_id", "string"),
        ("applied_at", "timestamp"),
        ("channel", "string"),
        ("purpose", "string"),
        ("amount", "float64"),
        ("term_months", "int16"),
        ("region", "string"),
        ("ingested_at", "timestamp"),
    ),
    "bureau": (
        ("snapshot_id", "string"),
        ("customer_id", "string"),
        ("pulled_at", "timestamp"),
        ("revolving_utilization", "float64"),
        ("debt_ratio", "float64"),
        ("monthly_income", "float64"),
        ("open_credit_lines", "int16"),
        ("real_estate_loans", "int16"),
        ("dependents", "int16"),
        ("late_30_59", "int16"),
        ("late_60_89", "int16"),
        ("late_90", "int16"),
        ("age", "int16"),
        ("ingested_at", "timestamp"),
    ),
    "repayments": (
        ("application_id", "string"),
        ("due_date", "date"),
        ("amount_due", "float64"),
        ("amount_paid", "float64"),
        ("days_late", "int16"),
        ("ingested_at", "timestamp"),
    ),
    "outcomes": (
        ("application_id", "string"),
        ("observed_at", "timestamp"),
        ("serious_dlq", "int16"),
        ("ingested_at", "timestamp"),
    ),
}

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "applications": ("application_id",),
    "bureau": ("snapshot_id",),
    "repayments": ("application_id", "due_date"),
    "outcomes": ("application_id",),
}

# The column whose month is the row's own month; a row whose file ``month`` is later arrived late.
EVENT_TIME_COLUMNS = {
    "customers": "signup_at",
    "applications": "applied_at",
    "bureau": "pulled_at",
    "repayments": "due_date",
    "outcomes": "observed_at",
}

# id prefix and number of digits
ID_FORMATS = {"customer_id": ("C", 8), "application_id": ("A", 10), "snapshot_id": ("S", 10)}

# Columns that are NULL in clean data (not defects): GMSC's missing income and dependents.
NATURALLY_NULLABLE = {"bureau": ("monthly_income", "dependents")}

LATE_COLUMNS = ("late_30_59", "late_60_89", "late_90")
SENTINEL_CODES = (96, 98)

# ----------------------------------------------------------------------------------------------
# Categories. Canonical values are lower case with underscores; weights give a Zipf-like long tail.
# ``partner_app`` exists only under the covariate-shift scenario.
CATEGORY_VALUES: dict[str, tuple[str, ...]] = {
    "channel": (
        "web", "mobile", "branch", "broker", "call_centre", "partner_x", "affiliate", "comparison_site",
        "email_campaign", "direct_mail", "employer_scheme", "kiosk", "social_media", "referral",
        "partner_app",
    ),
    "purpose": (
        "debt_consolidation", "credit_card", "home_improvement", "other", "car", "medical",
        "small_business", "education", "wedding", "moving", "vacation",
    ),
    "region": (
        "capital", "north_west", "south_east", "midlands", "north_east", "south_west", "east",
        "yorkshire", "scotland", "wales", "northern_ireland", "highlands", "islands", "borders",
    ),
}  # fmt: skip
CATEGORY_WEIGHTS: dict[str, tuple[float, ...]] = {
    "channel": (
        0.36,
        0.24,
        0.15,
        0.09,
        0.05,
        0.03,
        0.02,
        0.018,
        0.012,
        0.008,
        0.006,
        0.004,
        0.003,
        0.002,
        0.0,
    ),
    "purpose": (0.38, 0.20, 0.10, 0.08, 0.07, 0.05, 0.035, 0.03, 0.02, 0.02, 0.015),
    "region": tuple(round(1.0 / (k + 1), 6) for k in range(14)),
}
CATEGORY_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("region",),
    "applications": ("channel", "purpose", "region"),
}
NULL_CATEGORY = "unknown"  # silver maps a NULL category (an extra-NULL defect) to this value

# Misspellings that lower(trim()) does not fix; the mapping table sends them to the canonical value.
_MISSPELLINGS = {
    "call_centre": ("call center", "Call_Center", "callcentre"),
    "comparison_site": ("comparison-site", "Price Comparison"),
    "debt_consolidation": ("debt consolidation", "Debt-Consolidation", "debt consol"),
    "credit_card": ("creditcard", "Credit Card"),
    "home_improvement": ("home improvements", "Home Improvement"),
    "small_business": ("small business", "Small-Business"),
    "north_west": ("north-west", "North West", "NW"),
    "north_east": ("north-east", "North East", "NE"),
    "south_east": ("south-east", "South East", "SE"),
    "south_west": ("south-west", "South West", "SW"),
    "northern_ireland": ("northern ireland", "N. Ireland"),
    "capital": ("Capital City",),
}


def spelling_variants(value: str) -> tuple[str, ...]:
    """Inconsistent spellings of a canonical category value, as injected by the generator.

    Every variant differs from ``value`` and maps back to it through
    ``CATEGORY_CANONICAL[column][variant.strip().lower()]``.

    Examples
    --------
    >>> spelling_variants("web")
    ('WEB', 'Web', ' web', 'web ')
    """
    out = [value.upper(), value.title(), " " + value, value + " "]
    if "_" in value:
        out += [value.replace("_", " ").title(), value.replace("_", "-")]
    out += list(_MISSPELLINGS.get(value, ()))
    seen: dict[str, None] = {}
    for v in out:
        if v != value:
            seen.setdefault(v)
    return tuple(seen)


def _canonical_maps() -> dict[str, dict[str, str]]:
    maps: dict[str, dict[str, str]] = {}
    for column, values in CATEGORY_VALUES.items():
        mapping: dict[str, str] = {}
        for value in values:
            for variant in (value, *spelling_variants(value)):
                key = variant.strip().lower()
                if mapping.setdefault(key, value) != value:  # pragma: no cover - guards the tables above
                    raise ValueError(f"spelling {variant!r} maps to two {column} values")
        maps[column] = dict(sorted(mapping.items()))
    return maps


# column -> {lower(trim(raw value)): canonical value}; identity entries included, so a value that
# is not a key is not a known category.
CATEGORY_CANONICAL: dict[str, dict[str, str]] = _canonical_maps()

# ----------------------------------------------------------------------------------------------
# Defects
DEFECT_TYPES = (
    "exact_duplicates",
    "near_duplicates",
    "late_arriving",
    "category_spellings",
    "impossible_values",
    "extra_nulls",
    "sentinel_codes",
)
# Share of a month's clean rows that receive each injected defect (counts are binomial draws and
# are recorded exactly in the manifest). ``sentinel_codes`` is not injected: it is part of the
# GMSC-like bureau data (about 0.2% of snapshots) and is counted all the same.
DEFECT_RATES = {
    "exact_duplicates": 0.004,
    "near_duplicates": 0.003,
    "late_arriving": 0.01,
    "category_spellings": 0.02,
    "impossible_values": 0.002,
    "extra_nulls": 0.004,
}
DEFECTS_BY_TABLE: dict[str, tuple[str, ...]] = {
    "customers": (
        "exact_duplicates",
        "near_duplicates",
        "late_arriving",
        "category_spellings",
        "extra_nulls",
    ),
    "applications": (
        "exact_duplicates",
        "near_duplicates",
        "late_arriving",
        "category_spellings",
        "impossible_values",
        "extra_nulls",
    ),
    "bureau": (
        "exact_duplicates",
        "near_duplicates",
        "late_arriving",
        "impossible_values",
        "extra_nulls",
        "sentinel_codes",
    ),
    "repayments": ("exact_duplicates", "near_duplicates", "late_arriving", "extra_nulls"),
    "outcomes": ("exact_duplicates", "near_duplicates", "late_arriving"),
}
# table -> column -> (operator, threshold): the value is impossible when ``value <op> threshold``.
IMPOSSIBLE_VALUE_RULES: dict[str, dict[str, tuple[str, float]]] = {
    "applications": {"amount": ("<=", 0)},
    "bureau": {"monthly_income": ("<", 0), "age": ("<", 18)},
}
# Columns that are never NULL in clean data; a NULL there is an injected extra NULL.
EXTRA_NULL_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("birth_date", "region"),
    "applications": ("channel", "purpose", "term_months", "region"),
    "bureau": ("revolving_utilization", "debt_ratio", "open_credit_lines", "real_estate_loans"),
    "repayments": ("amount_paid", "days_late"),
}
# What differs in the stale copy of a near duplicate (the copy with the earlier ``ingested_at``).
NEAR_DUPLICATE_CHANGES = {
    "customers": "birth_date moved by 1-30 days, or spaces added around region",
    "applications": "amount changed by 5-20% (rounded to 50), or spaces added around channel",
    "bureau": "revolving_utilization raised by 0.01-0.2",
    "repayments": "amount_paid set to 0 (or to amount_due when the correct value is 0)",
    "outcomes": "serious_dlq flipped",
}


def arrow_schema(table: str):
    """The Arrow schema of a landing table (Parquet files have exactly this schema)."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "timestamp": pa.timestamp("s", tz="UTC"),
        "date": pa.date32(),
        "float64": pa.float64(),
        "int16": pa.int16(),
    }
    return pa.schema([(name, types[kind]) for name, kind in COLUMNS[table]])
