"""Applicants' data in logs: how identifying it is, and pseudonymous ids for what leaves the database.

The book's chapter 11 ("The Human Side of Machine Learning") warns that "anonymised" data is
often not: a few ordinary attributes together single people out. A prediction log that keeps
an application id, or the inputs the model saw, is personal data. Two tools:

- :func:`reidentification_risk` measures, for sets of columns an outsider might know (age,
  region, month...), the share of rows whose combination fewer than ``k`` rows share: the rows
  that break *k-anonymity*, which a join with another source could identify.
- :func:`pseudonymise` replaces ids by a keyed hash (HMAC-SHA256) for an extract that leaves the
  database: the same id gives the same pseudonym under one key (joins still work), and without
  the key nobody can reverse it or recompute it from a list of ids, as they could a plain hash.

Session 6 (``06_explain_deploy_monitor.ipynb``) applies them to the prediction log.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

import pandas as pd

from mlsd._validation import check_columns

__all__ = ["pseudonymise", "reidentification_risk"]


def reidentification_risk(
    frame: pd.DataFrame, column_sets: Mapping[str, Sequence[str]], *, k: int = 5
) -> pd.DataFrame:
    """For each set of quasi-identifiers, the share of rows that fewer than ``k`` rows resemble.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per person (or application).
    column_sets : mapping of str to list of str
        Named sets of columns an outsider might know, e.g. ``{"age, region": ["age", "region"]}``.
    k : int
        A row is *exposed* when fewer than ``k`` rows (itself included) share its values.

    Returns
    -------
    pandas.DataFrame
        Index: the set's name; ``unique`` (share of rows alone with their values),
        ``below_k`` (share in groups smaller than ``k``), ``smallest_group`` and ``groups``.

    Examples
    --------
    >>> people = pd.DataFrame({"age": [30, 30, 30, 41], "region": ["n", "n", "s", "n"]})
    >>> reidentification_risk(people, {"age": ["age"], "age, region": ["age", "region"]}, k=2)
                 unique  below_k  smallest_group  groups
    age            0.25     0.25               1       2
    age, region    0.50     0.50               1       3
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    rows = {}
    for name, columns in column_sets.items():
        columns = list(columns)
        check_columns(frame, columns, what="The frame")
        sizes = frame.groupby(columns, dropna=False, observed=True)[columns[0]].transform("size")
        rows[name] = {
            "unique": float((sizes == 1).mean()),
            "below_k": float((sizes < k).mean()),
            "smallest_group": int(sizes.min()),
            "groups": int(frame[columns].drop_duplicates().shape[0]),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def pseudonymise(ids: Sequence[str] | pd.Series, key: str | bytes, *, length: int = 16) -> pd.Series:
    """Keyed-hash pseudonyms of ``ids``: stable under one key, not reversible without it.

    Parameters
    ----------
    ids : sequence of str
        Identifiers (application or customer ids).
    key : str or bytes
        A secret kept apart from the extract (a secrets manager, an environment variable); a
        new key gives unlinkable pseudonyms.
    length : int
        Hex characters kept (16 = 64 bits: collisions are negligible at the course's sizes).

    Examples
    --------
    >>> a = pseudonymise(["A0000000001", "A0000000002"], key="k1")
    >>> a.str.len().tolist(), a.iloc[0] == pseudonymise(["A0000000001"], key="k1").iloc[0]
    ([16, 16], True)
    >>> a.iloc[0] == pseudonymise(["A0000000001"], key="k2").iloc[0]
    False
    """
    if not key:
        raise ValueError(
            "pseudonymise needs a non-empty secret key: a plain hash of an id can be recomputed by anyone."
        )
    secret = key.encode() if isinstance(key, str) else key
    index = ids.index if isinstance(ids, pd.Series) else None
    values = [hmac.new(secret, str(i).encode(), hashlib.sha256).hexdigest()[:length] for i in ids]
    return pd.Series(values, index=index, name="pseudonym", dtype="string")
