"""All SQL the project runs works on PostgreSQL 14 and newer.

The embedded server is PostgreSQL 18, but learners' and teams' servers vary, so SQL
files and SQL in the package must not use features added after PostgreSQL 14. CI
only has the embedded server, so this is a static check for the later features a
course author would most likely reach for.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlsd.config import repo_root

NEWER_THAN_14 = {
    r"\bMERGE\s+INTO\b": "MERGE (PostgreSQL 15): use INSERT ... ON CONFLICT, or DELETE then INSERT",
    r"\bNULLS\s+NOT\s+DISTINCT\b": "UNIQUE NULLS NOT DISTINCT (PostgreSQL 15)",
    r"\bHEADER\s+MATCH\b": "COPY ... HEADER MATCH (PostgreSQL 15)",
    r"\bregexp_(count|instr|like|substr)\s*\(": "regexp_count/instr/like/substr (PostgreSQL 15)",
    r"\bany_value\s*\(": "any_value() (PostgreSQL 16): use min() or max()",
    r"\bpg_input_is_valid\s*\(": "pg_input_is_valid() (PostgreSQL 16)",
    r"\brandom_normal\s*\(": "random_normal() (PostgreSQL 16)",
    r"\barray_(sample|shuffle)\s*\(": "array_sample/array_shuffle (PostgreSQL 16)",
    r"\bdate_(add|subtract)\s*\(": "date_add/date_subtract (PostgreSQL 16): use + interval",
    r"\bSYSTEM_USER\b": "SYSTEM_USER (PostgreSQL 16)",
    r"\bJSON_(TABLE|OBJECT|ARRAY|SCALAR|SERIALIZE|QUERY|VALUE|EXISTS)\s*\(": "SQL/JSON functions (PostgreSQL 16/17)",
    r"\bIS\s+(NOT\s+)?JSON\b": "IS JSON (PostgreSQL 16)",
    r"\bON_ERROR\b": "COPY ... ON_ERROR (PostgreSQL 17): send bad rows to bronze.rejects instead",
    r"\bLOG_VERBOSITY\b": "COPY ... LOG_VERBOSITY (PostgreSQL 17)",
    r"\bREJECT_LIMIT\b": "COPY ... REJECT_LIMIT (PostgreSQL 18)",
    r"\buuidv7\s*\(": "uuidv7() (PostgreSQL 18)",
    r"\bRETURNING\s+(OLD|NEW)\b": "RETURNING OLD/NEW (PostgreSQL 18)",
    r"\bWITHOUT\s+OVERLAPS\b": "WITHOUT OVERLAPS (PostgreSQL 18)",
    r"\bGENERATED\s+ALWAYS\s+AS\s*\(.*\)\s*VIRTUAL\b": "virtual generated columns (PostgreSQL 18)",
}


def newer_features(text: str) -> list[str]:
    """Names of post-14 features found in ``text`` (comments included: they get copied)."""
    return [why for pattern, why in NEWER_THAN_14.items() if re.search(pattern, text, re.IGNORECASE)]


def project_sql_sources() -> list[Path]:
    root = repo_root() / "05_src"
    return sorted((root / "sql").rglob("*.sql")) + sorted((root / "mlsd").rglob("*.py"))


@pytest.mark.parametrize("path", project_sql_sources(), ids=lambda p: str(p.relative_to(repo_root())))
def test_sql_runs_on_postgresql_14(path: Path):
    found = newer_features(path.read_text(encoding="utf-8"))
    assert not found, f"{path.name} uses {found}"


@pytest.mark.parametrize(
    "statement",
    [
        "MERGE INTO silver.loans t USING bronze.loans s ON t.id = s.id WHEN MATCHED THEN UPDATE SET x = 1",
        "COPY bronze.x FROM STDIN WITH (FORMAT csv, ON_ERROR ignore)",
        "SELECT any_value(region) FROM silver.applications GROUP BY month",
    ],
)
def test_the_check_catches_newer_features(statement):
    assert newer_features(statement)


def test_the_check_passes_features_of_14():
    assert not newer_features(
        "INSERT INTO t SELECT DISTINCT ON (id) * FROM s ON CONFLICT (id) DO UPDATE SET x = excluded.x; "
        "SELECT * FROM a LEFT JOIN LATERAL (SELECT 1) b ON true"
    )
