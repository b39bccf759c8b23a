"""SHAP values of a fitted pipeline, the explainer for each model, and importance from them."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from mlsd.explain._inputs import _check_frame, _check_input_columns, _classes, _split
from mlsd.explain._sources import MISSING_PREFIX, _bare, _guess_source, _names_out, _sources_for

if TYPE_CHECKING:
    from types import ModuleType

    import shap

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


def _shap() -> ModuleType:
    """``import shap`` (slow: a few seconds), with its import-time warnings silenced."""
    with warnings.catch_warnings():
        # shap's colour maps use matplotlib calls that are pending deprecation; numba may warn too.
        warnings.simplefilter("ignore")
        import shap

    return shap


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


def _row_count(explanation) -> int:
    return int(np.shape(explanation.values)[0])


def _check_row(explanation, row: int) -> int:
    n = _row_count(explanation)
    if isinstance(row, bool) or not isinstance(row, int | np.integer) or not -n <= row < n:
        raise ValueError(f"row must be a position from 0 to {n - 1} in the explanation, got {row!r}.")
    return int(row) % n
