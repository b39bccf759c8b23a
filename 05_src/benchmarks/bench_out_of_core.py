"""Benchmark the out-of-core Dask gold build: data several times a worker's memory, peak within it.

The budget (``DESIGN.md``, "Budgets") says the Dask path must finish a job on data at least 3x
the worker memory limit while every worker's peak memory stays within that limit. This script
checks it on the course's own job, landing Parquet -> silver -> gold
(``mlsd.pipelines.dask_layers``), and compares it with plain pandas where pandas fits:

1. it generates Parquet landing data with ``--rows`` applications (default 6,500,000) and a
   tenth of that, and measures their in-memory size as the workers hold it:
   ``memory_usage(deep=True)`` of three sample files per table (first, middle and last month,
   read with ``read_landing``'s dtypes) per row, times the table's rows from the Parquet
   metadata. Parquet's own uncompressed size is shown next to it. The job's data, the figure
   compared with the limit, is the four tables it reads (it does not read ``customers``);
2. it starts a ``LocalCluster`` like ``dask_client`` does (``--workers`` single-threaded
   processes with ``--memory-limit`` each), runs
   ``gold_frame(silver_frames(landing, npartitions=N), npartitions=N).to_parquet(tmp)``
   (nothing is computed into the client), and samples each worker's resident memory every
   0.2 s, plus its CPU time;
3. it counts the gold rows from the written files' metadata and checks that they equal the
   distinct applications in the landing files, and that no worker was restarted;
4. the same job in plain pandas (each table read whole, ``_keep_latest`` and ``_clean`` on the
   whole frame, ``_pit_partition`` once, labels merged, Parquet written), in a subprocess that
   reports its own peak RSS and CPU time: on the tenth, next to Dask on that same tenth, and on
   the full size only with ``--pandas-full``.

The shuffles use Dask's task-based method by default, not the peer-to-peer (P2P) method that
``distributed`` picks by itself: P2P keeps its buffers outside the memory that Dask can spill,
and with 1 GiB workers they climbed to the 95% "terminate" line and a worker was killed
(``--shuffle p2p --timeout 900`` shows it). The partition count is set from the data (about
24 MiB of the largest table each) rather than left to ``silver_frames``' default of a quarter
of the files, whose larger partitions got workers killed at this size. Wall-clock times depend on what else
the machine runs: the load average is printed, and CPU seconds are the steadier figure.

It prints a table (job, data size, ratio to the limit, seconds, CPU seconds, peak RSS per
worker, within the limit, gold rows) and the budget line, and exits 0 when the Dask build on the
full size finished with the right number of rows (1 otherwise), whether or not the budget is met.

Run it with::

    uv run python 05_src/benchmarks/bench_out_of_core.py            # ~5 min on 2 idle cores
    uv run python 05_src/benchmarks/bench_out_of_core.py --rows 300000   # the mechanics, in ~2 min
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

POLL_SECONDS = 0.2
TARGET_PARTITION_BYTES = 24 * 2**20  # in-memory bytes per partition of the largest table
JOB_TABLES = ("applications", "bureau", "repayments", "outcomes")  # what gold_frame reads


@dataclass
class Job:
    """One row of the report: a gold build and what it cost."""

    name: str
    data_bytes: int
    seconds: float
    cpu_seconds: float
    peaks: list[int]  # peak RSS of each process, bytes
    gold_rows: int
    expected_rows: int
    limit: int | None = None  # the per-process limit, when there is one
    restarted: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.gold_rows == self.expected_rows and not any(n.startswith("FAILED") for n in self.notes)

    @property
    def within(self) -> bool | None:
        if self.limit is None:
            return None
        return max(self.peaks) <= self.limit and not self.restarted


class WorkerRSS:
    """Sample the resident memory of some processes every ``interval`` seconds; keep each peak.

    A process that disappears (a worker killed by its nanny) is noted in ``gone``.
    """

    def __init__(self, pids: list[int], interval: float = POLL_SECONDS) -> None:
        self.interval = interval
        self.processes = {pid: psutil.Process(pid) for pid in pids}
        self.peaks = dict.fromkeys(pids, 0)
        self.gone: set[int] = set()
        self.cpu = 0.0  # CPU seconds used between enter and exit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for pid, process in self.processes.items():
            if pid in self.gone:
                continue
            try:
                self.peaks[pid] = max(self.peaks[pid], process.memory_info().rss)
            except psutil.NoSuchProcess:
                self.gone.add(pid)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def _cpu_seconds(self) -> float:
        """User plus system CPU time of the processes that are still alive."""
        total = 0.0
        for pid, process in self.processes.items():
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                self.gone.add(pid)
        return total

    def __enter__(self) -> WorkerRSS:
        self._cpu_start = self._cpu_seconds()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.cpu = self._cpu_seconds() - self._cpu_start


def mib(n: float) -> str:
    """Bytes as a whole number of MiB, with thousands separators."""
    return f"{n / 2**20:,.0f}"


# -- data size ------------------------------------------------------------------------------


def landing_size(landing: Path) -> dict[str, dict[str, float]]:
    """In-memory bytes of each landing table as the Dask workers hold it, and Parquet's sizes.

    Three files per table (first, middle and last month: the tables grow over the timeline) are
    read with ``read_landing``'s dtypes; their ``memory_usage(deep=True)`` per row, times the
    table's rows from the Parquet metadata, estimates the table.

    Returns
    -------
    dict
        Per table: ``rows``, ``memory`` (estimated in-memory bytes), ``uncompressed`` (from the
        Parquet metadata) and ``on_disk``.
    """
    import pyarrow.parquet as pq

    from mlsd.data import TABLES
    from mlsd.pipelines.dask_layers import read_landing

    sizes = {}
    for table in TABLES:
        files = sorted((landing / table).glob("month=*/*.parquet"))
        metas = [pq.ParquetFile(f).metadata for f in files]
        rows = sum(m.num_rows for m in metas)
        frame = read_landing(landing, table)
        sample_bytes = sample_rows = 0
        for index in sorted({0, len(files) // 2, len(files) - 1}):
            part = frame.get_partition(index).compute(scheduler="synchronous")
            sample_bytes += int(part.memory_usage(deep=True, index=True).sum())
            sample_rows += len(part)
        sizes[table] = {
            "rows": rows,
            "memory": sample_bytes / max(sample_rows, 1) * rows,
            "uncompressed": sum(
                m.row_group(i).total_byte_size for m in metas for i in range(m.num_row_groups)
            ),
            "on_disk": sum(f.stat().st_size for f in files),
        }
    return sizes


def distinct_applications(landing: Path) -> int:
    """Distinct ``application_id`` values in the landing files: the gold table has one row each."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ids = pq.read_table(landing / "applications", columns=["application_id"])["application_id"]
    return pc.count_distinct(ids).as_py()


def parquet_rows(folder: Path) -> int:
    """Rows in the Parquet files under ``folder``, from their metadata."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in folder.rglob("*.parquet"))


# -- the Dask job ---------------------------------------------------------------------------


def run_dask(
    landing: Path,
    out: Path,
    *,
    n_workers: int,
    memory_limit: int,
    npartitions: int,
    shuffle: str,
    spill_dir: Path,
    timeout: float,
) -> tuple[float, WorkerRSS, bool, list[str]]:
    """Build gold with Dask on a fresh LocalCluster and write it to ``out``.

    The cluster has the settings of ``dask_layers.dask_client`` (single-threaded worker
    processes, ``memory_limit`` each, no dashboard) plus quiet logs and a spill folder in
    ``spill_dir``, which ``dask_client`` does not let a caller set.

    Returns
    -------
    seconds, rss, restarted, notes
        Wall time of the job, the memory sampler (peaks, CPU time), whether a worker was
        restarted (killed for memory), and what went wrong if anything did.
    """
    import dask
    from distributed import Client, LocalCluster

    from mlsd.pipelines.dask_layers import gold_frame, silver_frames

    notes = []
    with (
        dask.config.set({"dataframe.shuffle.method": shuffle}),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            memory_limit=memory_limit,
            dashboard_address=None,
            silence_logs=logging.ERROR,
            local_directory=str(spill_dir),
        ) as cluster,
        Client(cluster) as client,
    ):
        pids = list(client.run(os.getpid).values())
        idle = [psutil.Process(pid).memory_info().rss for pid in pids]
        notes.append(
            f"npartitions={npartitions}, shuffle={shuffle}; idle worker RSS {'/'.join(map(mib, idle))} MiB"
        )
        with WorkerRSS(pids) as rss:
            start = time.perf_counter()
            silver = silver_frames(landing, npartitions=npartitions)
            write = gold_frame(silver, npartitions=npartitions).to_parquet(
                str(out), write_index=False, compute=False
            )
            future = client.compute(write)
            try:
                future.result(timeout=timeout)
            except TimeoutError:  # e.g. workers paused at 80% of their limit and never resumed
                notes.append(f"FAILED: not finished after {timeout:.0f} s (paused workers?)")
            except Exception as err:  # a killed worker or a failed task: report it, do not hide it
                notes.append(f"FAILED: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
            finally:
                future.cancel()
            seconds = time.perf_counter() - start
        restarted = bool(rss.gone) or set(client.run(os.getpid).values()) != set(pids)
        if restarted:
            notes.append(
                "a worker was restarted (killed by its nanny for memory?): its last peak was not seen"
            )
    return seconds, rss, restarted, notes


# -- the pandas peer ------------------------------------------------------------------------


def pandas_gold(landing: Path, out: Path) -> int:
    """The gold build in plain pandas on whole tables, the peer of ``gold_frame``; returns rows.

    The same steps as ``silver_frames`` and ``gold_frame`` (``as_of=None``), each applied once
    to the whole frame instead of per partition, on the tables that gold reads.
    """
    import pandas as pd

    from mlsd.data._schema import PRIMARY_KEYS
    from mlsd.pipelines.dask_layers import GOLD_COLUMNS, _clean, _keep_latest, _pit_partition

    silver = {}
    for table in JOB_TABLES:
        key = PRIMARY_KEYS[table]
        raw = pd.read_parquet(landing / table, partitioning="hive")
        raw["month"] = raw["month"].astype(str)
        silver[table] = _clean(_keep_latest(raw, list(key)), table)
        del raw
    apps = silver["applications"]
    repay = silver["repayments"][["application_id", "ingested_at", "days_late"]].merge(
        apps[["application_id", "customer_id"]], on="application_id"
    )
    features = _pit_partition(apps.drop(columns=["ingested_at"]), silver["bureau"], repay)
    labels = silver["outcomes"][["application_id", "serious_dlq", "observed_at"]].rename(
        columns={"observed_at": "label_observed_at"}
    )
    gold = features.merge(labels, on="application_id", how="left")[GOLD_COLUMNS]
    out.mkdir(parents=True, exist_ok=True)
    gold.to_parquet(out / "part-0.parquet", index=False)
    return len(gold)


def run_pandas(landing: Path, out: Path) -> dict:
    """Run :func:`pandas_gold` in a fresh subprocess; return its ``seconds``, ``cpu``, ``peak_rss``.

    The child times the job itself (not its imports) and reports its own ``ru_maxrss``, so the
    peak is that of the pandas job alone.
    """
    command = [sys.executable, __file__, "--pandas-peer", str(landing), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the pandas peer failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pandas_peer_main(landing: str, out: str) -> int:
    """Entry point of the pandas subprocess: run the job, print one JSON line."""
    import pandas  # noqa: F401  (imported before timing: the import is not the job)

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    start, cpu_start = time.perf_counter(), cpu()
    pandas_gold(Path(landing), Path(out))
    seconds, cpu_seconds = time.perf_counter() - start, cpu() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "cpu": cpu_seconds, "peak_rss": peak}))
    return 0


# -- report ---------------------------------------------------------------------------------


def print_sizes(label: str, sizes: dict, limit: int) -> int:
    """Print the per-table sizes of one landing folder; return the in-memory bytes the job reads.

    The gold job does not read ``customers``, so its size is left out of the job's data.
    """
    print(f"\n{label}: landing tables, MiB (in memory: memory_usage(deep=True) of samples, extrapolated)")
    print(f"{'table':<14} {'rows':>12} {'in memory':>10} {'uncompressed':>12} {'on disk':>8}")
    for table, s in sizes.items():
        print(
            f"{table:<14} {s['rows']:>12,} {mib(s['memory']):>10} {mib(s['uncompressed']):>12} {mib(s['on_disk']):>8}"
        )
    for name, tables in (("total", list(sizes)), ("read by the job", JOB_TABLES)):
        rows, memory, uncompressed, on_disk = (
            sum(sizes[t][k] for t in tables) for k in ("rows", "memory", "uncompressed", "on_disk")
        )
        print(
            f"{name:<15}{rows:>12,} {mib(memory):>10} {mib(uncompressed):>12} {mib(on_disk):>8}"
            f"   in memory / worker limit = {memory / limit:.2f}x"
        )
    return int(memory)


def print_jobs(jobs: list[Job], limit: int) -> None:
    """The comparison table, one row per job, with its notes underneath."""
    print(f"\n{'job':<30} {'data MiB':>9} {'x limit':>8} {'seconds':>8} {'CPU s':>7} {'peak RSS MiB':>13} "
          f"{'within':>6} {'gold rows':>10} {'= distinct apps':>15}")  # fmt: skip
    for job in jobs:
        within = {None: "-", True: "yes", False: "NO"}[job.within]
        match = "yes" if job.gold_rows == job.expected_rows else f"NO ({job.expected_rows:,})"
        print(
            f"{job.name:<30} {mib(job.data_bytes):>9} {job.data_bytes / limit:>7.2f}x {job.seconds:>8.1f} "
            f"{job.cpu_seconds:>7.0f} {'/'.join(map(mib, job.peaks)):>13} {within:>6} {job.gold_rows:>10,} {match:>15}"
        )
        for note in job.notes:
            print(f"{'':<32}{note}")


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 4 and sys.argv[1] == "--pandas-peer":
        return pandas_peer_main(sys.argv[2], sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        type=int,
        default=6_500_000,
        help="applications (default 6.5M: the job reads ~3.2x a 1 GiB limit)",
    )
    parser.add_argument(
        "--memory-limit", default="1GiB", help="memory limit of each Dask worker (default 1GiB)"
    )
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes (default 2)")
    parser.add_argument(
        "--npartitions",
        type=int,
        default=None,
        help="partitions of every shuffle (default: ~24 MiB of the largest table each)",
    )
    parser.add_argument(
        "--shuffle", choices=("tasks", "p2p"), default="tasks", help="Dask shuffle method (default tasks)"
    )
    parser.add_argument(
        "--small-fraction", type=float, default=0.1, help="size of the pandas comparison (default 0.1)"
    )
    parser.add_argument("--pandas-full", action="store_true", help="also run pandas on the full size")
    parser.add_argument(
        "--timeout", type=float, default=3600, help="give up on a Dask job after this many seconds"
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    from dask.utils import parse_bytes

    from mlsd.data import generate

    limit = parse_bytes(args.memory_limit)
    small_rows = max(1_000, int(args.rows * args.small_fraction))
    work = Path(tempfile.mkdtemp(prefix="mlsd-bench-ooc-"))
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    try:
        start = time.perf_counter()
        landings = {"full": work / "landing-full", "small": work / "landing-small"}
        generate(landings["full"], rows=args.rows, seed=args.seed, fmt="parquet", progress=False)
        generate(landings["small"], rows=small_rows, seed=args.seed, fmt="parquet", progress=False)
        print(
            f"generated {args.rows:,} + {small_rows:,} applications as Parquet in {time.perf_counter() - start:.0f} s"
        )
        sizes = {name: landing_size(path) for name, path in landings.items()}
        data_bytes = {
            "full": print_sizes(f"full ({args.rows:,} applications)", sizes["full"], limit),
            "small": print_sizes(f"small ({small_rows:,} applications)", sizes["small"], limit),
        }
        rows = {"full": args.rows, "small": small_rows}
        # the largest table (repayments) sets the partition count; at least two partitions per worker
        parts = {
            name: args.npartitions
            or max(
                2 * args.workers,
                round(max(sizes[name][t]["memory"] for t in JOB_TABLES) / TARGET_PARTITION_BYTES),
            )
            for name in landings
        }
        expected = {name: distinct_applications(path) for name, path in landings.items()}

        plan = [("small", "dask"), ("small", "pandas"), ("full", "dask")]
        if args.pandas_full:
            plan.append(("full", "pandas"))
        jobs: list[Job] = []
        for name, engine in plan:
            out = work / f"gold-{name}-{engine}"
            if engine == "pandas":
                label = f"pandas, {rows[name]:,} apps"
                print(f"running {label} ...", flush=True)
                try:
                    report = run_pandas(landings[name], out)
                    job = Job(
                        label,
                        data_bytes[name],
                        report["seconds"],
                        report["cpu"],
                        [report["peak_rss"]],
                        0,
                        expected[name],
                    )
                except RuntimeError as err:
                    job = Job(
                        label,
                        data_bytes[name],
                        float("nan"),
                        float("nan"),
                        [0],
                        0,
                        expected[name],
                        notes=[f"FAILED: {err}"],
                    )
            else:
                label = f"dask {args.workers}x{args.memory_limit}, {rows[name]:,} apps"
                print(f"running {label} ...", flush=True)
                seconds, rss, restarted, notes = run_dask(
                    landings[name],
                    out,
                    n_workers=args.workers,
                    memory_limit=limit,
                    npartitions=parts[name],
                    shuffle=args.shuffle,
                    spill_dir=work / "dask-spill",
                    timeout=args.timeout,
                )
                peaks = list(rss.peaks.values())
                job = Job(
                    label,
                    data_bytes[name],
                    seconds,
                    rss.cpu,
                    peaks,
                    0,
                    expected[name],
                    limit,
                    restarted,
                    notes,
                )
            job.gold_rows = parquet_rows(out) if out.exists() else 0
            jobs.append(job)
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(work / "dask-spill", ignore_errors=True)

        print_jobs(jobs, limit)
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        full = next(j for j in jobs if j.name.startswith("dask") and j.data_bytes == data_bytes["full"])
        ratio = data_bytes["full"] / limit
        verdict = "PASS" if full.finished and full.within and ratio >= 3 else "FAIL"
        print(
            f"\nbudget: data >= 3x the worker limit ({ratio:.2f}x), completes ({'yes' if full.finished else 'no'}), "
            f"peak within the limit ({mib(max(full.peaks))} of {mib(limit)} MiB: {'yes' if full.within else 'no'})"
            f"   {verdict}"
        )
        return 0 if full.finished else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
