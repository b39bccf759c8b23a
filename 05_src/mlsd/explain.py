"""Explain a fitted model: SHAP values, reason codes, permutation importance, PDP and ICE.

Session 6 ("Explanations, deployment and monitoring") uses this module; the book treats
feature importance in chapter 5 and explaining decisions to the people they affect in
chapter 11. Two families of tools:

- **SHAP** (:func:`explain`) splits one prediction into a contribution per feature of the
  model's input (the columns *after* preprocessing: ``channel_web``,
  ``missingindicator_monthly_income``). From it: :func:`global_importance` (mean
  ``|SHAP|`` per feature, optionally summed back to the source column),
  :func:`beeswarm` and :func:`waterfall` figures, and :func:`reason_codes`, the features
  that pushed one applicant's risk up most, as lenders give adverse-action reasons.
- **Model-agnostic checks on the raw columns**, through the whole pipeline:
  :func:`permutation_importance_table` (how much the score drops when a column is
  shuffled), :func:`pdp_ice` and :func:`partial_dependence_table` (how the prediction
  moves as one column varies, on average and row by row).

Which SHAP explainer and which output scale
-------------------------------------------
:func:`explain` picks the explainer from the final estimator (:func:`explainer_kind`) and
explains the model's own additive output, so that ``base value + sum of SHAP values``
equals that output exactly:

- gradient-boosted trees (HistGradientBoosting, GradientBoosting, XGBoost, LightGBM,
  CatBoost): ``shap.TreeExplainer``, exact; classifiers in **log-odds**;
- random forests, extra trees, single decision trees: ``shap.TreeExplainer``;
  classifiers in **probability** (their trees vote probabilities);
- linear models: ``shap.LinearExplainer`` on a background sample; logistic regression
  (and ``SGDClassifier(loss="log_loss")``) in **log-odds**, other linear classifiers
  (``LinearSVC``) in their **decision function**;
- anything else (k-NN, SVC, MLP, a calibrated model): ``shap.Explainer`` on the model's
  output function with an independent masker over a background sample (exact for up to
  10 features, permutation sampling beyond); classifiers in **probability**;
- regressors: the same explainers, in units of the **prediction**.

Log-odds for the models whose output *is* a sum on the log-odds scale (boosting,
logistic regression); probability where the model averages probabilities (forests) or has
no log-odds at all (k-NN returns probabilities of exactly 0 and 1). The scale travels with
the explanation in ``explanation.output_names`` and is printed by :func:`reason_codes` and
the figures. Compare importances across models only on the same scale.

Example
-------
>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> from sklearn.pipeline import make_pipeline
>>> from mlsd.features import make_preprocessor
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"x1": rng.normal(size=300), "x2": rng.normal(size=300)})
>>> y = (X["x1"] + 0.1 * rng.normal(size=300) > 0).astype(int)
>>> model = make_pipeline(make_preprocessor(numeric=["x1", "x2"]), LogisticRegression()).fit(X, y)
>>> explanation = explain(model, X.head(50))
>>> explanation.output_names
'log-odds'
>>> global_importance(explanation)["feature"].tolist()
['x1', 'x2']
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlsd._validation import check_columns

if TYPE_CHECKING:
    import shap
    from matplotlib.figure import Figure

__all__ = [
    "aggregate_by_source",
    "beeswarm",
    "explain",
    "explainer_kind",
    "feature_sources",
    "global_importance",
    "partial_dependence_table",
    "pdp_ice",
    "permutation_importance_table",
    "reason_codes",
    "waterfall",
]

MISSING_PREFIX = "missingindicator_"
"""Prefix scikit-learn's ``MissingIndicator`` puts before a column name."""

_GRADIENT_BOOSTING = (
    "HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
)
_AVERAGING_TREES = (
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "ExtraTreeClassifier",
    "ExtraTreeRegressor",
)
_TREE_LIBRARIES = ("xgboost", "lightgbm", "catboost")
# In sklearn.linear_model but not a linear function of the input (a log link, a meta-estimator).
_NOT_LINEAR = ("PoissonRegressor", "GammaRegressor", "TweedieRegressor", "RANSACRegressor")
_LINEAR_SVM = ("LinearSVC", "LinearSVR")

_RISK_UNITS = ("log-odds", "probability", "decision function")


# -- shap and matplotlib, imported lazily and quietly --------------------------------


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the warnings shap and numba raise about themselves (noise in a graded notebook).

    Only warnings issued from shap's, numba's and tqdm's own modules are dropped; warnings
    from scikit-learn or the caller's code still show.
    """
    with warnings.catch_warnings():
        for module in (r"shap(\..*)?", r"numba(\..*)?", r"tqdm(\..*)?"):
            warnings.filterwarnings("ignore", module=module)
        yield


def _shap():
    """``import shap`` (slow: a few seconds), with its import-time warnings silenced."""
    with warnings.catch_warnings():
        # shap's colour maps use matplotlib calls that are pending deprecation; numba may warn too.
        warnings.simplefilter("ignore")
        import shap

    return shap


# -- input checks ---------------------------------------------------------------------


def _split(pipeline) -> tuple[Any, Any]:
    """``(preprocessing or None, final estimator)`` of a fitted pipeline or a bare estimator."""
    from sklearn.exceptions import NotFittedError
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(pipeline, "fit"):
        raise ValueError(f"Expected a fitted scikit-learn Pipeline, got {type(pipeline).__name__}.")
    try:
        check_is_fitted(pipeline)
    except NotFittedError:
        raise ValueError(
            f"The {type(pipeline).__name__} is not fitted: call .fit(X_train, y_train) before explaining it."
        ) from None
    if isinstance(pipeline, Pipeline):
        model = pipeline.steps[-1][1]
        if model is None or isinstance(model, str):
            raise ValueError("The pipeline's last step is 'passthrough': it needs an estimator to explain.")
        preprocessing = pipeline[:-1] if len(pipeline.steps) > 1 else None
        return preprocessing, model
    return None, pipeline


def _check_frame(X, what: str = "X") -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise ValueError(
            f"{what} must be a pandas DataFrame of the raw input columns, got {type(X).__name__}."
        )
    if len(X) == 0:
        raise ValueError(f"{what} has no rows: pass at least one row to explain.")
    return X


def _check_input_columns(pipeline, X: pd.DataFrame, what: str = "X") -> None:
    """Raise when ``X`` lacks a column the pipeline was fitted on."""
    expected = getattr(pipeline, "feature_names_in_", None)
    if expected is not None:
        check_columns(X, expected, what=what, hint="Pass the raw columns the pipeline was fitted on.")


def _classes(model) -> np.ndarray | None:
    from sklearn.base import is_classifier

    if not is_classifier(model):
        return None
    classes = getattr(model, "classes_", None)
    if classes is None or len(classes) != 2:
        n = "unknown" if classes is None else len(classes)
        raise ValueError(
            f"Only binary classifiers (and regressors) can be explained here; the model has {n} classes."
        )
    return classes


# -- which explainer ------------------------------------------------------------------


def explainer_kind(estimator) -> str:
    """The SHAP explainer family :func:`explain` uses for ``estimator`` (the final step).

    Parameters
    ----------
    estimator : scikit-learn-compatible estimator
        The model itself, not the pipeline around it.

    Returns
    -------
    {"tree", "linear", "model-agnostic"}
        ``"tree"``: ``shap.TreeExplainer`` (exact and fast); ``"linear"``:
        ``shap.LinearExplainer``; ``"model-agnostic"``: ``shap.Explainer`` on a function and
        a background sample (exact for up to 10 features, else permutation sampling).

    Examples
    --------
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> explainer_kind(HistGradientBoostingClassifier()), explainer_kind(KNeighborsClassifier())
    ('tree', 'model-agnostic')
    """
    cls = type(estimator)
    name, module = cls.__name__, cls.__module__
    if module.startswith("sklearn.") and name in (*_GRADIENT_BOOSTING, *_AVERAGING_TREES):
        return "tree"
    if module.split(".")[0] in _TREE_LIBRARIES:
        return "tree"
    linear_module = module.startswith("sklearn.linear_model") and name not in _NOT_LINEAR
    if linear_module or (module.startswith("sklearn.svm") and name in _LINEAR_SVM):
        return "linear"
    return "model-agnostic"


def _output_scale(model, kind: str) -> str:
    """What the SHAP values of ``model`` add up to (see the module docstring)."""
    if _classes(model) is None:
        return "prediction"
    name = type(model).__name__
    if kind == "tree":
        return "probability" if name in _AVERAGING_TREES else "log-odds"
    if kind == "linear":
        logistic = name in ("LogisticRegression", "LogisticRegressionCV") or (
            name == "SGDClassifier" and getattr(model, "loss", None) == "log_loss"
        )
        return "log-odds" if logistic else "decision function"
    return "probability" if hasattr(model, "predict_proba") else "decision function"


# -- feature names after preprocessing and their source columns -----------------------


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
    from sklearn.pipeline import Pipeline

    from mlsd.features import FeatureCross

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
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

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
    >>> from mlsd.features import make_preprocessor
    >>> train = pd.DataFrame({"income": [1.0, None, 3.0], "channel": ["web", "branch", "web"]})
    >>> feature_sources(make_preprocessor(numeric=["income"], categorical=["channel"]).fit(train))
    {'income': 'income', 'missingindicator_income': 'income', 'channel_branch': 'channel', 'channel_web': 'channel'}
    """
    from sklearn.compose import ColumnTransformer

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


# -- SHAP -------------------------------------------------------------------------------


def _model_input(preprocessing, X: pd.DataFrame) -> pd.DataFrame:
    """The model's input for ``X``: preprocessed, named, as floats."""
    if preprocessing is None:
        Xt = X
    else:
        Xt = preprocessing.transform(X)
        if not isinstance(Xt, pd.DataFrame):
            if hasattr(Xt, "toarray"):
                Xt = Xt.toarray()
            Xt = pd.DataFrame(np.asarray(Xt), columns=_names_out(preprocessing), index=X.index)
    non_numeric = [c for c in Xt.columns if not (pd.api.types.is_numeric_dtype(Xt[c]) or Xt[c].dtype == bool)]
    if non_numeric:
        raise ValueError(
            f"The model's input has non-numeric columns {non_numeric}: encode them in the preprocessing "
            "(e.g. categorical= in mlsd.features.make_preprocessor)."
        )
    Xt = Xt.astype("float64")
    Xt.columns = [str(c) for c in Xt.columns]
    return Xt


def _readable(value: Any) -> Any:
    """A value fit for display: ``"missing"`` for NaN/None, plain numbers otherwise."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return "missing"
    if value is pd.NA or value is pd.NaT:
        return "missing"
    return value


def _display_data(X: pd.DataFrame, Xt: pd.DataFrame, sources: Mapping[str, str]) -> np.ndarray:
    """Readable values per model feature: the raw value where the feature is its source column
    (``late_90`` before scaling), the model's input otherwise (0/1 flags, date parts, hashes)."""
    columns = []
    for name in Xt.columns:
        source = sources.get(name, name)
        # the source itself, scaled or imputed (``age``, or ``num__age`` with verbose names)
        raw = source in X.columns and (name == source or name.endswith(f"__{source}"))
        values = X[source] if raw else Xt[name]
        columns.append([_readable(v) for v in values.to_numpy(dtype=object)])
    return np.array(columns, dtype=object).T.reshape(len(Xt), len(Xt.columns))


def _sample(frame: pd.DataFrame, n: int, random_state) -> pd.DataFrame:
    return frame.sample(n=n, random_state=random_state) if len(frame) > n else frame


def _tree_shap(shap, model, Xt: pd.DataFrame):
    # Path-dependent TreeSHAP: exact, fast, and needs no background (the trees record how many
    # training rows took each branch). shap 0.51's interventional variant is not additive for
    # HistGradientBoosting (off by a constant), so it is not offered.
    explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
    result = explainer(Xt)
    return result.values, result.base_values, explainer


def _linear_shap(shap, model, Xt: pd.DataFrame, background: pd.DataFrame):
    masker = shap.maskers.Independent(background, max_samples=len(background))
    explainer = shap.LinearExplainer(model, masker)
    result = explainer(Xt)
    return result.values, result.base_values, explainer


def _agnostic_shap(shap, model, Xt: pd.DataFrame, background: pd.DataFrame, scale: str, random_state):
    from sklearn.utils import check_random_state

    columns = list(Xt.columns)

    def output(values: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(values, columns=columns)
        if scale == "probability":
            return model.predict_proba(frame)[:, 1]
        if scale == "decision function":
            return model.decision_function(frame)
        return model.predict(frame)

    masker = shap.maskers.Independent(background, max_samples=len(background))
    seed = None if random_state is None else int(check_random_state(random_state).randint(2**31 - 1))
    explainer = shap.Explainer(output, masker, feature_names=columns, seed=seed)
    call = {"silent": True}  # no tqdm progress bar on stderr
    if isinstance(explainer, shap.explainers.PermutationExplainer):
        call["max_evals"] = max(500, 2 * len(columns) + 1)
    result = explainer(Xt.to_numpy(), **call)
    return result.values, result.base_values, explainer


def explain(
    pipeline,
    X: pd.DataFrame,
    *,
    background: pd.DataFrame | None = None,
    max_background: int = 200,
    random_state: int | np.random.RandomState | None = 0,
) -> shap.Explanation:
    """SHAP values of a fitted pipeline's predictions for the rows of ``X``.

    ``X`` goes through the pipeline's preprocessing (every step but the last); the
    final estimator is explained on that input, so the features are the preprocessed
    columns (``channel_web``, ``missingindicator_monthly_income``). The explainer and the
    output scale follow from the estimator (see the module docstring and
    :func:`explainer_kind`); for every explainer, ``base_values + values.sum(axis=1)``
    equals the model's output on that scale.

    Parameters
    ----------
    pipeline : fitted Pipeline
        Preprocessing steps followed by a binary classifier or a regressor (a bare
        estimator works too; ``X`` is then its input).
    X : pandas.DataFrame
        Raw rows to explain (the columns the pipeline was fitted on). The cost grows
        with the rows: explain a sample of a few hundred to a few thousand.
    background : pandas.DataFrame, optional
        Raw reference rows: what "typical" means. SHAP values explain the difference
        between a row's output and the average output over the background (the base
        value). Default: a sample of ``X``. Tree models need none and ignore it: their
        base value is the average over the training rows, which the trees record
        (path-dependent TreeSHAP).
    max_background : int
        At most this many background rows (sampled with ``random_state``). The
        model-agnostic explainer costs about ``rows x evaluations x background``
        predictions (``2 ** features`` evaluations up to 10 features, 500 beyond): keep
        ``X`` and the background small for slow models (k-NN, SVC). Its first call in a
        session also compiles shap's numba code, which takes a few seconds.
    random_state : int, RandomState or None
        Seed for the background sample and the permutation explainer.

    Returns
    -------
    shap.Explanation
        ``values`` (rows x features), ``base_values`` (one per row), ``data`` (the
        model's input), ``display_data`` (readable values: raw ``late_90`` rather than
        its scaled value; ``"missing"`` for missing values), ``feature_names`` and
        ``output_names`` (the scale: ``"log-odds"``, ``"probability"``,
        ``"decision function"`` or ``"prediction"``). Two extra attributes, dropped when
        the explanation is sliced: ``feature_sources`` (feature -> raw column, see
        :func:`feature_sources`) and ``explainer_name`` (the shap class used).

    Raises
    ------
    ValueError
        When the pipeline is not fitted, ``X`` is not a DataFrame with the training
        columns, or the model is a classifier with more than two classes.

    Examples
    --------
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from mlsd.features import make_preprocessor
    >>> X = pd.DataFrame({"x": np.arange(100.0), "colour": ["red", "blue"] * 50})
    >>> y = (X["x"] > 50).astype(int)
    >>> prep = make_preprocessor(numeric=["x"], categorical=["colour"])
    >>> model = make_pipeline(prep, HistGradientBoostingClassifier(max_iter=20)).fit(X, y)
    >>> e = explain(model, X)
    >>> e.feature_names, e.output_names, e.explainer_name
    (['x', 'colour_blue', 'colour_red'], 'log-odds', 'TreeExplainer')
    """
    preprocessing, model = _split(pipeline)
    _check_frame(X)
    _check_input_columns(pipeline, X)
    if int(max_background) != max_background or max_background < 1:
        raise ValueError(f"max_background must be a positive whole number, got {max_background!r}.")
    kind = explainer_kind(model)
    scale = _output_scale(model, kind)  # also rejects multi-class classifiers
    Xt = _model_input(preprocessing, X)
    sources = _sources_for(preprocessing, Xt.columns)
    if background is not None:
        _check_frame(background, "background")
        _check_input_columns(pipeline, background, "background")
    reference = None
    if kind != "tree":
        rows = background if background is not None else X
        reference = _model_input(preprocessing, _sample(rows, int(max_background), random_state))

    shap = _shap()
    with _quiet():
        if kind == "tree":
            values, base, explainer = _tree_shap(shap, model, Xt)
        elif kind == "linear":
            values, base, explainer = _linear_shap(shap, model, Xt, reference)
        else:
            values, base, explainer = _agnostic_shap(shap, model, Xt, reference, scale, random_state)
    values = np.asarray(values, dtype=float)
    base = np.asarray(base, dtype=float)
    if values.ndim == 3:  # one slice per class (forests): keep the positive class
        values = values[:, :, -1]
        base = base[:, -1] if base.ndim == 2 else base[-1]
    base = base.reshape(-1)
    if base.size != len(Xt):
        base = np.full(len(Xt), base[0])
    explanation = shap.Explanation(
        values=values,
        base_values=base,
        data=Xt.to_numpy(),
        display_data=_display_data(X, Xt, sources),
        feature_names=list(Xt.columns),
        output_names=scale,
    )
    explanation.feature_sources = sources
    explanation.explainer_name = type(explainer).__name__
    return explanation


# -- global importance and grouping -----------------------------------------------------


def _check_explanation(explanation, ndim: int = 2) -> None:
    values = getattr(explanation, "values", None)
    if values is None or not hasattr(explanation, "feature_names"):
        raise ValueError(
            f"Expected a shap.Explanation (from mlsd.explain.explain), got {type(explanation).__name__}."
        )
    if np.ndim(values) != ndim:
        shape = np.shape(values)
        raise ValueError(
            f"Expected an explanation of shape (rows, features), got {shape}: "
            "pass the whole explanation returned by explain()."
        )
    if explanation.feature_names is None:
        raise ValueError("The explanation has no feature names: create it with mlsd.explain.explain.")


def _sources_of(explanation, sources: Mapping[str, str] | None) -> dict[str, str]:
    names = [str(n) for n in explanation.feature_names]
    known = sources if sources is not None else getattr(explanation, "feature_sources", None)
    if known is None:
        return {n: _guess_source(n) for n in names}
    return {n: str(known.get(n, _guess_source(n))) for n in names}


def _scale(explanation) -> str:
    scale = getattr(explanation, "output_names", None)
    return scale if isinstance(scale, str) else "SHAP value"


def _bare(name: str) -> str:
    """A feature name without the ``branch__`` prefix of ``verbose_feature_names_out=True``."""
    return name.split("__", 1)[1] if "__" in name else name


def _group_display(names: list[str], source: str, data: np.ndarray, display: np.ndarray) -> np.ndarray:
    """Readable value of a source from its columns: the column itself, or the one-hot category set."""
    names = [_bare(n) for n in names]
    if source in names:
        return display[:, names.index(source)]
    categories = [n[len(source) + 1 :] for n in names if n.startswith(f"{source}_")]
    one_hot = [i for i, n in enumerate(names) if n.startswith(f"{source}_")]
    if one_hot and len(one_hot) == len(names):
        block = data[:, one_hot]
        is_one_hot = np.isin(block, (0.0, 1.0)).all(axis=1) & (block.sum(axis=1) == 1)
        chosen = np.array(categories, dtype=object)[block.argmax(axis=1)]
        return np.where(is_one_hot, chosen, "other").astype(object)
    indicator = f"{MISSING_PREFIX}{source}"
    if indicator in names:  # the indicator without its column: all that is known is missing or not
        return np.where(data[:, names.index(indicator)] == 1, "missing", "").astype(object)
    if len(names) == 1:
        return display[:, 0]
    return np.full(len(data), "", dtype=object)


def aggregate_by_source(explanation, sources: Mapping[str, str] | None = None) -> shap.Explanation:
    """Sum SHAP values of the columns that come from one raw column (one-hot, indicators).

    SHAP values add up, so the contribution of ``channel`` to one prediction is the sum
    of the contributions of ``channel_web``, ``channel_branch``, ...; ``monthly_income``
    gets its own plus ``missingindicator_monthly_income``'s. The base values, and so
    the additivity, are unchanged.

    Parameters
    ----------
    explanation : shap.Explanation
        From :func:`explain` (rows x features).
    sources : mapping of str to str, optional
        Feature -> source; default: ``explanation.feature_sources`` set by :func:`explain`
        (a sliced explanation has lost it: pass :func:`feature_sources` of the pipeline),
        else only the ``missingindicator_`` prefix is recognised.

    Returns
    -------
    shap.Explanation
        One column per source, in order of first appearance. ``data`` holds the model's
        input of the source's own column (``monthly_income`` for the group with its
        missing indicator; NaN for a one-hot group); ``display_data`` the readable value
        (the raw value, or the category of a one-hot group).
    """
    _check_explanation(explanation)
    shap = _shap()
    mapping = _sources_of(explanation, sources)
    names = [str(n) for n in explanation.feature_names]
    order = list(dict.fromkeys(mapping[n] for n in names))
    values = np.asarray(explanation.values, dtype=float)
    data = np.asarray(explanation.data, dtype=float) if explanation.data is not None else None
    display = explanation.display_data if explanation.display_data is not None else explanation.data
    display = np.asarray(display, dtype=object) if display is not None else None
    grouped_values, grouped_data, grouped_display = [], [], []
    for source in order:
        idx = [i for i, n in enumerate(names) if mapping[n] == source]
        grouped_values.append(values[:, idx].sum(axis=1))
        if data is not None:  # colour by the source's own column when the group has it
            own = [i for i in idx if _bare(names[i]) == source]
            chosen = own[0] if own else (idx[0] if len(idx) == 1 else None)
            grouped_data.append(data[:, chosen] if chosen is not None else np.full(len(values), np.nan))
        if display is not None and data is not None:
            grouped_display.append(
                _group_display([names[i] for i in idx], source, data[:, idx], display[:, idx])
            )
    grouped = shap.Explanation(
        values=np.column_stack(grouped_values),
        base_values=np.asarray(explanation.base_values, dtype=float),
        data=np.column_stack(grouped_data) if grouped_data else None,
        display_data=np.column_stack(grouped_display) if grouped_display else None,
        feature_names=order,
        output_names=explanation.output_names,
    )
    grouped.feature_sources = {s: s for s in order}
    grouped.explainer_name = getattr(explanation, "explainer_name", None)
    return grouped


def global_importance(
    explanation, *, group_by_source: bool = False, sources: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Rank features by their mean absolute SHAP value over the explained rows.

    Parameters
    ----------
    explanation : shap.Explanation
        From :func:`explain`.
    group_by_source : bool
        Sum each row's SHAP values per raw column first (:func:`aggregate_by_source`), so
        that a categorical column competes as one feature, not as its one-hot pieces.
    sources : mapping of str to str, optional
        Feature -> source, for ``group_by_source`` (see :func:`aggregate_by_source`).

    Returns
    -------
    pandas.DataFrame
        ``feature``, ``mean_abs_shap`` (on the explanation's scale), ``share`` (of the
        total) and ``rank`` (1 = most important; ties share the better rank), most
        important first.
    """
    _check_explanation(explanation)
    if group_by_source:
        explanation = aggregate_by_source(explanation, sources)
    importance = np.abs(np.asarray(explanation.values, dtype=float)).mean(axis=0)
    table = pd.DataFrame(
        {"feature": [str(n) for n in explanation.feature_names], "mean_abs_shap": importance}
    )
    total = table["mean_abs_shap"].sum()
    table["share"] = table["mean_abs_shap"] / total if total > 0 else 0.0
    table = table.sort_values(["mean_abs_shap", "feature"], ascending=[False, True], ignore_index=True)
    table["rank"] = table["mean_abs_shap"].rank(method="min", ascending=False).astype(int)
    return table


# -- figures -----------------------------------------------------------------------------


@contextlib.contextmanager
def _pyplot_figure() -> Iterator[Figure]:
    """A new current pyplot figure for shap's plots, closed afterwards so notebooks show it once.

    shap's plots draw on pyplot's current figure and switch interactive mode off; the
    previous mode is restored. The closed figure still displays when returned from a cell.
    """
    import matplotlib.pyplot as plt

    interactive = plt.isinteractive()
    fig = plt.figure()
    try:
        yield fig
    finally:
        plt.interactive(interactive)
        plt.close(fig)


def _tight(fig: Figure) -> None:
    """Fit long feature names inside the figure (shap leaves them to ``bbox_inches="tight"``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "not compatible with tight_layout" for some axes
        fig.tight_layout()


def _row_count(explanation) -> int:
    return int(np.shape(explanation.values)[0])


def _check_row(explanation, row: int) -> int:
    n = _row_count(explanation)
    if isinstance(row, bool) or not isinstance(row, int | np.integer) or not -n <= row < n:
        raise ValueError(f"row must be a position from 0 to {n - 1} in the explanation, got {row!r}.")
    return int(row) % n


def beeswarm(explanation, max_display: int = 12, *, group_by_source: bool = False) -> Figure:
    """The SHAP beeswarm: one dot per row and feature, coloured by the feature's value.

    Parameters
    ----------
    explanation : shap.Explanation
        From :func:`explain`.
    max_display : int
        Features shown, most important first; the rest are summed into one row.
    group_by_source : bool
        Plot raw columns (:func:`aggregate_by_source`); a column made of several model
        features (one-hot) has no single value to colour by and is drawn grey.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_explanation(explanation)
    if group_by_source:
        explanation = aggregate_by_source(explanation)
    shap = _shap()
    with _quiet(), _pyplot_figure() as fig:
        rows = min(max_display, len(explanation.feature_names))
        fig.set_size_inches(8, 0.4 * rows + 1.5)
        ax = fig.gca()
        with warnings.catch_warnings():  # a grouped one-hot column has no values: nothing to colour
            warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
            shap.plots.beeswarm(explanation, max_display=max_display, show=False, ax=ax, plot_size=None)
        scale = _scale(explanation)
        direction = "higher predicted risk" if scale in _RISK_UNITS else f"higher {scale}"
        ax.set_xlabel(f"SHAP value ({scale}); right = {direction}")
        _tight(fig)
    return fig


def waterfall(explanation, row: int, *, max_display: int = 12, group_by_source: bool = False) -> Figure:
    """How one row's prediction is built up from the base value, feature by feature.

    Parameters
    ----------
    explanation : shap.Explanation
        From :func:`explain`.
    row : int
        Position of the row in the explanation (0 = the first row of ``X``).
    max_display : int
        Features shown; the smallest contributions are summed into one bar.
    group_by_source : bool
        One bar per raw column (:func:`aggregate_by_source`).

    Returns
    -------
    matplotlib.figure.Figure
        Labels show readable values (``display_data``): the raw value, ``missing``, or
        0/1 for indicators.
    """
    _check_explanation(explanation)
    position = _check_row(explanation, row)
    if group_by_source:
        explanation = aggregate_by_source(explanation)
    shap = _shap()
    with _quiet(), _pyplot_figure() as fig:
        shap.plots.waterfall(explanation[position], max_display=max_display, show=False)
        fig.suptitle(f"Row {position}: contributions in {_scale(explanation)}", fontsize="medium")
        _tight(fig)
    return fig


# -- reason codes ------------------------------------------------------------------------


def _format_value(value: Any) -> str:
    value = _readable(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else f"{value:.4g}"
    return str(value)


def _describe(name: str, source: str, value: Any) -> str:
    """``late_90 = 2``, ``monthly_income is missing``, ``channel = web``, ``channel is not web``."""
    name = _bare(name)
    shown = _format_value(value)
    if shown == "":
        return name
    if name == source:
        return f"{name} = {shown}"
    flag = shown in ("0", "1")
    if name == f"{MISSING_PREFIX}{source}" and flag:
        return f"{source} is missing" if shown == "1" else f"{source} is reported"
    if name.startswith(f"{source}_") and flag:
        category = name[len(source) + 1 :]
        return f"{source} = {category}" if shown == "1" else f"{source} is not {category}"
    return f"{name} = {shown}"


def _signed(amount: float, decimals: int) -> str:
    """``+0.80``; small amounts keep one significant digit (``+0.003``) instead of ``+0.00``."""
    return f"{amount:+.{decimals}f}" if abs(amount) >= 0.5 * 10**-decimals else f"{amount:+.1g}"


def _effect(amount: float, scale: str) -> str:
    if scale == "probability":
        return f"raises risk by {_signed(amount, 3)} in probability"
    if scale in _RISK_UNITS:
        return f"raises risk by {_signed(amount, 2)} {scale}"
    return f"raises the {scale} by {amount:+.3g}"


def reason_codes(
    explanation,
    row: int,
    top: int = 3,
    *,
    group_by_source: bool = False,
    sources: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The features that pushed one row's risk up most: adverse-action reasons.

    A lender who declines an application owes the applicant its principal reasons. Here
    they are the features with the largest *positive* SHAP values for that row: they
    moved its score above the base value (the average over the background).

    Parameters
    ----------
    explanation : shap.Explanation
        From :func:`explain`.
    row : int
        Position of the row in the explanation.
    top : int
        At most this many reasons (fewer when fewer features raised the score).
    group_by_source : bool
        One reason per raw column (``channel = broker``) rather than per model feature.
    sources : mapping of str to str, optional
        Feature -> source (default: the explanation's own ``feature_sources``).

    Returns
    -------
    pandas.DataFrame
        ``rank``, ``feature``, ``source``, ``value`` (readable), ``shap`` (on the
        explanation's scale) and ``reason``, e.g.
        ``"late_90 = 2 raises risk by +0.80 log-odds"``; largest first.
    """
    _check_explanation(explanation)
    position = _check_row(explanation, row)
    if int(top) != top or top < 1:
        raise ValueError(f"top must be a positive whole number, got {top!r}.")
    mapping = _sources_of(explanation, sources)
    if group_by_source:
        explanation = aggregate_by_source(explanation, mapping)
        mapping = {n: n for n in explanation.feature_names}
    names = [str(n) for n in explanation.feature_names]
    values = np.asarray(explanation.values, dtype=float)[position]
    display = explanation.display_data if explanation.display_data is not None else explanation.data
    shown = np.asarray(display, dtype=object)[position] if display is not None else [None] * len(names)
    scale = _scale(explanation)
    order = [i for i in np.argsort(-values, kind="stable") if values[i] > 0][: int(top)]
    rows = []
    for rank, i in enumerate(order, start=1):
        description = _describe(names[i], mapping[names[i]], shown[i])
        rows.append(
            {
                "rank": rank,
                "feature": names[i],
                "source": mapping[names[i]],
                "value": _format_value(shown[i]),
                "shap": float(values[i]),
                "reason": f"{description} {_effect(float(values[i]), scale)}",
            }
        )
    return pd.DataFrame(rows, columns=["rank", "feature", "source", "value", "shap", "reason"])


# -- permutation importance, PDP and ICE on the raw columns ------------------------------


def permutation_importance_table(
    pipeline,
    X: pd.DataFrame,
    y,
    scoring: str = "average_precision",
    n_repeats: int = 5,
    random_state: int | np.random.RandomState | None = 0,
) -> pd.DataFrame:
    """How much the score drops when one raw column is shuffled (the fitted pipeline, no refit).

    Shuffling a column breaks its link with the label while keeping its distribution;
    the drop in ``scoring`` on held-out data is the column's importance to *this* model.
    Columns the preprocessing drops score 0. Correlated columns share credit: shuffling
    one leaves the other to carry the signal.

    Parameters
    ----------
    pipeline : fitted Pipeline
        Preprocessing and model, applied to raw columns.
    X : pandas.DataFrame
        Raw held-out rows; only the columns the pipeline was fitted on are shuffled.
    y : array-like
        Their labels.
    scoring : str
        A scikit-learn scorer name; PR-AUC (``"average_precision"``) by default, the
        course's metric for rare positives.
    n_repeats : int
        Shuffles per column.
    random_state : int, RandomState or None
        Seed of the shuffles.

    Returns
    -------
    pandas.DataFrame
        ``feature``, ``importance_mean``, ``importance_std`` and ``rank``, largest drop
        first.
    """
    from sklearn.inspection import permutation_importance

    _split(pipeline)
    _check_frame(X)
    _check_input_columns(pipeline, X)
    y = np.asarray(y)
    if len(y) != len(X):
        raise ValueError(f"y has {len(y)} labels for {len(X)} rows of X: pass one label per row.")
    if int(n_repeats) != n_repeats or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive whole number, got {n_repeats!r}.")
    fitted_on = getattr(pipeline, "feature_names_in_", None)
    if fitted_on is not None:  # leave out columns the pipeline never saw (ids, the label)
        X = X[[str(c) for c in fitted_on]]
    result = permutation_importance(
        pipeline, X, y, scoring=scoring, n_repeats=int(n_repeats), random_state=random_state
    )
    table = pd.DataFrame(
        {
            "feature": [str(c) for c in X.columns],
            "importance_mean": result.importances_mean,
            "importance_std": result.importances_std,
        }
    )
    table = table.sort_values(["importance_mean", "feature"], ascending=[False, True], ignore_index=True)
    table["rank"] = table["importance_mean"].rank(method="min", ascending=False).astype(int)
    return table


def _is_categorical(X: pd.DataFrame, feature: str) -> bool:
    column = X[feature]
    return not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def _check_grid(grid_resolution: int, percentiles: tuple[float, float]) -> None:
    if int(grid_resolution) != grid_resolution or grid_resolution < 2:
        raise ValueError(f"grid_resolution must be a whole number >= 2, got {grid_resolution!r}.")
    low, high = percentiles
    if not 0 <= low < high <= 1:
        raise ValueError(f"percentiles must be (low, high) with 0 <= low < high <= 1, got {percentiles!r}.")


def _grid_values(X: pd.DataFrame, feature: str, grid_resolution: int, percentiles) -> np.ndarray:
    """Grid for a numeric column from its observed values: every unique value when there are fewer
    than ``grid_resolution``, else evenly spaced between the percentiles (scikit-learn's rule,
    except that missing values are left out instead of turning the whole grid into NaN)."""
    values = pd.to_numeric(X[feature], errors="coerce").dropna().to_numpy(dtype=float)
    if len(values) == 0:
        raise ValueError(f"{feature!r} has no observed values in X: there is nothing to vary.")
    unique = np.unique(values)
    if len(unique) < grid_resolution:
        return unique
    low, high = np.quantile(values, percentiles)
    if np.isclose(low, high):
        raise ValueError(
            f"The percentiles {percentiles} of {feature!r} are equal ({low:g}): widen them, e.g. (0, 1)."
        )
    return np.linspace(low, high, int(grid_resolution))


def partial_dependence_table(
    pipeline,
    X: pd.DataFrame,
    feature: str,
    *,
    grid_resolution: int = 20,
    percentiles: tuple[float, float] = (0.05, 0.95),
) -> pd.DataFrame:
    """The partial dependence of the prediction on one raw column, as a table.

    For each grid value, every row of ``X`` gets that value in ``feature`` (the other
    columns untouched) and the predictions are averaged: the model's average response
    to the column. It shows the model, not causation, and it averages away
    interactions (ICE lines, :func:`pdp_ice`, show them).

    Parameters
    ----------
    pipeline : fitted Pipeline
        Preprocessing and model.
    X : pandas.DataFrame
        Raw rows; the cost is ``len(X) x grid`` predictions, so sample large data.
    feature : str
        A column of ``X``; numeric columns get a grid between ``percentiles`` of their
        observed values (missing values are not a grid point), categorical ones every
        category.
    grid_resolution : int
        At most this many grid values (fewer when the column has fewer unique values).
    percentiles : (float, float)
        The grid's range for numeric columns, trimming the tails.

    Returns
    -------
    pandas.DataFrame
        ``feature``, ``value`` (grid value) and ``average_prediction`` (probability of
        the positive class for a classifier, the prediction for a regressor).
    """
    from sklearn.inspection import partial_dependence

    _split(pipeline)
    _check_frame(X)
    check_columns(X, [feature], what="X", hint="Choose the feature among them.")
    _check_input_columns(pipeline, X)
    _check_grid(grid_resolution, percentiles)
    categorical = _is_categorical(X, feature)
    result = partial_dependence(
        pipeline,
        X,
        [feature],
        kind="average",
        grid_resolution=int(grid_resolution),
        percentiles=percentiles,
        categorical_features=[feature] if categorical else None,
        custom_values=None
        if categorical
        else {feature: _grid_values(X, feature, grid_resolution, percentiles)},
    )
    return pd.DataFrame(
        {
            "feature": feature,
            "value": result["grid_values"][0],
            "average_prediction": np.asarray(result["average"])[0],
        }
    )


def pdp_ice(
    pipeline,
    X: pd.DataFrame,
    feature: str,
    kind: str = "both",
    *,
    n_ice: int = 50,
    grid_resolution: int = 20,
    percentiles: tuple[float, float] = (0.05, 0.95),
    random_state: int | np.random.RandomState | None = 0,
) -> Figure:
    """Partial dependence (average) and ICE (one line per row) of the prediction on a raw column.

    Parallel ICE lines mean the column acts the same way for everyone; lines that cross
    or fan out reveal interactions the average hides.

    Parameters
    ----------
    pipeline : fitted Pipeline
        Preprocessing and model.
    X : pandas.DataFrame
        Raw rows (the average uses all of them).
    feature : str
        A column of ``X``.
    kind : {"both", "average", "individual"}
        PD curve, ICE lines, or both. Categorical columns have no ICE lines: ``"both"``
        draws the average only and ``"individual"`` is an error.
    n_ice : int
        ICE lines drawn (a random sample of rows, for speed and legibility).
    grid_resolution, percentiles
        As for :func:`partial_dependence_table`.
    random_state : int, RandomState or None
        Seed of the ICE sample.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from sklearn.inspection import PartialDependenceDisplay

    _split(pipeline)
    _check_frame(X)
    check_columns(X, [feature], what="X", hint="Choose the feature among them.")
    _check_input_columns(pipeline, X)
    _check_grid(grid_resolution, percentiles)
    if kind not in ("both", "average", "individual"):
        raise ValueError(f"Unknown kind {kind!r}: use 'both', 'average' or 'individual'.")
    if int(n_ice) != n_ice or n_ice < 1:
        raise ValueError(f"n_ice must be a positive whole number, got {n_ice!r}.")
    categorical = _is_categorical(X, feature)
    if categorical and kind == "individual":
        raise ValueError(f"{feature!r} is categorical: ICE lines need a numeric column; use kind='average'.")
    if categorical:
        kind = "average"
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    display = PartialDependenceDisplay.from_estimator(
        pipeline,
        X,
        [feature],
        kind=kind,
        subsample=int(n_ice) if kind != "average" else None,
        random_state=random_state,
        grid_resolution=int(grid_resolution),
        percentiles=percentiles,
        categorical_features=[feature] if categorical else None,
        custom_values=None
        if categorical
        else {feature: _grid_values(X, feature, grid_resolution, percentiles)},
        ax=ax,
    )
    label = "predicted probability" if _classes(_split(pipeline)[1]) is not None else "prediction"
    for axis in np.ravel(display.axes_):
        if axis is not None:
            axis.set_ylabel(label)
    what = {"both": "PDP and ICE", "average": "Partial dependence", "individual": "ICE"}[kind]
    fig.suptitle(f"{what}: {feature}", fontsize="medium")
    return fig
