"""Named drift scenarios: what each changes, from which month, and how callers switch them.

The names follow the taxonomy of *Designing Machine Learning Systems* (chapter 8), for a joint
distribution P(x, y) = P(y | x) P(x) = P(x | y) P(y):

- ``covariate_shift``: P(x) changes, P(y | x) does not (who applies changes, not what risk means);
- ``label_shift``: P(y) changes, P(x | y) does not (more applicants who will default, each looking
  like the defaulters before them), so P(x) moves with P(y);
- ``concept_drift``: P(y | x) changes, P(x) does not (the same applicant is a different risk).

Each scenario is on by default and starts at a fixed calendar month, so ``2024-01`` .. ``2025-03``
is drift-free (the false-alarm period). Months are handled as strings ``YYYY-MM`` at the edges and
as absolute month numbers (``year * 12 + month - 1``) inside the generator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mlsd.errors import ConfigError

__all__ = [
    "COVARIATE_SHIFT_PARTNER_SHARE",
    "SCENARIOS",
    "active",
    "month_number",
    "month_string",
    "resolve_scenarios",
]

SCENARIOS: dict[str, dict[str, str]] = {
    "covariate_shift": {
        "start_month": "2025-04",
        "description": (
            "Covariate shift, P(x) changes: a new channel, partner_app, acquires 40% of new customers "
            "(about 30% of applications): younger applicants (mean age about 34) with about 40% lower "
            "monthly income. The label model P(y | x) is unchanged."
        ),
    },
    "label_shift": {
        "start_month": "2025-07",
        "description": (
            "Label shift, P(y) changes and P(x | y) does not: hard times bring more applicants who will "
            "default. Applicants are drawn by their outcome (every would-be defaulter of the month's "
            "population applies, a would-be repayer with probability 1/2), so the odds of default double "
            "(about 8% to about 15% with the covariate shift) and the inputs move towards the defaulters' "
            "profile while each class looks as before."
        ),
    },
    "concept_drift": {
        "start_month": "2025-10",
        "description": (
            "Concept drift, P(y | x) changes and P(x) does not: layoffs in well-paid jobs turn the effect "
            "of monthly income around (its coefficient goes from -0.25 to +2.0: a high income now signals "
            "risk), with the intercept lowered so that the default rate of the same applicants stays about "
            "the same. A model trained before it ranks applicants worse."
        ),
    },
}

# Renamed scenarios: an old name gets an error that says what it is called now.
_RENAMED = {"prior_shift": "label_shift"}

# Share of new customers acquired through partner_app while the covariate shift is active.
COVARIATE_SHIFT_PARTNER_SHARE = 0.40


def month_number(month: str) -> int:
    """``"2024-03"`` -> ``2024 * 12 + 2``.

    Examples
    --------
    >>> month_string(month_number("2024-12") + 1)
    '2025-01'
    """
    try:
        year, mon = (int(part) for part in str(month).split("-"))
        if not 1 <= mon <= 12:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{month!r} is not a month: write it as YYYY-MM, e.g. '2025-04'.") from None
    return year * 12 + mon - 1


def month_string(number: int) -> str:
    """Inverse of :func:`month_number`."""
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


def resolve_scenarios(scenarios: Any = None) -> dict[str, dict[str, Any]]:
    """Resolve the ``scenarios`` argument of the generator into one record per scenario.

    Parameters
    ----------
    scenarios : None, iterable of str, or mapping
        ``None`` enables every scenario at its default month. An iterable of names (``[]`` for
        none) enables exactly those. A mapping ``{name: value}`` overrides the named scenarios and
        leaves the others at their defaults: ``value`` is a bool (on/off), a month string (on, from
        that month) or a mapping with ``enabled`` and/or ``start_month``.

    Returns
    -------
    dict
        ``{name: {"enabled": bool, "start_month": "YYYY-MM", "description": str}}`` in the order of
        :data:`SCENARIOS`.

    Raises
    ------
    ConfigError
        For an unknown scenario name or an unusable value.

    Examples
    --------
    >>> {k: v["enabled"] for k, v in resolve_scenarios(["label_shift"]).items()}
    {'covariate_shift': False, 'label_shift': True, 'concept_drift': False}
    """
    out = {name: {"enabled": True, **spec} for name, spec in SCENARIOS.items()}
    if scenarios is None:
        return out
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    if isinstance(scenarios, Mapping):
        items = scenarios.items()
    elif isinstance(scenarios, Iterable):
        names = list(scenarios)
        for record in out.values():
            record["enabled"] = False
        items = [(name, True) for name in names]
    else:
        raise ConfigError(f"scenarios={scenarios!r}: pass None, a list of scenario names or a mapping.")
    for name, value in items:
        if name not in out:
            hint = (
                f" ({name} is called {_RENAMED[name]} since generator 2.0: it was a concept drift, not a "
                "label shift)"
                if name in _RENAMED
                else ""
            )
            raise ConfigError(f"Unknown drift scenario {name!r}{hint}: choose from {', '.join(SCENARIOS)}.")
        if isinstance(value, bool):
            out[name]["enabled"] = value
        elif isinstance(value, str):
            out[name].update(enabled=True, start_month=month_string(month_number(value)))
        elif isinstance(value, Mapping):
            unknown = set(value) - {"enabled", "start_month", "description"}
            if unknown:
                raise ConfigError(
                    f"Scenario {name!r}: unknown keys {sorted(unknown)}; use enabled, start_month."
                )
            if "start_month" in value:
                out[name]["start_month"] = month_string(month_number(value["start_month"]))
            out[name]["enabled"] = bool(value.get("enabled", True))
        else:
            raise ConfigError(
                f"Scenario {name!r}: use True/False, a month 'YYYY-MM' or a mapping, not {value!r}."
            )
    return out


def active(scenarios: Mapping[str, Mapping[str, Any]], name: str, month: str | int) -> bool:
    """Whether scenario ``name`` is enabled and has started by ``month``."""
    record = scenarios[name]
    number = month if isinstance(month, int) else month_number(month)
    return bool(record["enabled"]) and number >= month_number(record["start_month"])
