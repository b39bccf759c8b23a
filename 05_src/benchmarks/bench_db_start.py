"""How long the embedded PostgreSQL takes to be ready (budget: <= 3 s).

Three cases, each repeated and measured in this run:

* first start: ``initdb`` plus server start plus the course database (a new laptop);
* restart: the data directory exists, the server is stopped (a new day);
* reuse: the server already runs and another process asks for it (a notebook after the CLI).

Peer: ``pg_ctl start`` of the same data directory with nothing around it, so the ratio
shows what the package adds to PostgreSQL's own start-up.

Run: ``uv run python 05_src/benchmarks/bench_db_start.py [--repeat 3]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlsd._embedded import EmbeddedPostgres, free_port

BUDGET_SECONDS = 3.0


def timed(func) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def measure(repeat: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {
        "first start (initdb)": [],
        "restart": [],
        "reuse from another process": [],
    }
    peer: list[float] = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as folder:
            server = EmbeddedPostgres(Path(folder) / "pgdata", free_port())
            try:
                results["first start (initdb)"].append(timed(server.start))
                code = f"from mlsd._embedded import EmbeddedPostgres; EmbeddedPostgres({str(server.pgdata)!r}, 1).start()"
                started = time.perf_counter()
                subprocess.run([sys.executable, "-c", code], check=True)
                results["reuse from another process"].append(time.perf_counter() - started)
                server.stop()
                results["restart"].append(timed(server.start))
                server.stop()
                peer.append(timed(server._pg_ctl_start))  # PostgreSQL alone: pg_ctl -w start
            finally:
                server.wipe()
    results["peer: pg_ctl start alone"] = peer
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case (default 3)")
    args = parser.parse_args()
    results = measure(args.repeat)
    peer = statistics.median(results["peer: pg_ctl start alone"])
    print(f"{'case':<30} {'median s':>9} {'max s':>7} {'x pg_ctl':>9} {'budget':>7}")
    for case, seconds in results.items():
        median = statistics.median(seconds)
        verdict = "" if case.startswith("peer") else ("PASS" if max(seconds) <= BUDGET_SECONDS else "FAIL")
        print(f"{case:<30} {median:>9.2f} {max(seconds):>7.2f} {median / peer:>9.2f} {verdict:>7}")
    print("(reuse includes starting a Python interpreter that imports mlsd)")


if __name__ == "__main__":
    main()
