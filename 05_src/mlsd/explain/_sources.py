"""Which raw column each feature after preprocessing comes from (pure: reads fitted transformers)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from mlsd.explain._inputs import _split
from mlsd.features import FeatureCross

MISSING_PREFIX = "missingindicator_"
"""Prefix scikit-learn's ``MissingIndicator`` puts before a column name."""


def _column_names(ct, spec) -> list[str]:
    """Names of the input columns a ColumnTransformer branch selects (names, ints, masks, slices)."""
    names_in = getattr(ct, "feature_names_in_", None)
    if isinstance(spec, str):
        return [spec]
    if isinstance(spec, slice):
        return [str(c) for c in np.asarray(names_in)[spec]] if names_in is not None else []
    values = list(np.atleast_1d(np.asarray(spec, dtype=object))) if spec is not None else []
    if values and all(isinstance(v, (bool, np.bool_)) for v in values):
        return (
            [str(c) for c, keep in zip(names_in, values, strict=True) if keep] if names_in is not None else []
        )
    if values and all(isinstance(v, (int, np.integer)) for v in values):
        return [str(names_in[i]) for i in values] if names_in is not None else []
    return [str(v) for v in values]


def _crossed_names(transformer) -> list[str]:
    """Column names produced by the mlsd ``FeatureCross`` steps inside a branch (its own sources)."""
    steps = [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
    names: list[str] = []
    for step in steps:
        if isinstance(step, FeatureCross):
            names.extend(str(n) for n in step.get_feature_names_out())
    return names


def _match_source(name: str, inputs: list[str], candidates: list[str]) -> str:
    """The source of one output column: longest candidate it equals or starts with (``<c>_``)."""
    if name.startswith(MISSING_PREFIX) and name[len(MISSING_PREFIX) :] in candidates:
        return name[len(MISSING_PREFIX) :]
    if name in candidates:
        return name
    prefixed = [c for c in candidates if name.startswith(f"{c}_")]
    if prefixed:
        return max(prefixed, key=len)
    if len(inputs) == 1:
        return inputs[0]
    return name


def _column_transformer_sources(ct) -> dict[str, str]:
    """Output column -> source column for a fitted ``ColumnTransformer``."""
    out_names = [str(n) for n in ct.get_feature_names_out()]
    sources: dict[str, str] = {}
    for branch, transformer, spec in ct.transformers_:
        block = ct.output_indices_.get(branch)
        if block is None or block.stop <= block.start:  # dropped, or no output columns
            continue
        inputs = _column_names(ct, spec)
        names = out_names[block]
        passthrough = isinstance(transformer, str)  # "passthrough": the inputs, unchanged
        try:  # the branch's own names, without any "branch__" prefix the ColumnTransformer adds
            inner = [str(n) for n in (inputs if passthrough else transformer.get_feature_names_out(inputs))]
        except (AttributeError, TypeError, ValueError):
            inner = []
        if len(inner) != len(names):
            inner = [n.removeprefix(f"{branch}__") for n in names]
        candidates = inputs if passthrough else [*inputs, *_crossed_names(transformer)]
        for full, own in zip(names, inner, strict=True):
            sources[full] = _match_source(own, inputs, candidates)
    return sources


def _guess_source(name: str) -> str:
    """Best guess without the preprocessor: strip the missing-indicator prefix, else keep the name."""
    return name.removeprefix(MISSING_PREFIX)


def _names_out(preprocessing) -> list[str]:
    try:
        return [str(n) for n in preprocessing.get_feature_names_out()]
    except (AttributeError, TypeError, ValueError) as err:
        raise ValueError(
            f"Cannot name the columns {type(preprocessing).__name__} produces ({err}): "
            "use transformers with get_feature_names_out, e.g. mlsd.features.make_preprocessor."
        ) from None


def _sources_for(preprocessing, names: Sequence[str]) -> dict[str, str]:
    """Map each name after ``preprocessing`` to its source, via the first ColumnTransformer in it."""
    steps = []
    if isinstance(preprocessing, Pipeline):
        steps = [s for _, s in preprocessing.steps]
    elif preprocessing is not None:
        steps = [preprocessing]
    mapping: dict[str, str] = {}
    for step in steps:
        if isinstance(step, ColumnTransformer):
            mapping = _column_transformer_sources(step)
            break
    return {str(n): mapping.get(str(n), _guess_source(str(n))) for n in names}


def feature_sources(pipeline) -> dict[str, str]:
    """Map every feature the model sees to the raw column it comes from.

    Read from the fitted ``ColumnTransformer`` inside the pipeline: each of its branches
    knows its input columns, and each output name is matched to the longest input name
    it equals or starts with (``channel_web`` -> ``channel``,
    ``applied_at_hour`` -> ``applied_at``); ``missingindicator_<c>`` maps to ``c``;
    a branch with a single input maps every output to it; a crossed feature
    (``channel_x_region_web_x_north``) maps to its cross, ``channel_x_region``.

    Parameters
    ----------
    pipeline : fitted Pipeline or ColumnTransformer
        A pipeline (its last step is the model) or the preprocessor itself.

    Returns
    -------
    dict of str to str
        ``{feature after preprocessing: source column}``, in the model's column order.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlsd.features import make_preprocessor
    >>> train = pd.DataFrame({"income": [1.0, None, 3.0], "channel": ["web", "branch", "web"]})
    >>> feature_sources(make_preprocessor(numeric=["income"], categorical=["channel"]).fit(train))
    {'income': 'income', 'missingindicator_income': 'income', 'channel_branch': 'channel', 'channel_web': 'channel'}
    """
    if isinstance(pipeline, ColumnTransformer):
        _split(pipeline)  # fitted?
        preprocessing = pipeline
    else:
        preprocessing, _ = _split(pipeline)
    if preprocessing is None:
        names = getattr(pipeline, "feature_names_in_", None)
        if names is None:
            raise ValueError("The model was fitted without column names: fit it on a DataFrame.")
        return {str(n): str(n) for n in names}
    return _sources_for(preprocessing, _names_out(preprocessing))


def _bare(name: str) -> str:
    """A feature name without the ``branch__`` prefix of ``verbose_feature_names_out=True``."""
    return name.split("__", 1)[1] if "__" in name else name
