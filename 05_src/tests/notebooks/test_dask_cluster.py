"""With DASK_SCHEDULER_ADDRESS set, notebooks 02 and 05 run their Dask work on that cluster.

A real cluster: ``dask scheduler`` and two ``dask worker`` processes, each a separate process
as on a team's machines. The notebooks run top to bottom in fresh kernels, as the course runs
them; the workers' own counters and the scheduler's task names say what ran there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlsd.config import repo_root
from mlsd.db import free_port, port_in_use
from mlsd.notebooks import run_notebook

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

LABS = repo_root() / "01_materials" / "labs"
DASK = str(Path(sys.executable).with_name("dask"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two single-threaded workers, each its own process; yields (address, client)."""
    from distributed import Client

    logs = tmp_path_factory.mktemp("dask-logs")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = []

    def start(name: str, *args: str) -> None:
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        procs.append((subprocess.Popen([DASK, *args], stdout=log, stderr=subprocess.STDOUT), log))

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
        deadline = time.monotonic() + 60
        while not port_in_use(port):
            assert time.monotonic() < deadline, (logs / "scheduler.log").read_text()
            time.sleep(0.2)
        for name in ("worker-a", "worker-b"):
            start(name, "worker", address, "--name", name, "--nthreads", "1", "--no-dashboard",
                  "--memory-limit", "2GiB")  # fmt: skip
        client = Client(address, set_as_default=False)
        client.wait_for_workers(2, timeout=120)
        yield address, client
        client.close()
    finally:
        for proc, log in procs:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()


def executed(client) -> dict[str, int]:
    """Tasks each worker has run so far, by worker name."""
    counts = client.run(lambda dask_worker: (dask_worker.name, dask_worker.state.executed_count))
    return dict(counts.values())


def task_names(client) -> set[str]:
    """The names (prefixes) of every task the scheduler has seen."""
    return set(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes)))


@pytest.fixture(scope="module")
def course_env(databases, tmp_path_factory, cluster) -> dict[str, str]:
    root = tmp_path_factory.mktemp("course-on-a-cluster")
    return {
        "DATABASE_URL": databases.create(),
        "MLSD_SCALE": "tiny",
        "MLSD_DATA_DIR": str(root / "data"),
        "MLSD_LOG_DIR": str(root / "logs"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "DASK_SCHEDULER_ADDRESS": cluster[0],
    }


@pytest.mark.parametrize(
    "notebook, kind",
    [("02_data_engineering.ipynb", "read_parquet"), ("05_model_development.ipynb", "fit_and_score")],
)
def test_notebook_runs_its_dask_work_on_the_configured_cluster(notebook, kind, cluster, course_env, tmp_path):
    _, client = cluster
    before = executed(client)
    run = run_notebook(LABS / notebook, env=course_env, output_path=tmp_path / notebook)
    assert run.ok, run.describe()
    after = executed(client)
    ran = {name: after[name] - before.get(name, 0) for name in after}
    assert set(ran) == {"worker-a", "worker-b"}
    assert all(count > 0 for count in ran.values()), f"tasks per worker: {ran}"
    names = task_names(client)
    assert any(kind in name for name in names), f"no {kind} task reached the cluster: {sorted(names)}"
    printed = "".join(
        "".join(out.get("text", "")) for cell in run.notebook.cells for out in cell.get("outputs", [])
    )
    assert "Traceback" not in printed


def test_without_an_address_the_notebook_cluster_is_local(monkeypatch):
    """The same helper starts a local cluster when none is configured (workers in this process)."""
    from mlsd.pipelines import dask_layers

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.setenv("MLSD_DATA_DIR", os.devnull)  # no .env setting either: nothing configured
    monkeypatch.setattr("mlsd.config._dotenv_values", lambda: {})
    with dask_layers.dask_client(processes=False) as client:
        assert client.cluster is not None and len(client.scheduler_info()["workers"]) == 2
        assert client.submit(sum, [1, 2]).result() == 3
