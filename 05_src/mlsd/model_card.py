"""A model card for a registered model version, built from its MLflow run.

The book's chapter 11 ("The Human Side of Machine Learning") recommends a **model card** for
every model in use (Mitchell et al., 2019): what it is, how it was trained and on which data,
how it performs, for whom it performs worse, what it is for and what it must not be used for.
Written by hand, a card goes stale at the next retraining; here it is generated from what the
tracking store already holds, so each version's card says what that version is.

- :func:`read_model_card` (MLflow I/O) collects the version behind an alias (``champion`` by
  default): registered name, version, aliases and tags, its run's id, parameters (the model's
  hyperparameters and the data window: ``train_months``, ``valid_months``) and metrics.
- :func:`render_model_card` (pure) writes a :class:`ModelCard` as Markdown, with the sections
  a reader and an auditor look for, a fairness table among them (:mod:`mlsd.fairness`).

Session 5 (``05_model_development.ipynb``) writes the card of its champion.

Example
-------
>>> from mlsd import model_card
>>> card = model_card.read_model_card("session-05-lending", intended_use="...", limitations=["..."])  # doctest: +SKIP
>>> print(model_card.render_model_card(card))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from mlsd import tracking
from mlsd.tracking._store import _mlflow

__all__ = ["DATA_WINDOW_PARAMS", "MarkdownText", "ModelCard", "read_model_card", "render_model_card"]

DATA_WINDOW_PARAMS = ("train_months", "valid_months", "n_train", "n_valid", "train_positive_rate")
"""Run parameters that describe the data a model saw (logged by the course's training code)."""

_MODEL_PARAM_PREFIX = "model__"
_RUN_PARAMS = ("cv", "cv_n_splits")


class MarkdownText(str):
    """A string that Jupyter displays as rendered Markdown (and everything else treats as a string)."""

    def _repr_markdown_(self) -> str:
        return str(self)


@dataclass
class ModelCard:
    """What a model card says, as data (see :func:`render_model_card` for the Markdown).

    Attributes
    ----------
    name, version : str
        Registered model and version.
    aliases : list of str
        Its aliases (``champion``...).
    run_id : str
        The MLflow run that trained it.
    data_window : dict
        The run's :data:`DATA_WINDOW_PARAMS` that are present.
    params : dict
        The model's hyperparameters: a pipeline's ``model__*`` run parameters without the
        prefix, or a bare estimator's own.
    metrics : dict
        The run's metrics (cross-validated means and spreads, validation scores).
    tags : dict
        The version's tags (e.g. ``threshold``).
    intended_use : str
        What the model is for, and for whom.
    limitations : list of str
        Known limits and uses to avoid.
    fairness : dict of DataFrame
        Tables of rates by group (e.g. :func:`mlsd.fairness.group_rates`), by title.
    evaluation : DataFrame, optional
        Further evaluation to show (e.g. validation metrics).
    """

    name: str
    version: str
    aliases: list[str]
    run_id: str
    data_window: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    intended_use: str = ""
    limitations: list[str] = field(default_factory=list)
    fairness: dict[str, pd.DataFrame] = field(default_factory=dict)
    evaluation: pd.DataFrame | None = None


def _hyperparameters(params: Mapping[str, str]) -> dict[str, str]:
    """The model's own hyperparameters: a pipeline's ``model__*`` (prefix dropped), else the plain ones."""
    if any(k.startswith(_MODEL_PARAM_PREFIX) for k in params):
        stripped = {
            k.removeprefix(_MODEL_PARAM_PREFIX): v
            for k, v in params.items()
            if k.startswith(_MODEL_PARAM_PREFIX)
        }
    else:  # a bare estimator: its parameters, less what the course's runs add
        stripped = {k: v for k, v in params.items() if k not in (*DATA_WINDOW_PARAMS, *_RUN_PARAMS)}
    return {k: v for k, v in sorted(stripped.items()) if "__" not in k}


def read_model_card(
    name: str,
    alias: str = "champion",
    *,
    intended_use: str = "",
    limitations: Sequence[str] = (),
    fairness: Mapping[str, pd.DataFrame] | None = None,
    evaluation: pd.DataFrame | None = None,
) -> ModelCard:
    """Collect the card of the version of ``name`` that ``alias`` points at, from the MLflow store.

    Parameters
    ----------
    name, alias : str
        Registered model and alias.
    intended_use, limitations
        What no tracking store knows: written by the team, passed in.
    fairness : mapping of str to DataFrame, optional
        Rates by group, by title (e.g. ``{"age band": group_rates(...)}``).
    evaluation : DataFrame, optional
        Further evaluation to show.

    Raises
    ------
    mlsd.tracking.RegistryError
        When the model or the alias does not exist.
    """
    version = tracking.get_model_version(name, alias)
    with tracking.quiet():
        run = _mlflow().tracking.MlflowClient().get_run(version.run_id)
    params = dict(run.data.params)
    return ModelCard(
        name=name,
        version=str(version.version),
        aliases=sorted(version.aliases or []),
        run_id=version.run_id,
        data_window={k: params[k] for k in DATA_WINDOW_PARAMS if k in params},
        params=_hyperparameters(params),
        metrics=dict(sorted(run.data.metrics.items())),
        tags=dict(sorted((version.tags or {}).items())),
        intended_use=intended_use,
        limitations=list(limitations),
        fairness=dict(fairness or {}),
        evaluation=evaluation,
    )


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a Markdown table (pandas' ``to_markdown`` needs tabulate, which we do not)."""
    if frame.index.name or not isinstance(frame.index, pd.RangeIndex):
        frame = frame.rename_axis(frame.index.name or "").reset_index()

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.{digits}f}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _pairs(mapping: Mapping[str, object], key: str, value: str) -> str:
    if not mapping:
        return "_None recorded._"
    return _table(pd.DataFrame({key: list(mapping), value: list(mapping.values())}))


def render_model_card(card: ModelCard) -> MarkdownText:
    """The card as Markdown: details, intended use, data, hyperparameters, metrics, fairness, limitations.

    The result is a string; a notebook cell that ends on it shows the rendered card.

    Examples
    --------
    >>> card = ModelCard("lending", "3", ["champion"], "abc123", {"train_months": "2024-01..2024-12"},
    ...                  {"learning_rate": "0.1"}, {"cv_pr_auc_mean": 0.41}, {"threshold": "0.18"},
    ...                  intended_use="Rank loan applications by risk.", limitations=["Trained before 2025."])
    >>> text = render_model_card(card)
    >>> "abc123" in text and "| cv_pr_auc_mean | 0.410 |" in text
    True
    >>> text.splitlines()[0]
    '# Model card: lending, version 3'
    """
    aliases = ", ".join(f"`{a}`" for a in card.aliases) or "none"
    lines = [
        f"# Model card: {card.name}, version {card.version}",
        "",
        "## Model details",
        "",
        f"- Registered model: `{card.name}`, version {card.version} (aliases: {aliases})",
        f"- MLflow run: `{card.run_id}`",
        f"- Decision threshold: {card.tags.get('threshold', 'not recorded')} (decline at or above)",
        "",
        "## Intended use",
        "",
        card.intended_use or "_Not written yet: say what the model is for, and for whom._",
        "",
        "## Training and evaluation data",
        "",
        _pairs(card.data_window, "parameter", "value"),
        "",
        "## Hyperparameters",
        "",
        _pairs(card.params, "parameter", "value"),
        "",
        "## Metrics (from the run)",
        "",
        _pairs(card.metrics, "metric", "value"),
        "",
    ]
    if card.evaluation is not None:
        lines += ["## Further evaluation", "", _table(card.evaluation), ""]
    lines += ["## Fairness", ""]
    if card.fairness:
        for title, table in card.fairness.items():
            lines += [f"### {title}", "", _table(table), ""]
    else:
        lines += ["_No fairness analysis attached._", ""]
    lines += ["## Limitations and uses to avoid", ""]
    lines += [f"- {item}" for item in card.limitations] or ["_None written yet._"]
    lines += ["", "## Version tags", "", _pairs(card.tags, "tag", "value"), ""]
    return MarkdownText("\n".join(lines))
