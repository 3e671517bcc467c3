"""Serving: the pushed model's `serving_default` signature in-process and through `tfxp serve`.

Requests carry serialized tf.Examples of raw test rows (what a client sends to TF Serving),
built once up front so only the call is timed. The endpoint is whatever `tfxp serve` starts
(`--engine auto`: tensorflow_model_server if present, else the project's stand-in), over REST
and gRPC, with one client thread.
"""

from __future__ import annotations

import base64
import csv
import os
import subprocess
import sys
import time

from benchmarks import measure

BATCHES = (1, 64)


def latest_version(serving_dir: str) -> str:
    from contracts.serving_dir import latest_served

    served = latest_served(serving_dir)
    if served is None:
        raise FileNotFoundError(f"no pushed model under {serving_dir}; run the pipeline first")
    return served


def sample_rows(path: str, count: int) -> list[dict]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return [row for _, row in zip(range(count), reader)]


def _timed(call, repeats: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def _row(name: str, batch: int, seconds: list[float]) -> list:
    total = sum(seconds)
    return [
        name,
        batch,
        len(seconds),
        f"{batch * len(seconds) / total:.0f}",
        f"{measure.percentile(seconds, 50) * 1000:.2f}",
        f"{measure.percentile(seconds, 99) * 1000:.2f}",
    ]


def raw_types_in_process(model) -> dict[str, str]:
    """{column: DT_* name} from the model's raw-row signature, as the client reads it remotely."""
    from tensorflow.core.framework import types_pb2

    from contracts.saved_model import RAW_SIGNATURE

    _, inputs = model.signatures[RAW_SIGNATURE].structured_input_signature
    return {name: types_pb2.DataType.Name(spec.dtype.as_datatype_enum) for name, spec in inputs.items()}


def in_process(model_dir: str, rows: list[dict], repeats: int) -> list[list]:
    import tensorflow as tf

    from contracts.saved_model import DEFAULT_SIGNATURE
    from serving.client import to_examples

    model = tf.saved_model.load(model_dir)
    signature = model.signatures[DEFAULT_SIGNATURE]
    examples = to_examples(rows, raw_types_in_process(model))
    table = []
    for batch in BATCHES:
        tensor = tf.constant(examples[:batch])
        timed = _timed(lambda tensor=tensor: signature(examples=tensor), repeats)
        table.append(_row("in-process signature", batch, timed))
    return table


def _wait_ready(url: str, model: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    from serving.client import ClientError, RestClient

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"`tfxp serve` exited with {proc.returncode}")
        try:
            versions = RestClient(url, model).status().get("model_version_status", [])
            if any(v.get("state") == "AVAILABLE" for v in versions):
                return
        except ClientError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the model is not AVAILABLE at {url} after {timeout:.0f} s")


def endpoint(serving_dir: str, model: str, rows: list[dict], repeats: int, log_path: str) -> tuple[str, list[list]]:
    """Starts `tfxp serve` on free ports; times REST :predict and gRPC Predict."""
    import grpc
    import requests
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from benchmarks.beam import free_port
    from contracts.saved_model import DEFAULT_SIGNATURE
    from serving.client import RestClient, raw_input_types, to_examples

    rest_port, grpc_port = free_port(), free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tfxp",
                "serve",
                "--model-base-path",
                serving_dir,
                "--rest-port",
                str(rest_port),
                "--grpc-port",
                str(grpc_port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{rest_port}"
    try:
        _wait_ready(url, model, proc)
        with open(log_path) as f:
            engine = next(
                (line.strip() for line in f if "stand-in" in line or "tensorflow_model_server" in line), "tfxp serve"
            )
        examples = to_examples(rows, raw_input_types(RestClient(url, model).metadata()))
        table = []
        session = requests.Session()
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for batch in BATCHES:
            body = {
                "signature_name": DEFAULT_SIGNATURE,
                "instances": [{"b64": base64.b64encode(e).decode()} for e in examples[:batch]],
            }

            def rest(body=body):
                response = session.post(f"{url}/v1/models/{model}:predict", json=body, timeout=30)
                response.raise_for_status()

            table.append(_row("REST :predict", batch, _timed(rest, repeats)))
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model
            request.model_spec.signature_name = DEFAULT_SIGNATURE
            request.inputs["examples"].CopyFrom(tf.make_tensor_proto(examples[:batch], dtype=tf.string))
            table.append(_row("gRPC Predict", batch, _timed(lambda r=request: stub.Predict(r, timeout=30), repeats)))
        channel.close()
        return engine, table
    finally:
        measure.stop(proc, 15)


def run(serving_dir: str, model: str, data_csv: str, repeats: int, work_dir: str) -> str:
    rows = sample_rows(data_csv, max(BATCHES))
    table = in_process(latest_version(serving_dir), rows, repeats)
    os.makedirs(work_dir, exist_ok=True)
    engine, remote = endpoint(serving_dir, model, rows, repeats, os.path.join(work_dir, "serve.log"))
    text = measure.table(["path", "batch", "calls", "predictions/s", "p50 ms", "p99 ms"], table + remote)
    return f"model: {latest_version(serving_dir)}\nendpoint: {engine}\n\n{text}"


def _start(args: list[str], log_path: str) -> subprocess.Popen:
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-m", "tfxp", *args], stdout=log, stderr=subprocess.STDOUT)


def load(serving_dir: str, model: str, data_csv: str, clients: int, per_client: int, work_dir: str) -> str:
    """`tfxp serve` and `tfxp log-proxy` in front of it, each under `clients` concurrent REST
    clients sending one-row :predict calls (benchmarks/serving_load.py), on kept connections and
    on a new connection per call."""
    import json
    import tempfile

    from benchmarks import serving_load
    from benchmarks.beam import free_port
    from contracts.saved_model import DEFAULT_SIGNATURE
    from serving.client import RestClient, raw_input_types, to_examples

    os.makedirs(work_dir, exist_ok=True)
    rest_port, grpc_port, proxy_port = free_port(), free_port(), free_port()
    serve = _start(
        ["serve", "--model-base-path", serving_dir, "--rest-port", str(rest_port), "--grpc-port", str(grpc_port)],
        os.path.join(work_dir, "serve.log"),
    )
    proxy = None
    try:
        url = f"http://127.0.0.1:{rest_port}"
        _wait_ready(url, model, serve)
        log_dir = tempfile.mkdtemp(prefix="requests-", dir=work_dir)
        proxy = _start(
            ["log-proxy", "--upstream", url, "--port", str(proxy_port), "--log-dir", log_dir],
            os.path.join(work_dir, "proxy.log"),
        )
        _wait_ready(f"http://127.0.0.1:{proxy_port}", model, proxy)
        examples = to_examples(sample_rows(data_csv, 1), raw_input_types(RestClient(url, model).metadata()))
        body = json.dumps(
            {"signature_name": DEFAULT_SIGNATURE, "instances": [{"b64": base64.b64encode(examples[0]).decode()}]}
        ).encode()
        table = []
        for name, port in (("tfxp serve", rest_port), ("tfxp log-proxy -> tfxp serve", proxy_port)):
            for keep_alive in (True, False):
                result = serving_load.run(
                    "127.0.0.1", port, f"/v1/models/{model}:predict", body, clients, per_client, keep_alive=keep_alive
                )
                table.append([name, "kept" if keep_alive else "per call", *result.summary()])
        return measure.table(["endpoint", "connection", *serving_load.HEADER], table)
    finally:
        if proxy is not None:
            measure.stop(proxy, 15)
        measure.stop(serve, 15)
