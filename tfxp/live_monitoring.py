"""The served model watched: `feedback`, `monitor`, `report`."""

from __future__ import annotations

from pipeline.config import ConfigError, PipelineConfig
from tfxp.commands import Commands
from tfxp.local_runs import run


def register(commands: Commands) -> None:
    feedback = commands.add(
        "feedback",
        _feedback,
        "join ground truth (CSV: request id, label) to the logged requests, for tfxp monitor and the next span",
    )
    feedback.add_argument("file", nargs="?", help="CSV with the id column (monitor.id_column) and the label column")
    feedback.add_argument(
        "--export-requests",
        metavar="CSV",
        help="instead: write the logged requests (id, time, features) to CSV, to label",
    )
    mon = commands.add(
        "monitor",
        _monitor,
        "live metrics (TFMA), drift and skew (TFDV) and health of the served "
        "version over a window; exit 1 when a threshold is crossed, "
        "3 when the window had no traffic",
        commands.retrain_options,
    )
    mon.add_argument("--window", help="how far back from now, e.g. 30m, 24h, 7d (default: monitor.window)")
    mon.add_argument(
        "--retrain",
        action="store_true",
        help="when a threshold is crossed: the window's labelled traffic becomes the next span "
        "and the pipeline runs on it (its gates decide whether it is pushed)",
    )
    mon.add_argument("--drop", metavar="CSV", help="with --retrain: a new drop whose rows join that span")
    rep = commands.add(
        "report",
        _report,
        "write a static HTML page for a run: statistics, anomalies, drift, "
        "metrics and plots, baseline, served versions, live metrics",
    )
    rep.add_argument("run", nargs="?", help="the run id, as tfxp runs shows it (default: the newest run)")
    rep.add_argument(
        "--facets", action="store_true", help="also embed TFDV's Facets view, which loads its code from the network"
    )


def _feedback(args, config: PipelineConfig) -> int:
    from ops.monitoring import feedback

    if args.export_requests:
        count = feedback.export_requests(config, args.export_requests)
        print(f"wrote {count} logged requests to {args.export_requests}")
        return 0
    if not args.file:
        raise ConfigError("give the feedback CSV file (or --export-requests CSV)")
    result = feedback.join(config, args.file)
    print(f"joined {result.joined} of {result.rows} feedback rows to logged requests: {result.path}")
    if result.duplicates:
        print(f"{result.duplicates} rows repeated an id given earlier in the file; the last label is kept")
    if result.unmatched:
        line, key = result.unmatched[0]
        print(
            f"{len(result.unmatched)} rows match no logged request (first: line {line}, id {key}); "
            f"listed in {result.unmatched_path}"
        )
    return 0


def _monitor(args, config: PipelineConfig) -> int:
    from ops.monitoring import monitor

    if args.drop and not args.retrain:
        raise ConfigError("--drop adds rows to the span that --retrain makes; give --retrain too")
    if args.retrain and not config.data.span_pattern:
        raise ConfigError(
            "--retrain adds the labelled traffic as the next span: set data.span_pattern "
            "(for example --set 'data.span_pattern=span-{SPAN}/*.csv')"
        )
    result, log_path = monitor.monitor_logged(config, args.window, args.verbose)
    print(monitor.format_result(result))
    print(f"TensorFlow's, TFMA's and Beam's log: {log_path}")
    if result.exit_code == monitor.EXIT_CROSSED:
        from pipeline import notify

        notify.notify(
            config,
            notify.MONITOR_CROSSED,
            f"{result.model} version {result.version}: {len(result.findings)} threshold(s) crossed; "
            f"first: {result.findings[0]}",
            {"version": result.version, "findings": result.findings, "metrics": result.metrics},
        )
    if result.exit_code != monitor.EXIT_CROSSED or not args.retrain:
        return result.exit_code
    added = monitor.add_traffic_span(config, result, args.drop)
    if added is None:
        print("not retraining: the window holds no labelled traffic (tfxp feedback FILE) and no --drop")
        return result.exit_code
    print(
        f"\nretraining: {added.rows} rows ({added.labelled} labelled requests"
        f"{', and ' + args.drop if args.drop else ''}) added as span {added.span}: {added.path}"
    )
    return run(args, config)


def _report(args, config: PipelineConfig) -> int:
    from ops.monitoring import report

    print(f"wrote {report.write(config, args.run, args.facets)}")
    return 0
