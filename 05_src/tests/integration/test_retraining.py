"""The retraining flow and the structured job log, on real PostgreSQL and a real MLflow store.

One module-scoped setup: the tiny course data in a throwaway database and a throwaway MLflow
store. Each test challenges its own registered model, so the tests do not depend on each
other's aliases: a weak champion (it predicts the base rate) that a real challenger beats, a
real champion that a weak challenger does not, and bad copies of the gold table for the gates.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import TimeSeriesSplit

from mlsd import db, pipelines, retraining, serving, tracking, training
from mlsd.data import generate
from mlsd.logging import PERSONAL_FIELDS, JobLog, job_log_file

pytestmark = pytest.mark.integration

MONTH = "2026-06"  # the last month: comparison on 2025-10..2025-12, after the champions' 2025-03


def weak_pipeline():
    """The course preprocessing, then the base rate for everyone: a ranking no better than chance."""
    return training.baseline_pipeline().set_params(model=DummyClassifier(strategy="prior"))


@pytest.fixture(scope="module")
def world(databases, tmp_path_factory):
    """Tiny data loaded; MLflow and the logs in a throwaway folder (reset afterwards)."""
    import mlflow

    root = tmp_path_factory.mktemp("retraining")
    generate(root / "landing", scale="tiny", seed=7, progress=False)
    url = databases.create()
    conn = db.connect(url)
    pipelines.load(conn, root / "landing")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{(root / 'mlflow' / 'mlflow.db').as_posix()}")
        mp.setenv("MLSD_DATA_DIR", str(root / "data"))
        mp.setenv("MLSD_LOG_DIR", str(root / "logs"))
        mp.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
        tracking.configure()
        data = training.load_training_data(conn)  # 2024 to train, 2025-01..03 to validate, as `mlsd train`
        yield SimpleNamespace(conn=conn, url=url, data=data, logs=root / "logs")
        mlflow.set_tracking_uri(None)
    conn.close()
    databases.drop(url)


def register_champion(world, name: str, pipeline) -> str:
    """Fit ``pipeline`` on the 2024 months, register it as ``name``'s champion; its version."""
    result = tracking.cross_validate_and_log(
        pipeline, world.data.X_train, world.data.y_train, cv=TimeSeriesSplit(2), experiment="retraining-tests"
    )
    version = tracking.register_model(
        result.model_uri, name, tags={"threshold": 0.2, "valid_months": "..".join(world.data.valid_months)}
    )
    tracking.promote(name, version)
    return version


def versions(name: str) -> list[str]:
    import mlflow

    found = mlflow.tracking.MlflowClient().search_model_versions(f"name = '{name}'")
    return sorted((str(v.version) for v in found), key=int)


def alias_of(name: str, alias: str) -> str:
    return str(tracking.get_model_version(name, alias).version)


def job_rows(conn, run_id: str):
    return db.read_sql(conn, "SELECT * FROM monitoring.job_log WHERE run_id = %s ORDER BY id", (run_id,))


def bad_copy(conn, name: str, update: str) -> str:
    """A copy of the gold table with one defect (``update`` runs on it); its ``schema.table``."""
    with conn, conn.cursor() as cur:
        cur.execute(
            f"DROP TABLE IF EXISTS gold.{name}; CREATE TABLE gold.{name} AS TABLE gold.application_features"
        )
        cur.execute(update.format(table=f"gold.{name}"))
    return f"gold.{name}"


@pytest.fixture(scope="module")
def champion(world):
    """A real champion (logistic regression) of the model ``real``."""
    return register_champion(world, "real", training.baseline_pipeline())


@pytest.fixture(scope="module")
def promoted(world):
    """A weak champion challenged by a real recipe, twice with the same data and month."""
    old = register_champion(world, "weak", weak_pipeline())
    first = retraining.retrain(world.conn, MONTH, model_name="weak", recipe=training.baseline_pipeline())
    after_first = versions("weak")
    second = retraining.retrain(world.conn, MONTH, model_name="weak", recipe=training.baseline_pipeline())
    return SimpleNamespace(old=old, first=first, second=second, after_first=after_first)


# -- windows and gates -----------------------------------------------------------------------


def test_windows_use_only_mature_months(world):
    windows = retraining.retraining_windows(MONTH)
    known = world.data  # the labels of 2025-10..12 are complete at the end of 2026-06 (as_of 2026-07-01)
    assert windows.eval == ("2025-10", "2025-12") and windows.train == ("2024-10", "2025-09")
    labelled = db.read_sql(
        world.conn,
        "SELECT month, avg((serious_dlq IS NOT NULL AND label_observed_at < %s)::int) AS coverage "
        "FROM gold.application_features WHERE month = ANY(%s) GROUP BY month",
        (windows.as_of.to_pydatetime(), windows.months("eval")),
    )
    assert len(labelled) == 3 and labelled["coverage"].min() > 0.95, labelled
    assert known.valid_months[1] < windows.eval[0]
    with pytest.raises(retraining.RetrainingError, match="Pick a later --month"):
        retraining.retraining_windows("2024-08")


def test_a_null_heavy_new_month_stops_the_flow_and_says_which_numbers(world, champion):
    table = bad_copy(world.conn, "nulls", "UPDATE {table} SET monthly_income = NULL WHERE month = '2026-06'")
    before = versions("real")
    decision = retraining.retrain(
        world.conn, MONTH, model_name="real", options=retraining.RetrainOptions(table=table)
    )
    assert decision.action == "stop"
    assert [g.gate for g in decision.failed_gates] == ["nulls"]
    assert "monthly_income is NULL in 100.0% of 2026-06's rows" in decision.reason
    assert versions("real") == before  # nothing trained on bad data was registered
    rows = job_rows(world.conn, decision.run_id)
    stopped = rows[rows["status"] == "stopped"]
    assert set(stopped["step"]) == {"gate:nulls", "decide"}
    assert "train" not in set(rows["step"])
    assert stopped.set_index("step").loc["gate:nulls", "details"]["value"] > 0.5


def test_a_collapsed_label_rate_stops_the_flow(world, champion):
    table = bad_copy(
        world.conn, "labels", "UPDATE {table} SET serious_dlq = 0 WHERE month BETWEEN '2025-10' AND '2025-12'"
    )
    decision = retraining.retrain(
        world.conn, MONTH, model_name="real", options=retraining.RetrainOptions(table=table)
    )
    assert decision.action == "stop"
    assert [g.gate for g in decision.failed_gates] == ["label_rate"]
    assert "the default rate of 2025-10..2025-12 is 0.0%" in decision.reason
    assert alias_of("real", "champion") == champion


def test_clean_data_passes_every_gate(promoted):
    assert promoted.first.gates and all(g.passed for g in promoted.first.gates)


# -- the decision ----------------------------------------------------------------------------


def test_a_better_challenger_is_promoted_and_the_old_champion_stays_reachable(promoted):
    first = promoted.first
    assert first.action == "promote", first.reason
    assert first.challenger_pr_auc > first.champion_pr_auc + retraining.RetrainOptions().min_gain
    assert first.champion_version == promoted.old
    assert alias_of("weak", "champion") == first.challenger_version
    assert alias_of("weak", "previous") == promoted.old
    tags = tracking.get_model_version("weak", "champion").tags
    assert tags["retrain_key"] == first.run_key and tags["data_end"] == "2025-09"


def test_running_twice_makes_the_same_decision_and_promotes_once(world, promoted):
    first, second = promoted.first, promoted.second
    assert second.reused and not first.reused
    assert (second.action, second.challenger_version, second.run_key) == (
        first.action,
        first.challenger_version,
        first.run_key,
    )
    assert (
        versions("weak") == promoted.after_first == sorted([promoted.old, first.challenger_version], key=int)
    )
    assert alias_of("weak", "champion") == first.challenger_version
    log = db.read_sql(
        world.conn,
        "SELECT run_id, step, status FROM monitoring.job_log WHERE run_key = %s AND step IN ('promote', 'decide')",
        (first.run_key,),
    )
    assert (log["step"] == "promote").sum() == 1
    assert sorted(log.loc[log["step"] == "decide", "status"]) == ["ok", "skipped"]


def test_a_worse_challenger_is_not_promoted(world, champion):
    decision = retraining.retrain(world.conn, MONTH, model_name="real", recipe=weak_pipeline())
    assert decision.action == "keep", decision.reason
    assert decision.challenger_pr_auc < decision.champion_pr_auc
    assert alias_of("real", "champion") == champion
    assert alias_of("real", "challenger") == decision.challenger_version
    assert "<= min_gain" in decision.reason


def test_a_dry_run_registers_nothing(world):
    register_champion(world, "dry", weak_pipeline())
    before = versions("dry")
    decision = retraining.retrain(
        world.conn, MONTH, model_name="dry", recipe=training.baseline_pipeline(), dry_run=True
    )
    assert decision.dry_run and decision.action == "promote" and decision.challenger_version is None
    assert versions("dry") == before


def test_a_champion_that_saw_the_comparison_months_is_not_judged_on_them(world, promoted):
    # a run in 2026-04 would compare on 2025-08..10, months the new champion (data to 2025-09) learned from
    decision = retraining.retrain(
        world.conn, "2026-04", model_name="weak", recipe=training.baseline_pipeline()
    )
    assert decision.action == "keep" and "overlap the comparison months" in decision.reason
    assert alias_of("weak", "champion") == promoted.first.challenger_version


def test_the_command_prints_the_gates_and_the_decision(world, champion, monkeypatch, capsys):
    from mlsd import cli

    monkeypatch.setenv("DATABASE_URL", world.url)
    code = cli.main(["retrain", "--model", "real", "--dry-run"])  # the month: the latest in the data
    out = capsys.readouterr().out
    assert code == 0, out
    for gate in ("rows", "nulls", "label_coverage", "label_rate"):
        assert f"\n{gate} " in out
    assert (
        f"Retraining real for {MONTH}" in out
        and "compare on 2025-10..2025-12" in out
        and "(dry run: nothing registered or promoted)" in out
    )
    assert alias_of("real", "champion") == champion


# -- the job log -----------------------------------------------------------------------------


def test_the_job_log_rows_carry_the_fields(world, promoted):
    rows = job_rows(world.conn, promoted.first.run_id)
    steps = rows["step"].tolist()
    assert steps[0] == "load" and steps[-1] == "decide"
    assert {"train", "evaluate", "register", "promote"} <= set(steps)
    assert (rows["job"] == "retrain").all() and (rows["model_name"] == "weak").all()
    assert rows["run_key"].eq(promoted.first.run_key).all()
    by_step = rows.set_index("step")
    assert by_step.loc["load", "row_count"] == sum(promoted.first.row_counts.values())
    assert by_step.loc["train", "row_count"] > by_step.loc["evaluate", "row_count"] > 0
    assert by_step.loc["promote", "model_version"] == promoted.first.challenger_version
    assert rows.loc[rows["step"].isin(["load", "train", "evaluate"]), "seconds"].gt(0).all()
    decided = by_step.loc["decide", "details"]
    assert decided["action"] == "promote" and decided["challenger_pr_auc"] == promoted.first.challenger_pr_auc
    lines = [json.loads(line) for line in job_log_file(world.logs).read_text().splitlines()]
    assert [r["step"] for r in lines if r["run_id"] == promoted.first.run_id] == steps


def test_batch_scoring_logs_its_run(world, champion):
    batch = serving.score_month(world.conn, "2026-05", model_name="real")
    rows = db.read_sql(
        world.conn, "SELECT * FROM monitoring.job_log WHERE job = 'score' AND run_key = %s", (batch.batch_id,)
    )
    assert rows["step"].tolist() == ["load_model", "read", "score", "write"]
    assert set(rows["model_version"]) == {champion} and set(rows["batch_id"]) == {batch.batch_id}
    written = rows.set_index("step").loc["write"]
    assert written["row_count"] == batch.rows and written["details"]["flagged"] == batch.flagged


def test_the_privacy_guard_refuses_applicant_fields(world):
    job = JobLog(world.conn, "privacy-test", jsonl=False)
    count = "SELECT count(*) FROM monitoring.job_log WHERE job = 'privacy-test'"
    for name in ("application_id", "customer_id", "monthly_income"):
        assert name in PERSONAL_FIELDS
        with pytest.raises(ValueError, match="not an applicant"):
            job.record("score", **{name: "A0000000042"})
    assert db.read_sql(world.conn, count).iloc[0, 0] == 0
    job.record("score", rows=3, flagged=1)
    assert db.read_sql(world.conn, count).iloc[0, 0] == 1
