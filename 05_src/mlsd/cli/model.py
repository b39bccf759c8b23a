"""``mlsd train``, ``score``, ``monitor``, ``retrain``, ``serve``: the model's life (:mod:`mlsd.training`,
:mod:`mlsd.serving`, :mod:`mlsd.monitoring`, :mod:`mlsd.retraining`)."""

from __future__ import annotations

import argparse
import signal
import sys
from contextlib import closing

from mlsd.cli._commands import Commands, Option, lazy, positive_int
from mlsd.cli._output import print_table, say, usage_error
from mlsd.cli._progress import QUIET, Progress

db = lazy("db")  # package modules load when a command runs, so `mlsd --help` stays fast
monitoring = lazy("monitoring")
retraining = lazy("retraining")
serving = lazy("serving")
training = lazy("training")

commands = Commands()

DEFAULT_MODEL = "lending-default"  # serving.DEFAULT_MODEL, spelt out: building the parser imports no package


@commands.command(
    "train",
    "Train a baseline and a tuned model on the gold table, track both in MLflow and register "
    "the better one as champion.",
    "uv run mlsd train --method random --n-iter 8",
)
@Option("--experiment", default="lending-default", help="MLflow experiment (default: lending-default)")
@Option("--train-end", default="2024-12", help="last training month, YYYY-MM (default: 2024-12)")
@Option("--valid-end", default="2025-03", help="last validation month, YYYY-MM (default: 2025-03)")
@Option("--method", choices=["random", "grid", "halving"], default="random", help="hyperparameter search")
@Option(
    "--n-iter", type=positive_int, default=8, help="candidates of the random or halving search (default: 8)"
)
@Option("--seed", type=int, default=42, help="random seed (default: 42)")
@Option("--register-as", default=DEFAULT_MODEL, help="registered model name (default: lending-default)")
@Option("--dask", action="store_true", help="search on Dask: DASK_SCHEDULER_ADDRESS, or a local cluster")
@QUIET
def train(args: argparse.Namespace) -> int:
    with Progress.for_args(args) as progress:
        progress.start("database")
        conn = db.connect()
        progress.start("loading the training code")
        summary = _train(args, conn, progress)
        progress.done()
    _print_summary(summary, args.experiment)
    return 0


def _train(args: argparse.Namespace, conn, progress: Progress):
    with closing(conn):
        return training.train(
            conn,
            experiment=args.experiment,
            train_end=args.train_end,
            valid_end=args.valid_end,
            tune_method=args.method,
            n_iter=args.n_iter,
            random_state=args.seed,
            register_as=args.register_as,
            use_dask=True if args.dask else None,
            progress=progress.start,
        )


def _print_summary(summary, experiment: str) -> None:
    print_table(
        [
            (
                r.model,
                f"{r.cv_pr_auc:.3f}",
                f"{r.pr_auc:.3f}",
                f"{r.roc_auc:.3f}",
                f"{r.threshold:.3f}",
                r.version or "-",
                r.alias or "-",
                r.run_id,
            )
            for r in summary.itertuples()
        ],  # fmt: skip
        ["model", "cv PR-AUC", "valid PR-AUC", "valid ROC-AUC", "threshold", "version", "alias", "run"],
    )
    print(
        f"\nTrained in {summary.attrs['seconds']:.1f} s; runs in experiment {experiment!r} at "
        f"{summary.attrs['tracking_uri']} (see them with `uv run mlsd mlflow ui`)."
    )


@commands.command(
    "score",
    "Score the applications of one or more months with a registered model into "
    "monitoring.prediction_log (re-running a batch replaces it).",
    "uv run mlsd score 2025-04 2025-05",
)
@Option("months", nargs="+", metavar="MONTH", help="months to score, YYYY-MM")
@Option("--model", default=DEFAULT_MODEL, help="registered model (default: lending-default)")
@Option("--alias", default="champion", help="model alias (default: champion)")
@Option("--batch-id", help="batch identifier for one month (default: MONTH:MODEL:vVERSION)")
@QUIET
def score(args: argparse.Namespace) -> int:
    if args.batch_id and len(args.months) > 1:
        return usage_error("--batch-id names one batch: give one month with it, or leave it out.")
    batches = []
    with Progress.for_args(args) as progress:
        progress.start("database")
        with closing(db.connect()) as conn:
            for number, month in enumerate(args.months, start=1):
                progress.start(
                    f"[{number}/{len(args.months)}] scoring {month} with {args.model}@{args.alias}"
                )
                batches.append(
                    serving.score_month(
                        conn, month, model_name=args.model, alias=args.alias, batch_id=args.batch_id
                    )
                )
                progress.done(f"{batches[-1].rows:,} rows")
    print_table(
        [
            (
                b.month,
                f"{b.model_name} v{b.model_version}",
                f"{b.rows:,}",
                f"{b.flagged:,}",
                f"{b.threshold:.3f}",
                f"{b.rows_per_second:,.0f}",
                b.batch_id,
            )
            for b in batches
        ],
        ["month", "model", "rows", "flagged", "threshold", "rows/s", "batch id"],
    )
    print("\nPredictions are in monitoring.prediction_log (re-scoring a batch id replaces its rows).")
    return 0


@commands.command(
    "monitor",
    "Drift of one month against a reference window, performance with the labels known so far, alerts.",
    "uv run mlsd monitor --month 2025-06",
)
@Option("--month", required=True, help="month to check, YYYY-MM")
@Option("--reference-start", default="2024-01", help="first reference month (default: 2024-01)")
@Option("--reference-end", default="2024-12", help="last reference month (default: 2024-12)")
@Option(
    "--model",
    default=DEFAULT_MODEL,
    help="registered model whose logged scores to watch (default: lending-default)",
)
@QUIET
def monitor(args: argparse.Namespace) -> int:
    with Progress.for_args(args) as progress:
        progress.start("database")
        with closing(db.connect()) as conn:
            progress.start(f"drift, performance and alerts for {args.month}")
            report = monitoring.monitor_month(
                conn, args.month, reference=(args.reference_start, args.reference_end), model_name=args.model
            )
        progress.clear()
    print(f"Drift of {args.month} against {args.reference_start}..{args.reference_end}:")
    print_table(
        [
            (
                r.feature,
                r.test,
                f"{r.statistic:.3f}",
                f"{r.p_value:.2g}",
                f"{r.psi:.3f}",
                "DRIFT" if r.drifted else "",
            )
            for r in report.drift.itertuples()
        ],
        ["feature", "test", "statistic", "p", "psi", "flag"],
    )
    if not report.performance.empty:
        print("\nPerformance by month (labels known so far):")
        print(report.performance.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if report.alerts.empty:
        print("\nNo alerts.")
    else:
        print(f"\n{len(report.alerts)} alert(s):")
        print(report.alerts.to_string(index=False))
    return 0


@commands.command(
    "retrain",
    "Retrain on the latest mature labels and decide: data-quality gates, a challenger, a comparison with the "
    "champion, promotion or not; every step logged in monitoring.job_log. Same data and month: same decision, "
    "done once. Exit code 1 when a gate stops the flow.",
    "uv run mlsd retrain --month 2026-06 --dry-run",
)
@Option("--month", help="the newest month of applications, YYYY-MM (default: the latest in the data)")
@Option(
    "--model",
    default=DEFAULT_MODEL,
    help="registered model whose champion is challenged (default: lending-default)",
)
@Option(
    "--min-gain",
    type=float,
    default=0.01,
    help="PR-AUC the challenger must gain to be promoted (default: 0.01)",
)
@Option("--dry-run", action="store_true", help="decide, but register and promote nothing")
def retrain(args: argparse.Namespace) -> int:
    options = retraining.RetrainOptions(min_gain=args.min_gain)
    with closing(db.connect()) as conn:
        decision = retraining.retrain(
            conn, args.month, model_name=args.model, options=options, dry_run=args.dry_run
        )
    print(
        f"Retraining {decision.model_name} for {decision.month}: train on {'..'.join(decision.train_months)}, "
        f"compare on {'..'.join(decision.eval_months)} (mature labels only)."
    )
    print_table(
        [(g.gate, "pass" if g.passed else "STOP", g.message) for g in decision.gates],
        ["gate", "result", "numbers"],
    )
    if decision.champion_pr_auc is not None:
        print()
        print_table(
            [
                ("champion", f"v{decision.champion_version}", f"{decision.champion_pr_auc:.3f}"),
                ("challenger", f"v{decision.challenger_version or '-'}", f"{decision.challenger_pr_auc:.3f}"),
            ],
            ["model", "version", "PR-AUC"],
        )
    done = " (dry run: nothing registered or promoted)" if decision.dry_run else ""
    if decision.reused:
        done = f" (decided earlier, same idempotency key {decision.run_key}: nothing done again)"
    print(f"\nDecision: {decision.action}{done}. {decision.reason}")
    print(f"Job records: SELECT * FROM monitoring.job_log WHERE run_id = '{decision.run_id}' ORDER BY id;")
    return 1 if decision.action == "stop" else 0


@commands.command(
    "serve",
    "Serve a registered model over HTTP with MLflow's model server, until Ctrl-C.",
    "uv run mlsd serve --port 5001",
)
@Option("--model", default=DEFAULT_MODEL, help="registered model (default: lending-default)")
@Option("--alias", default="champion", help="model alias (default: champion)")
@Option("--port", type=int, default=5001, help="port to listen on (default: 5001; 0: any free port)")
@Option("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this computer)")
def serve(args: argparse.Namespace) -> int:
    say(f"Starting MLflow's model server for models:/{args.model}@{args.alias} ...")
    server = serving.serve(args.model, alias=args.alias, port=args.port, host=args.host)
    # A plain `kill` must not orphan the server either: turn SIGTERM into a clean exit.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    example = '{"dataframe_split": {"columns": [...], "data": [[...]]}}'
    say(
        f"Serving {server.model_uri} on {server.url} (log: {server.log_path}). Ctrl-C to stop.\n"
        f"  curl {server.url}/invocations -H 'Content-Type: application/json' -d '{example}'"
    )
    try:
        return server.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
