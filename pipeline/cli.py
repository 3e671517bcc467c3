"""The `tfxp` command: run the pipeline locally and inspect its runs in ML Metadata."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
from typing import NoReturn

from pipeline.config import ConfigError, PipelineConfig, load_config
from serving import launch

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _shared_options() -> tuple[argparse.ArgumentParser, ...]:
    """Parent parsers of the options several commands take: the config, and a run's options."""
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", "-c", help="pipeline config YAML (default: the bundled taxi config)")
    config.add_argument(
        "--set",
        "-s",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set trainer.train_steps=200 (repeatable)",
    )

    def run_options(prefix: str) -> argparse.ArgumentParser:
        run = argparse.ArgumentParser(add_help=False)
        run.add_argument("--verbose", "-v", action="store_true", help=f"{prefix}also print TFX's own logs")
        run.add_argument(
            "--wait-lock",
            action="store_true",
            help=f"{prefix}if another run uses the output directory, wait for it"
            + ("" if prefix else " instead of stopping"),
        )
        return run

    return config, run_options(""), run_options("with --retrain: ")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfxp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    config, run_options, retrain_options = _shared_options()

    def command(name: str, handler, help: str, *parents: argparse.ArgumentParser, takes_config: bool = True):
        """A subcommand; its handler gets the parsed arguments and the loaded config (None
        for a command that takes none)."""
        cmd = sub.add_parser(name, help=help, parents=[config, *parents] if takes_config else list(parents))
        cmd.set_defaults(handler=handler, takes_config=takes_config)
        return cmd

    command("run", _run, "run the whole pipeline locally (Beam DirectRunner, SQLite ML Metadata)", run_options)
    add_span = command("add-span", _add_span, "add a CSV drop as the next span under data.path, then run", run_options)
    add_span.add_argument("file", help="the CSV file of the new drop")
    add_span.add_argument("--no-run", action="store_true", help="only add the span")
    export = command(
        "export-schema",
        _export_schema,
        "write the latest inferred schema to a file, to curate and import with schema.path",
    )
    export.add_argument(
        "--output", "-o", default="schema/schema.pbtxt", help="where to write it (default schema/schema.pbtxt)"
    )
    lineage = command("lineage", _lineage, "what produced a pushed model: data spans, schema, hyperparameters")
    lineage.add_argument("version", nargs="?", type=int, help="a served version (default: the newest)")
    rollback = command("rollback", _rollback, "serve an earlier pushed version again (pushed anew as the newest)")
    rollback.add_argument("version", type=int, help="the served version to go back to")
    runs = command("runs", _runs, "show the last runs recorded in ML Metadata")
    runs.add_argument("--last", type=int, default=3, help="how many runs to show (default 3)")
    doctor = command(
        "doctor",
        _doctor,
        "report what killed runs left behind (partial pushes, artifacts of interrupted executions); --fix removes it",
    )
    doctor.add_argument("--fix", action="store_true", help="remove the leftovers (refused while a run is going)")
    compile_ = command("compile", _compile, "compile for Kubeflow Pipelines 2.x (.yaml) or Vertex AI (.json)")
    compile_.add_argument(
        "--output",
        "-o",
        help="pipeline.yaml (KFP PipelineSpec + Kubernetes platform spec) or "
        "job.json (Vertex AI PipelineJob); default build/pipeline.yaml "
        "(build/monitor.yaml with --monitor)",
    )
    local_image_help = (
        "accept an image that only this machine (or nodes it was loaded into with "
        "`kind load`) holds, e.g. localhost/...; for kfp.local and test clusters"
    )
    compile_.add_argument("--allow-local-image", action="store_true", help=local_image_help)
    compile_.add_argument(
        "--monitor",
        action="store_true",
        help="compile the one-step pipeline that runs tfxp monitor (for a recurring run)",
    )
    sub_ = command("submit", _submit, "compile, upload to a KFP endpoint and start a run")
    sub_.add_argument("--package", help="submit this compiled pipeline instead of compiling the config")
    sub_.add_argument("--allow-local-image", action="store_true", help=local_image_help)
    sub_.add_argument("--endpoint", help="KFP API URL (default: kubeflow.endpoint or KFP_ENDPOINT)")
    sub_.add_argument(
        "--namespace", help="profile namespace on multi-user KFP (default: kubeflow.namespace or KFP_NAMESPACE)"
    )
    sub_.add_argument("--experiment", help="experiment name, created if missing (default: kubeflow.experiment)")
    sub_.add_argument("--experiment-id", help="an existing experiment's id instead of a name")
    sub_.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"a run parameter ({', '.join(('data_root', 'train_args', 'eval_args', 'eval_config'))}); "
        "the others come from the config and its --set overrides",
    )
    sub_.add_argument("--schedule", metavar="CRON", help="also create a recurring run, e.g. '0 0 3 * * *'")
    sub_.add_argument("--wait", action="store_true", help="wait for the run to finish and report its state")
    sub_.add_argument("--timeout", type=int, default=3600, help="seconds to wait with --wait (default 3600)")
    serve = command(
        "serve",
        _serve,
        "serve the pushed model: tensorflow_model_server or the official "
        "image if available, else the TF Serving stand-in",
    )
    serve.add_argument(
        "--model-base-path", help="TF Serving model directory (default: the local run's serving directory)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--rest-port", type=int, default=8501, help="REST port (default 8501; 0 picks a free one)")
    serve.add_argument("--grpc-port", type=int, default=8500, help="gRPC port (default 8500; 0 picks a free one)")
    serve.add_argument("--poll-seconds", type=float, default=2.0, help="how often to look for a new push")
    serve.add_argument(
        "--log-requests",
        metavar="DIR",
        help="log the tf.Examples of every request under DIR (stand-in only), for the "
        "training-serving skew check (drift.serving_requests)",
    )
    serve.add_argument(
        "--monitoring-config-file",
        metavar="FILE",
        help="TF Serving's --monitoring_config_file: a MonitoringConfig that enables Prometheus "
        "metrics on the REST port (kubernetes/serving/base/monitoring.config)",
    )
    serve.add_argument(
        "--engine",
        default="auto",
        choices=launch.ENGINES,
        help="auto (default): tensorflow_model_server on PATH, else the official image in "
        "docker/podman if present locally, else the stand-in",
    )
    serve.add_argument(
        "--image",
        default=launch.OFFICIAL_IMAGE,
        help=f"TF Serving image for the container engine (default {launch.OFFICIAL_IMAGE})",
    )
    proxy = command(
        "log-proxy",
        _log_proxy,
        "a REST proxy in front of TF Serving that logs sampled predictions "
        "(request, response, request id) as PredictionLog records",
        takes_config=False,
    )
    proxy.add_argument("--upstream", default="http://127.0.0.1:8501", help="TF Serving's REST address")
    proxy.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    proxy.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0 picks a free one)")
    proxy.add_argument(
        "--log-dir", required=True, metavar="DIR", help="where the request log goes (drift.serving_requests reads it)"
    )
    proxy.add_argument(
        "--sampling-rate",
        type=float,
        default=1.0,
        help="the share of successful predictions logged, in [0, 1] (default 1)",
    )
    predict = command("predict", _predict, "send rows (CSV or JSON lines) to TF Serving and print predictions")
    predict.add_argument("rows", nargs="?", help="a CSV file with a header, or a .jsonl file")
    predict.add_argument("--url", default="http://127.0.0.1:8501", help="REST endpoint (default http://127.0.0.1:8501)")
    predict.add_argument("--grpc", metavar="HOST:PORT", help="use gRPC at HOST:PORT instead of REST")
    predict.add_argument("--version", type=int, help="a specific model version (default: the newest served)")
    predict.add_argument(
        "--classify",
        action="store_true",
        help="use TF Serving's Classify API (REST :classify) and print a score per class",
    )
    predict.add_argument(
        "--regress",
        action="store_true",
        help="use TF Serving's Regress API (REST :regress) of a regression model: a value per row",
    )
    predict.add_argument("--status", action="store_true", help="print the model's version status instead")
    predict.add_argument("--metadata", action="store_true", help="print the model's signatures instead")
    feedback = command(
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
    mon = command(
        "monitor",
        _monitor,
        "live metrics (TFMA), drift and skew (TFDV) and health of the served "
        "version over a window; exit 1 when a threshold is crossed, "
        "3 when the window had no traffic",
        retrain_options,
    )
    mon.add_argument("--window", help="how far back from now, e.g. 30m, 24h, 7d (default: monitor.window)")
    mon.add_argument(
        "--retrain",
        action="store_true",
        help="when a threshold is crossed: the window's labelled traffic becomes the next span "
        "and the pipeline runs on it (its gates decide whether it is pushed)",
    )
    mon.add_argument("--drop", metavar="CSV", help="with --retrain: a new drop whose rows join that span")
    rep = command(
        "report",
        _report,
        "write a static HTML page for a run: statistics, anomalies, drift, "
        "metrics and plots, baseline, served versions, live metrics",
    )
    rep.add_argument("run", nargs="?", help="the run id, as tfxp runs shows it (default: the newest run)")
    rep.add_argument(
        "--facets", action="store_true", help="also embed TFDV's Facets view, which loads its code from the network"
    )
    command("config", _show_config, "print the resolved configuration")
    return parser


# Each handler gets the parsed arguments and the config, loaded and validated once in `main`,
# and calls the packages: pipeline/ (runs, compiling, submitting), ops/ and serving/.


def _run(args, config: PipelineConfig) -> int:
    from ops import doctor
    from pipeline import local_runner, run_lock

    try:
        log_path = local_runner.run(config, verbose=args.verbose, wait_lock=args.wait_lock, notes=doctor.leftover_notes)
    except local_runner.PipelineFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except run_lock.LockHeld as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"\nPipeline finished; TFX log: {log_path}\n")
    from ops.runs import format_run, runs  # reading the evaluation imports TensorFlow: after the run

    latest = runs(config.metadata_path, config.pipeline_name, limit=1)
    if latest:
        print(format_run(latest[0]))
    print(f"\nServing directory (TF Serving model base path): {config.serving_dir}")
    return 0


def _add_span(args, config: PipelineConfig) -> int:
    from pipeline import preflight
    from pipeline.spans import add_span

    if config.data.format.value != "csv":
        raise ConfigError("add-span adds CSV drops; data.format is " + config.data.format.value)
    columns = preflight.csv_header(args.file)
    preflight.check_columns(config, columns, args.file)
    span, path = add_span(config, args.file)
    print(f"added span {span}: {path}")
    return 0 if args.no_run else _run(args, config)


def _export_schema(args, config: PipelineConfig) -> int:
    from ops.export_schema import export_schema

    written = export_schema(config, os.path.abspath(args.output))
    print(
        f"wrote {written}\nEdit it (domains, presence, value ranges), commit it, and run with "
        f"--set schema.path={args.output} (or set schema.path in the config)."
    )
    return 0


def _lineage(args, config: PipelineConfig) -> int:
    from ops.lineage import format_lineage, lineage

    print(format_lineage(lineage(config.metadata_path, config.pipeline_name, config.serving_dir, args.version)))
    return 0


def _rollback(args, config: PipelineConfig) -> int:
    from ops.rollback import roll_back
    from pipeline import run_lock

    try:
        new_version = roll_back(config, args.version)
    except run_lock.LockHeld as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(
        f"version {args.version} is served again, as version {new_version} "
        f"({os.path.join(config.serving_dir, str(new_version))}); TF Serving picks it up on its next poll"
    )
    return 0


def _doctor(args, config: PipelineConfig) -> int:
    from ops import doctor

    try:
        report = doctor.fix(config) if args.fix else doctor.check(config)
    except doctor.RunInProgress as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print("\n".join(doctor.format_report(report)))
    return EXIT_FAILED if report.findings and not report.fixed else 0


def _runs(args, config: PipelineConfig) -> int:
    from ops.runs import format_run, runs
    from pipeline import run_lock

    live = run_lock.holder_of(config.output_dir) is not None  # else a RUNNING execution's run is gone
    found = runs(config.metadata_path, config.pipeline_name, limit=args.last, live_run=live)
    if not found:
        print(f"no runs of '{config.pipeline_name}' recorded in {config.metadata_path}")
    for run in found:
        print(format_run(run))
    return 0


def _compile(args, config: PipelineConfig) -> int:
    from pipeline import kubeflow_runner

    if args.monitor:
        from ops.monitoring.kubeflow import compile_monitor

        output = args.output or "build/monitor.yaml"
        if not output.endswith((".yaml", ".yml")):
            raise ConfigError(f"--output {output}: the monitor pipeline is compiled to a .yaml file")
        path = compile_monitor(config, output, allow_local_image=args.allow_local_image)
        print(f"compiled '{config.pipeline_name}-monitor' for image {config.kubeflow.image}: {os.path.abspath(path)}")
        return 0
    output = args.output or "build/pipeline.yaml"
    if not output.endswith((".yaml", ".yml", ".json")):
        raise ConfigError(
            f"--output {output}: use a .yaml file (Kubeflow Pipelines) or a .json file (Vertex AI PipelineJob)"
        )
    path = kubeflow_runner.compile_pipeline(config, output, allow_local_image=args.allow_local_image)
    print(f"compiled '{config.pipeline_name}' for image {config.kubeflow.image}: {os.path.abspath(path)}")
    return 0


def _submit(args, config: PipelineConfig) -> int:
    from pipeline import kubeflow_runner, submit

    if args.schedule:  # bad input, found before anything is compiled or sent
        try:
            submit.check_schedule(args.schedule)
        except submit.SubmitError as err:
            raise ConfigError(str(err)) from None
    package = args.package or kubeflow_runner.compile_pipeline(
        config, "build/pipeline.yaml", allow_local_image=args.allow_local_image
    )
    pipeline_name, parameters = submit.run_parameters(config, package, args.param)
    kf = config.kubeflow
    try:
        result = submit.submit(
            package,
            pipeline_name=pipeline_name,
            endpoint=args.endpoint or os.environ.get("KFP_ENDPOINT") or kf.endpoint,
            namespace=args.namespace or os.environ.get("KFP_NAMESPACE") or kf.namespace,
            token=os.environ.get("KFP_TOKEN"),
            experiment=args.experiment or kf.experiment,
            experiment_id=args.experiment_id,
            parameters=parameters,
            pipeline_root=kf.pipeline_root,
            schedule=args.schedule,
            wait=args.wait,
            timeout=args.timeout,
        )
    except submit.SubmitError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"pipeline {result.pipeline_id} version {result.version_id}; experiment {result.experiment_id}; "
        f"run {result.run_id}" + (f"; recurring run {result.recurring_run_id}" if result.recurring_run_id else "")
    )
    if result.state:
        print(f"run {result.run_id} finished: {result.state}")
        return 0 if result.state.upper() == "SUCCEEDED" else EXIT_FAILED
    return 0


def _serve(args, config: PipelineConfig) -> int:
    base_path = os.path.abspath(args.model_base_path or config.serving_dir)
    if not os.path.isdir(base_path):
        raise ConfigError(
            f"model directory {base_path} does not exist; run the pipeline first (make run) or pass --model-base-path"
        )
    monitoring_file = os.path.abspath(args.monitoring_config_file) if args.monitoring_config_file else None
    metrics_path = None
    if monitoring_file:
        from serving.metrics import MonitoringConfigError, read_monitoring_config

        try:  # read here for every engine, so that a bad file fails before any server starts
            metrics_path = read_monitoring_config(monitoring_file)
        except MonitoringConfigError as err:
            raise ConfigError(str(err)) from None
    try:
        server = launch.choose(
            config.model_name,
            base_path,
            host=args.host,
            rest_port=args.rest_port,
            grpc_port=args.grpc_port,
            poll_seconds=args.poll_seconds,
            engine=args.engine,
            image=args.image,
            monitoring_config_file=monitoring_file,
        )
    except launch.LaunchError as err:
        raise ConfigError(str(err)) from None
    if server.kind != "standin" and args.log_requests:
        raise ConfigError(
            "--log-requests works with the stand-in only (--engine standin); "
            "tensorflow_model_server logs requests through its own logging config"
        )
    if server.kind != "standin":
        print(f"starting {server.description} on model '{config.model_name}' from {base_path}", flush=True)
        os.execv(server.argv[0], list(server.argv))
    from serving.standin.server import serve_forever

    serve_forever(
        config.model_name,
        base_path,
        args.host,
        args.rest_port,
        args.grpc_port,
        args.poll_seconds,
        os.path.abspath(args.log_requests) if args.log_requests else None,
        metrics_path,
    )
    return 0


def _log_proxy(args, _config: None) -> int:
    from serving.logging_proxy import ProxyError, serve_forever

    try:
        serve_forever(args.upstream, os.path.abspath(args.log_dir), args.sampling_rate, args.host, args.port)
    except ProxyError as err:
        raise ConfigError(str(err)) from None
    return 0


def _predict(args, config: PipelineConfig) -> int:
    from serving.client import ClientError, GrpcClient, RestClient, read_rows

    try:
        if args.grpc:
            client = GrpcClient(args.grpc, config.model_name, args.version)
        else:
            client = RestClient(args.url, config.model_name, args.version)
        if args.status or args.metadata:
            print(json.dumps(client.status() if args.status else client.metadata(), indent=2))
            return 0
        if not args.rows:
            raise ConfigError("give a rows file (CSV with a header, or .jsonl), or --status / --metadata")
        rows = read_rows(args.rows)
        if args.classify:
            for row_number, scores in enumerate(client.classify(rows), 1):
                print(json.dumps({"row": row_number, "scores": scores}))
        elif args.regress:
            for row_number, value in enumerate(client.regress(rows), 1):
                print(json.dumps({"row": row_number, "value": value}))
        else:
            for row_number, prediction in enumerate(client.predict(rows), 1):
                # TF Serving's REST rows are the bare value when a signature has one output.
                fields = prediction if isinstance(prediction, dict) else {"predictions": prediction}
                print(json.dumps({"row": row_number, **fields}))
    except ClientError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    return 0


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
    return _run(args, config)


def _report(args, config: PipelineConfig) -> int:
    from ops.monitoring import report

    print(f"wrote {report.write(config, args.run, args.facets)}")
    return 0


def _show_config(args, config: PipelineConfig) -> int:
    print(json.dumps(config.as_dict(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config, args.overrides) if args.takes_config else None
        return args.handler(args, config)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:  # an output directory that cannot be written, a full disk
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry_point() -> NoReturn:
    """The `tfxp` program: `main`, then a prompt exit.

    With TensorFlow, Beam and TFX loaded, the interpreter's own shutdown (module teardown and
    native destructors) takes seconds after the command has finished (benchmarks/README.md,
    quick tier). Exit handlers run and the output is flushed first; then the process ends. Output
    that cannot be written (a full disk under a redirect) makes a successful command fail; a
    failed command keeps its exit code.
    """
    try:
        code = main()
    except SystemExit as err:  # argparse: usage errors and --help
        code = err.code if isinstance(err.code, int) else EXIT_FAILED if err.code else 0
        if isinstance(err.code, str):
            _last_words(err.code)
    except BaseException as err:  # noqa: BLE001 - whatever it is, the exit code must say failure
        _last_words(f"error: {type(err).__name__}: {err}")
        code = EXIT_FAILED
    # Private: the exit handlers (logging's flush and close, Beam workers kept by this run) must run
    # before os._exit, which skips them; atexit has no public call that runs them early. (os._exit
    # itself is public: the documented way to end a process without the interpreter's teardown.)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError) as err:
            code = code or EXIT_FAILED
            if stream is sys.stdout:
                _last_words(f"error: the output could not be written: {err}")
    os._exit(code)


def _last_words(line: str) -> None:
    """Writes a line straight to descriptor 2, past Python's buffers (which may be what failed)."""
    try:
        os.write(2, (line.rstrip("\n") + "\n").encode(errors="replace"))
    except OSError:
        pass


if __name__ == "__main__":
    entry_point()
