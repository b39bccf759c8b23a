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

The code: input checks in ``_inputs``, feature sources in ``_sources``, SHAP values and
importance in ``_shap``, figures in ``_plots``, reason codes in ``_reasons``, and permutation
importance, PDP and ICE in ``_inspection``. shap and matplotlib load on first use.

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

from mlsd.explain._inspection import partial_dependence_table, pdp_ice, permutation_importance_table
from mlsd.explain._plots import beeswarm, waterfall
from mlsd.explain._reasons import reason_codes
from mlsd.explain._shap import aggregate_by_source, explain, explainer_kind, global_importance
from mlsd.explain._sources import feature_sources

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
