"""`mlsd mlflow ui`: the address is printed once the server answers, and SIGTERM ends the whole server."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import psutil
import pytest

from mlsd.db import free_port, port_in_use

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_mlflow_ui_answers_when_its_address_is_printed_and_ends_whole_on_sigterm(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env |= {"MLSD_DATA_DIR": str(tmp_path / "data"), "MLSD_LOG_DIR": str(tmp_path / "logs")}
    made = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mlsd import tracking; print(tracking.get_or_create_experiment('lending-default'))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    experiment_id = made.stdout.strip().splitlines()[-1]
    port = free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "mlsd.cli", "mlflow", "ui", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in ui.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=300)  # the server's first start creates its tables: it takes a while
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            assert answer.status == 200, "the address was printed before the UI answered"
        assert first.startswith(f"MLflow UI on http://127.0.0.1:{port} for sqlite:///")
        shown = [first]
        deadline = time.monotonic() + 30
        while len(shown) < 3 and time.monotonic() < deadline:
            shown.append(lines.get(timeout=30))
        link = f"http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
        assert f"runs of experiment 'lending-default': {link}" in shown[1]
        assert '"Model training"' in shown[2]

        server = psutil.Process(ui.pid).children(recursive=True)
        assert server, "mlsd mlflow ui started no server"
        ui.send_signal(signal.SIGTERM)  # to the parent only, as `kill PID` or a process manager does
        assert ui.wait(timeout=60) == 0
        psutil.wait_procs(server, timeout=15)
        assert not [p for p in server if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not port_in_use(port), "the MLflow UI still listens after its parent ended"
        assert "Traceback" not in ui.stderr.read()
    finally:
        if ui.poll() is None:  # the test failed midway: end what it started, by process id
            for proc in [*psutil.Process(ui.pid).children(recursive=True), psutil.Process(ui.pid)]:
                proc.kill()
