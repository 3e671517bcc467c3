"""`tfxp predict-batch`: scores a file (or glob) of raw rows with a pushed version, through Beam.

The rows (CSV, Parquet, or TFRecord of tf.Examples) are read a batch at a time into Arrow
columns, each model input typed by the model's own `serve_raw` signature (the raw columns and
their dtypes; components/inference_rows/rows.py, which the pipeline's InferenceRows step
shares), written as serialized tf.Examples by tfx_bsl's encoder and scored by tfx_bsl's
`RunInference` (the engine TFX's BulkInferrer runs) through the model's `classify` or `regress`
signature: TF Serving's classify and regress methods, which RunInference loads in a TF1 session
as TF Serving does, and which answer each class by its name. Batches stay whole through
RunInference (keyed lists), so the Beam graph moves a few thousand elements per million rows.

The output holds the input's key columns (default: `row`, the row's number in its file, and
`file` when several files matched) and the predictions: for classification the predicted
`class`, its `probability` and a `probability_<class>` column per class; for regression the
`prediction`. It is written under a hidden name beside OUTPUT and renamed into place when the
whole run succeeded, so a failed run leaves nothing at OUTPUT.

Bad input (a model column missing from a file, a cell that cannot be the model's type, a key
column that is not there, no file at all) is a `BatchInputError`: one line with the file, the
line or row, the column and the value.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import time
import uuid
from typing import Any, Sequence

from components.inference_rows.rows import (
    Batch,
    RowsError,
    bad_input_in,
    check_columns,
    file_columns,
    input_files,
    key_text,
    raw_inputs,
    read_batches,
    typed_examples,
)
from contracts.column_names import feature_key
from contracts.saved_model import (
    ASSETS_EXTRA,
    CLASSES_FILE,
    CLASSIFY_SIGNATURE,
    REGRESS_SIGNATURE,
    SERVE_TAG,
)
from pipeline.config import ConfigError, PipelineConfig

INPUT_FORMATS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
    ".tfrecord": "tfrecord",
    ".tfrecord.gz": "tfrecord",
    ".tfrecords": "tfrecord",
    ".gz": "tfrecord",  # TFX's own example files: data_tfrecord-*.gz
}
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".tfrecord": "tfrecord", ".tfrecords": "tfrecord"}


class BatchInputError(ConfigError):
    """The input does not fit the model (or is not there); the message is one line (the rows'
    own errors are components.inference_rows.rows.RowsError, turned into this one)."""


@dataclasses.dataclass(frozen=True)
class ServedModel:
    """What scoring needs of a pushed version: where it is, the raw columns it takes (feature
    key -> TF dtype name, from `serve_raw`), its signature and its classes in output order."""

    version: int
    path: str
    inputs: dict[str, str]
    signature: str
    classes: tuple[str, ...]


def pushed_model(serving_dir: str, version: int | None = None, model_name: str | None = None) -> ServedModel:
    """The version to score with: `version`, else the one production traffic gets (the model
    config's `stable` label, else the newest served version; contracts/model_config.py).

    The one place a version is chosen.
    """
    import tensorflow as tf

    from components.serving_warmup.warmup import signature_defs
    from contracts.model_config import stable_version
    from contracts.serving_dir import served_versions
    from ops.lineage import served_version

    if version is None and model_name:
        version = stable_version(serving_dir, model_name, served_versions(serving_dir))
    number = served_version(serving_dir, version)
    path = os.path.join(serving_dir, str(number))
    signatures = signature_defs(path)
    try:
        inputs = raw_inputs(signatures, path)
    except RowsError as err:
        raise BatchInputError(str(err)) from None
    if CLASSIFY_SIGNATURE in signatures:
        signature = CLASSIFY_SIGNATURE
        with tf.io.gfile.GFile(os.path.join(path, ASSETS_EXTRA, CLASSES_FILE)) as f:
            classes = tuple(line.rstrip("\n") for line in f if line.strip())
    elif REGRESS_SIGNATURE in signatures:
        signature, classes = REGRESS_SIGNATURE, ()
    else:
        raise BatchInputError(f"{path} has neither a '{CLASSIFY_SIGNATURE}' nor a '{REGRESS_SIGNATURE}' signature")
    return ServedModel(number, path, inputs, signature, classes)


def _format_of(path: str, formats: dict[str, str], what: str) -> str:
    for suffix in sorted(formats, key=len, reverse=True):
        if path.lower().endswith(suffix):
            return formats[suffix]
    raise BatchInputError(f"{what} {path}: cannot tell the format from its name; use one of {', '.join(formats)}")


def to_examples(batch: Batch, model: ServedModel, keys: Sequence[str], default_keys: Sequence[str]):
    """(the batch's key columns as text, its rows as serialized tf.Examples of the model's types)."""
    key_values: list[list[str]] = []
    for key in default_keys:
        key_values.append(
            [str(p) for p in batch.positions] if key == "row" else [os.path.basename(batch.path)] * batch.rows
        )
    for key in keys:
        key_values.append(key_text(batch.columns.get(feature_key(key)), batch.rows))
    return key_values, typed_examples(batch, model.inputs)


# --------------------------------------------------------------------------- output


def output_columns(model: ServedModel, key_names: Sequence[str]) -> list[str]:
    if model.signature == REGRESS_SIGNATURE:
        predicted = ["prediction"]
    else:
        predicted = ["class", "probability", *(f"probability_{name}" for name in model.classes)]
    clash = sorted(set(predicted) & set(key_names))
    if clash:
        raise BatchInputError(f"key column '{clash[0]}' has the name of an output column; rename it in the input")
    return [*key_names, *predicted]


def prediction_rows(key_values: list[list[str]], logs: list, model: ServedModel) -> list[list[Any]]:
    """One output row per PredictionLog: the keys, then the class and its probabilities or the value."""
    rows = []
    for i, log in enumerate(logs):
        keys = [values[i] for values in key_values]
        if model.signature == REGRESS_SIGNATURE:
            rows.append([*keys, float(log.regress_log.response.result.regressions[0].value)])
            continue
        scores = {c.label: float(c.score) for c in log.classify_log.response.result.classifications[0].classes}
        best = max(model.classes, key=lambda name: scores[name])
        rows.append([*keys, best, scores[best], *(scores[name] for name in model.classes)])
    return rows


def _csv_text(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().removesuffix("\n")


def _arrow_table(rows: list[list[Any]], names: Sequence[str], schema):
    import pyarrow as pa

    return pa.Table.from_arrays(
        [pa.array([r[i] for r in rows], schema.field(i).type) for i in range(len(names))], schema=schema
    )


def _examples_of(rows: list[list[Any]], names: Sequence[str]) -> list[bytes]:
    import tensorflow as tf

    out = []
    for row in rows:
        features = {}
        for name, value in zip(names, row):
            if isinstance(value, float):
                features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
            else:
                features[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode()]))
        out.append(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    return out


def _parquet_schema(names: Sequence[str], key_count: int):
    import pyarrow as pa

    fields = [pa.field(n, pa.string()) for n in names[:key_count]]
    for name in names[key_count:]:
        fields.append(pa.field(name, pa.string() if name == "class" else pa.float64()))
    return pa.schema(fields)


# --------------------------------------------------------------------------- the run


@dataclasses.dataclass(frozen=True)
class Result:
    output: str
    version: int
    rows: int
    seconds: float


def predict_batch(
    config: PipelineConfig,
    input_pattern: str,
    output: str,
    version: int | None = None,
    key_columns: Sequence[str] = (),
    beam_args: Sequence[str] | None = None,
) -> Result:
    """Scores INPUT with a pushed version (default the newest) on the config's Beam runner."""
    import apache_beam as beam
    import tensorflow as tf
    from apache_beam.metrics import Metrics
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions
    from tfx_bsl.public.beam import RunInference
    from tfx_bsl.public.proto import model_spec_pb2

    out_format = _format_of(output, OUTPUT_FORMATS, "output")
    try:
        files = input_files(input_pattern)
    except RowsError as err:
        raise BatchInputError(str(err)) from None
    formats = {path: _format_of(path, INPUT_FORMATS, "input") for path in files}
    model = pushed_model(config.serving_dir, version, config.model_name)
    keys = [k.strip() for k in key_columns if k.strip()]
    default_keys = [] if keys else (["file", "row"] if len(files) > 1 else ["row"])
    try:
        for path in files:
            check_columns(path, file_columns(path, formats[path]), model.inputs, keys)
    except RowsError as err:
        raise BatchInputError(str(err)) from None
    names = output_columns(model, [*default_keys, *keys])
    wanted = sorted(set(model.inputs) | {feature_key(k) for k in keys})
    missing_values = tuple(config.data.missing_values)

    out_dir = os.path.dirname(os.path.abspath(output)) if "://" not in output else output.rsplit("/", 1)[0]
    if not tf.io.gfile.isdir(out_dir):
        raise BatchInputError(f"output directory {out_dir} does not exist")
    staging = f"{out_dir}/.{os.path.basename(output)}.tmp-{uuid.uuid4().hex[:8]}"
    staged = f"{staging}/{os.path.basename(output)}"
    spec = model_spec_pb2.InferenceSpecType(
        saved_model_spec=model_spec_pb2.SavedModelSpec(
            model_path=model.path, signature_name=[model.signature], tag=[SERVE_TAG]
        ),
        # One of our batches (a keyed list) per model call.
        batch_parameters=model_spec_pb2.BatchParameters(min_batch_size=1, max_batch_size=1),
    )
    rows_counter = Metrics.counter("tfxp", "rows")

    def read(path):
        yield from read_batches(path, formats[path], wanted, missing_values)

    def encode(batch: Batch):
        key_values, examples = to_examples(batch, model, keys, default_keys)
        rows_counter.inc(batch.rows)
        return key_values, examples

    def score(keyed):
        key_values, logs = keyed
        return prediction_rows(key_values, logs, model)

    options = PipelineOptions(list(beam_args if beam_args is not None else config.beam.args()))
    started = time.monotonic()
    tf.io.gfile.makedirs(staging)
    try:
        try:
            with beam.Pipeline(options=options) as p:
                rows = (
                    p
                    | "Files" >> beam.Create(files)
                    | "Read" >> beam.FlatMap(read)
                    | "Spread" >> beam.Reshuffle()
                    | "ToExamples" >> beam.Map(encode)
                    | "RunInference" >> RunInference(spec)
                    | "Predictions" >> beam.Map(score)
                )
                if out_format == "csv":
                    _ = (
                        rows
                        | "Csv" >> beam.Map(_csv_text)
                        | "Write"
                        >> beam.io.WriteToText(staged, shard_name_template="", num_shards=1, header=_csv_text([names]))
                    )
                elif out_format == "parquet":
                    schema = _parquet_schema(names, len(names) - len(output_columns(model, [])))
                    _ = (
                        rows
                        | "Arrow" >> beam.Map(_arrow_table, names, schema)
                        | "Write" >> beam.io.WriteToParquetBatched(staged, schema, shard_name_template="", num_shards=1)
                    )
                else:
                    _ = (
                        rows
                        | "Examples" >> beam.FlatMap(_examples_of, names)
                        | "Write" >> beam.io.WriteToTFRecord(staged, shard_name_template="", num_shards=1)
                    )
            result = p.result
        except Exception as err:
            message = bad_input_in(err)
            if message is not None:
                raise BatchInputError(message) from None
            raise
        counted = result.metrics().query(MetricsFilter().with_name("rows"))["counters"]
        total = sum(c.committed or c.attempted or 0 for c in counted)
        if not tf.io.gfile.exists(staged):
            raise OSError(f"the run wrote no {staged}")
        tf.io.gfile.rename(staged, output, overwrite=True)
    finally:
        if tf.io.gfile.exists(staging):
            tf.io.gfile.rmtree(staging)
    return Result(output, model.version, total, time.monotonic() - started)
