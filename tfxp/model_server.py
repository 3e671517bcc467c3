"""The pushed model served and asked: `serve`, `log-proxy`, `predict`, `predict-batch`."""

from __future__ import annotations

import json
import os

from pipeline.config import ConfigError, PipelineConfig
from serving import launch
from tfxp.commands import Commands


def register(commands: Commands) -> None:
    serve = commands.add(
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
        "--model-config-file",
        metavar="FILE",
        help="TF Serving's --model_config_file: versions and labels (default: the base path's "
        "models.config, which the Pusher writes, when it exists; 'none': serve the newest version)",
    )
    serve.add_argument(
        "--model-config-file-poll-wait-seconds",
        type=float,
        default=2.0,
        help="how often the model config is read again (TF Serving's flag; 0: at start only; default 2)",
    )
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
    proxy = commands.add(
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
    predict = commands.add("predict", _predict, "send rows (CSV or JSON lines) to TF Serving and print predictions")
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
    batch = commands.add(
        "predict-batch",
        _predict_batch,
        "score a CSV, Parquet or TFRecord file (or glob) of raw rows with a pushed version, "
        "through Beam (tfx-bsl's RunInference) on the configured runner",
    )
    batch.add_argument("input", help="a file or a glob (data/*.csv): .csv[.gz], .parquet, .tfrecord[.gz]")
    batch.add_argument(
        "--output", "-o", required=True, help="where the predictions go: .csv, .parquet or .tfrecord (by its name)"
    )
    batch.add_argument(
        "--version", type=int, help="the served version to score with (default: the stable label's, else the newest)"
    )
    batch.add_argument(
        "--key-columns",
        default="",
        metavar="A,B",
        help="input columns copied to the output beside each prediction (default: row, and file for a glob)",
    )
    batch.add_argument("--verbose", "-v", action="store_true", help="also print TensorFlow's and Beam's own logs")


def _serve(args, config: PipelineConfig) -> int:
    base_path = os.path.abspath(args.model_base_path or config.serving_dir)
    if not os.path.isdir(base_path):
        raise ConfigError(
            f"model directory {base_path} does not exist; run the pipeline first (make run) or pass --model-base-path"
        )
    monitoring_file = os.path.abspath(args.monitoring_config_file) if args.monitoring_config_file else None
    config_file = _model_config_file(args.model_config_file, base_path)
    metrics_path = None
    if monitoring_file:
        from serving.metrics import read_monitoring_config

        # Read here for every engine, so that a bad file fails before any server starts.
        metrics_path = read_monitoring_config(monitoring_file)
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
        model_config_file=config_file,
        config_poll_seconds=args.model_config_file_poll_wait_seconds,
    )
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
        model_config_file=config_file,
        config_poll_seconds=args.model_config_file_poll_wait_seconds,
    )
    return 0


def _model_config_file(given: str | None, base_path: str) -> str | None:
    """The model config to serve with: the one given, else the Pusher's beside the versions."""
    from contracts.model_config import config_path

    if given == "none":
        return None
    if given is None:
        found = config_path(base_path)
        return found if os.path.isfile(found) else None
    if not os.path.isfile(given):
        raise ConfigError(f"--model-config-file {given} does not exist; give a ModelServerConfig file or 'none'")
    return os.path.abspath(given)


def _log_proxy(args, _config: None) -> int:
    from serving.logging_proxy import serve_forever

    serve_forever(args.upstream, os.path.abspath(args.log_dir), args.sampling_rate, args.host, args.port)
    return 0


def _predict(args, config: PipelineConfig) -> int:
    from serving.client import GrpcClient, RestClient, read_rows

    if args.grpc:
        client = GrpcClient(args.grpc, config.model_name, args.version)
    else:
        client = RestClient(args.url, config.model_name, args.version)
    if args.status or args.metadata:
        print(json.dumps(client.status() if args.status else client.metadata(), indent=2))
        return 0
    if not args.rows:
        raise ConfigError("give a rows file (CSV with a header, or .jsonl), or --status / --metadata")
    rows = read_rows(args.rows, config.data.missing_values)
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
    return 0


def _predict_batch(args, config: PipelineConfig) -> int:
    import datetime

    from ops.batch_predict import predict_batch
    from pipeline.terminal import terminal_output

    log_dir = os.path.join(config.output_dir, "logs")
    os.makedirs(log_dir, exist_ok=True)
    log = os.path.join(log_dir, f"predict-batch-{datetime.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log")
    # TensorFlow's and Beam's own output goes to the log, as in `tfxp run`.
    with terminal_output(log, args.verbose):
        result = predict_batch(
            config, args.input, args.output, version=args.version, key_columns=args.key_columns.split(",")
        )
    rate = result.rows / result.seconds if result.seconds else 0.0
    print(
        f"scored {result.rows} rows with model '{config.model_name}' version {result.version} "
        f"in {result.seconds:.1f} s ({rate:,.0f} rows/s): {result.output}"
    )
    return 0
