"""The pipeline factory: one `create_pipeline` that every runner (local, Kubeflow) calls.

Runners choose paths, the metadata connection, Beam arguments and the image; the components
and their wiring live here only.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

# TFX's own modules rather than `tfx.v1`, which re-exports these same classes: importing
# `tfx.v1` imports its Vertex AI extensions (google.cloud.aiplatform) and every standard
# component, seconds of CPU in each run and each step (benchmarks/README.md, "A cached re-run").
from tfx.components.bulk_inferrer.component import BulkInferrer
from tfx.components.example_validator.component import ExampleValidator
from tfx.components.infra_validator.component import InfraValidator
from tfx.components.schema_gen.component import SchemaGen
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.components.statistics_gen.component import StatisticsGen
from tfx.components.trainer.component import Trainer
from tfx.components.transform.component import Transform
from tfx.components.tuner.component import Tuner
from tfx.dsl.components.base import executor_spec
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import (
    bulk_inferrer_pb2,
    example_gen_pb2,
    infra_validator_pb2,
    pusher_pb2,
    range_config_pb2,
    trainer_pb2,
    transform_pb2,
)

from components.anomalies_gate import AnomaliesGate
from components.atomic_pusher.component import Pusher
from components.drift_check import DriftCheck
from components.evaluator import Evaluator
from components.example_gen import CsvExampleGen, FileBasedExampleGen, ImportExampleGen, options, parquet_executor
from components.inference_rows.component import SPLIT as INFERENCE_SPLIT
from components.inference_rows.component import InferenceRows
from components.run_page import RunPage
from components.serving_baseline import ServingBaseline
from components.serving_check import ServingCheck
from components.serving_warmup import ServingWarmup
from components.transform import executor as transform_executor
from models.model_inputs import label_columns
from models.spec import TrainerModel
from pipeline import preflight
from pipeline.config import DataFormat, PipelineConfig
from pipeline.data_files import directory_pattern, is_glob, split_glob
from pipeline.eval_config import eval_config
from pipeline.model_code import model_code_version

# Dotted paths of the model code in the installed package: they resolve the same way in a
# local run and in a container on Kubernetes.
PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
TUNER_FN = "models.model.tuner_fn"

TRANSFORMED_SPLITS = ("train", "eval")


def example_gen_input(config: PipelineConfig, data_root: Any = None) -> tuple[Any, example_gen_pb2.Input]:
    """ExampleGen reads a directory: a single file becomes its directory plus its name, a glob
    its directory before the first wildcard plus the rest, a directory its files of the format
    (for CSV `.csv`, `.csv.gz` or both: data_files' directory_pattern); with
    `data.span_pattern` the directory holds spans and the pattern picks the newest.

    A `data_root` run parameter is always a directory of files in the configured format.
    """
    if config.data.span_pattern:
        pattern = config.data.span_pattern
        return (data_root if data_root is not None else config.data.path), example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="single_split", pattern=pattern)]
        )
    if data_root is not None:
        return data_root, example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="single_split", pattern=config.data.format.file_pattern)]
        )
    path = config.data.path
    if is_glob(path):
        base, pattern = split_glob(path)
    elif os.path.isfile(path):
        base, pattern = os.path.dirname(path), os.path.basename(path)
    else:
        base, pattern = path, directory_pattern(config.data.format, path)
    return base, example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="single_split", pattern=pattern)])


def _inference_rows(config: PipelineConfig, model: Any):
    """InferenceRows of inference.data_path (a file, a directory or a glob): the rows as they are
    (no label, no row filters) in one split, every column the model takes typed by the model."""
    path, data_format = config.inference.data_path, config.inference.format or config.data.format
    pattern = path
    if not is_glob(path) and not os.path.isfile(path):
        pattern = os.path.join(path, directory_pattern(data_format, path))
    return InferenceRows(
        model=model,
        input_pattern=pattern,
        data_format=data_format.value,
        missing_values=json.dumps(list(config.data.missing_values)),
    )


def bulk_inferrer_specs(config: PipelineConfig) -> tuple[Any, Any]:
    """BulkInferrer's ModelSpec and OutputExampleSpec: the exported `classify` or `regress`
    signature (TF Serving's methods, whose results RunInference names), and the columns each
    input row gets: `classes` and `scores` (every class, in the model's order) or `prediction`."""
    from contracts.saved_model import CLASSIFY_SIGNATURE, REGRESS_SIGNATURE
    from models.spec import Task

    regression = config.label.task is Task.REGRESSION
    model_spec = bulk_inferrer_pb2.ModelSpec(
        model_signature_name=[REGRESS_SIGNATURE if regression else CLASSIFY_SIGNATURE]
    )
    if regression:
        column = bulk_inferrer_pb2.OutputColumnsSpec(
            regress_output=bulk_inferrer_pb2.RegressOutput(value_column="prediction")
        )
    else:
        column = bulk_inferrer_pb2.OutputColumnsSpec(
            classify_output=bulk_inferrer_pb2.ClassifyOutput(label_column="classes", score_column="scores")
        )
    return model_spec, bulk_inferrer_pb2.OutputExampleSpec(output_columns_spec=[column])


def _example_gen(config: PipelineConfig, data_root: Any = None):
    input_base, input_config = example_gen_input(config, data_root)
    output_config = example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[
                example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=config.data.train_buckets),
                example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=config.data.eval_buckets),
                example_gen_pb2.SplitConfig.Split(name="test", hash_buckets=config.data.test_buckets),
            ]
        )
    )
    kwargs = {"input_base": input_base, "input_config": input_config, "output_config": output_config}
    if config.data.span_pattern:
        kwargs["range_config"] = range_config_pb2.RangeConfig(
            rolling_range=range_config_pb2.RollingRange(num_spans=config.data.rolling_spans)
        )
    # Rows whose label is missing are dropped here with label.missing: drop (preflight
    # stops the run otherwise): a missing label must never be read as a class.
    required = preflight.label_sources(config) if config.label.missing == "drop" else ()
    # Rows of a class outside label.classes, with label.other_classes: drop (same reason).
    allowed = {config.label.column: list(config.label.classes)} if config.label.other_classes == "drop" else None
    if config.data.format is DataFormat.CSV:
        return CsvExampleGen(
            missing_values=config.data.missing_values, required_columns=required, allowed_values=allowed, **kwargs
        )
    if config.data.format is DataFormat.TFRECORD:
        return ImportExampleGen(**kwargs)
    # Parquet: the same markers and row filters, on string cells (components/example_gen/parquet_executor.py).
    return FileBasedExampleGen(
        custom_executor_spec=executor_spec.BeamExecutorSpec(parquet_executor.Executor),
        custom_config=options.custom_config(config.data.missing_values, required, allowed),
        **kwargs,
    )


def train_eval_args(config: PipelineConfig) -> tuple[trainer_pb2.TrainArgs, trainer_pb2.EvalArgs]:
    """The Trainer's step counts and splits."""
    return (
        trainer_pb2.TrainArgs(splits=["train"], num_steps=config.trainer.train_steps),
        trainer_pb2.EvalArgs(splits=["eval"], num_steps=config.trainer.eval_steps),
    )


def statistics_history_dir(pipeline_root: str) -> str:
    """Where accepted spans' statistics are kept for the drift check (next to the pipeline's outputs)."""
    return f"{pipeline_root.rstrip('/')}/AcceptedStatistics"


def infra_validation_spec(config: PipelineConfig, platform: str) -> infra_validator_pb2.ServingSpec:
    """The InfraValidator's ServingSpec for TF Serving `config.serving_check.image` on
    `platform`: "local_docker" (a docker-compatible engine here) or "kubernetes" (a pod in the
    cluster the step runs in)."""
    from serving.launch import OFFICIAL_IMAGE

    image = config.serving_check.image or OFFICIAL_IMAGE
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        raise ValueError(f"serving_check.image '{image}' needs a tag (name:tag)")
    spec = infra_validator_pb2.ServingSpec(
        tensorflow_serving=infra_validator_pb2.TensorFlowServing(image_name=name, tags=[tag]),
        model_name=config.model_name,
    )
    if platform == "local_docker":
        spec.local_docker.CopyFrom(infra_validator_pb2.LocalDockerConfig())
    elif platform == "kubernetes":
        spec.kubernetes.CopyFrom(infra_validator_pb2.KubernetesConfig())
    else:
        raise ValueError(f"unknown serving platform {platform!r}")
    return spec


def create_pipeline(
    config: PipelineConfig,
    *,
    pipeline_root: str,
    serving_dir: str,
    metadata_connection_config: Any = None,
    beam_pipeline_args: list[str] | None = None,
    baseline_lookup_token: str | None = None,
    drift_lookup_token: str | None = None,
    runtime_parameters: Mapping[str, Any] | None = None,
    serving_platform: infra_validator_pb2.ServingSpec | None = None,
    state_dir: str | None = None,
) -> Pipeline:
    """Builds the whole pipeline from one config. Runners pass where things live.

    `baseline_lookup_token` and `drift_lookup_token` are where an orchestrator that caches by
    inputs (the local runner) says what changed outside the inputs: a new token makes
    ServingBaseline look at the serving directory again (the local runner gives it the served
    version's state, so an unchanged one is a cache hit and the Evaluator with it), and DriftCheck
    at the accepted spans and logged requests (a new token each run).
    `runtime_parameters` (Kubeflow) replaces data_root, train_args, eval_args and
    eval_config with run parameters; protos are given as their JSON.
    `serving_platform` (a ServingSpec with its platform set, from `infra_validation_spec`)
    adds TFX's InfraValidator, which loads the candidate in a real TF Serving there.
    `state_dir` holds what outlives a run (the accepted spans' statistics); by default the
    pipeline root. It must be a path the steps read and write directly (on Kubeflow the PVC,
    not the object store that only the launcher copies in and out).
    """
    run_fn_module = config.trainer.run_fn.rpartition(".")[0]
    custom_config = {
        **config.model_code_config(),
        "code_version": model_code_version(modules=(run_fn_module,)),
        "warm_start_dir": serving_dir if config.trainer.warm_start else "",
    }
    # Transform reads only the features and the label: a trainer or tuner setting must not make
    # it (and everything after it) run again.
    transform_config = {key: custom_config[key] for key in ("label", "features", "crosses", "code_version")}
    params = dict(runtime_parameters or {})
    train_args, eval_args = train_eval_args(config)
    components = []

    # Reads the raw data and splits it train/eval/test by hash buckets.
    example_gen = _example_gen(config, params.get("data_root")).with_id("ExampleGen")
    components.append(example_gen)

    # Computes statistics of every split for schema inference and validation.
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"]).with_id("StatisticsGen")
    components.append(statistics_gen)

    # Infers the schema from the statistics, or imports the curated one the config names.
    if config.schema.path:
        schema_gen = ImportSchemaGen(schema_file=config.schema.path).with_id("SchemaGen")
    else:
        # Every column variable-length: a column complete in one span can have gaps in the
        # next, and the served (baseline) model must still parse the new span's examples.
        schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"], infer_feature_shape=False).with_id(
            "SchemaGen"
        )
    components.append(schema_gen)

    # Checks the statistics of every split against the schema.
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    ).with_id("ExampleValidator")
    components.append(example_validator)

    drift, history_dir = None, statistics_history_dir(state_dir or pipeline_root)
    if config.drift.enabled:
        # Compares the span's train statistics with the last accepted span's (drift) and with
        # logged serving requests' (skew), with TFDV's comparators.
        drift_check = DriftCheck(
            statistics=statistics_gen.outputs["statistics"],
            schema=schema_gen.outputs["schema"],
            history_dir=history_dir,
            features=json.dumps(config.drift_features()),
            categorical_threshold=config.drift.categorical_threshold,
            numeric_threshold=config.drift.numeric_threshold,
            lookup_token=drift_lookup_token,
            serving_requests=config.drift.serving_requests,
        ).with_id("DriftCheck")
        components.append(drift_check)
        drift = drift_check.outputs["drift"]

    # Fails the run on schema anomalies and on drift (unless accepted), so nothing is
    # transformed, trained or pushed from bad data; records an accepted span's statistics.
    anomalies_gate = AnomaliesGate(
        anomalies=example_validator.outputs["anomalies"],
        drift=drift,
        statistics=statistics_gen.outputs["statistics"] if drift is not None else None,
        history_dir=history_dir if drift is not None else None,
        accept_drift=config.drift.accept,
    ).with_id("AnomaliesGate")
    components.append(anomalies_gate)

    # Fits scaling, vocabularies and buckets on train; transforms the splits training reads.
    # The test split stays raw: the Evaluator feeds it to the exported model, which applies the
    # transform itself. preprocessing_fn is traced as a TF1 graph (half the tracing time
    # of TF2's), and the analyzer cache is not written since no run reads it back.
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config=transform_config,
        splits_config=transform_pb2.SplitsConfig(analyze=["train"], transform=list(TRANSFORMED_SPLITS)),
        force_tf_compat_v1=True,
        disable_analyzer_cache=True,
        disable_statistics=not config.transform.statistics,
    ).with_id("Transform")
    # TFX's Transform takes no custom_executor_spec: its public `executor_spec` attribute is set
    # instead, to the executor that writes the transformed splits in a stable order.
    transform.executor_spec = executor_spec.BeamExecutorSpec(transform_executor.Executor)
    transform.add_upstream_node(anomalies_gate)
    components.append(transform)

    # Searches hyperparameters with KerasTuner on a small budget (optional); the DNN's only, so
    # not for trainer.model gbt.
    hyperparameters = None
    if config.tuner.enabled and config.trainer.model is not TrainerModel.GBT:
        tuner = Tuner(
            tuner_fn=TUNER_FN,
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            schema=schema_gen.outputs["schema"],
            train_args=trainer_pb2.TrainArgs(splits=["train"], num_steps=config.tuner.train_steps),
            eval_args=trainer_pb2.EvalArgs(splits=["eval"], num_steps=config.tuner.eval_steps),
            custom_config=custom_config,
        ).with_id("Tuner")
        components.append(tuner)
        hyperparameters = tuner.outputs["best_hyperparameters"]

    # Trains the model trainer.model names (the Keras network, gradient-boosted trees, or both
    # keeping the better) and exports it with its serving signatures.
    trainer = Trainer(
        run_fn=config.trainer.run_fn,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        hyperparameters=hyperparameters,
        train_args=params.get("train_args", train_args),
        eval_args=params.get("eval_args", eval_args),
        custom_config=custom_config,
    ).with_id("Trainer")
    components.append(trainer)

    # Adds TF Serving warm-up requests, built from real eval examples, to the trained model.
    warmup = ServingWarmup(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        model_name=config.model_name,
        drop_columns=label_columns(config),
    ).with_id("ServingWarmup")
    components.append(warmup)

    # Finds the model serving reads now: the baseline the candidate must not fall behind.
    baseline = ServingBaseline(
        model=trainer.outputs["model"], serving_dir=serving_dir, lookup_token=baseline_lookup_token
    ).with_id("ServingBaseline")
    components.append(baseline)

    # Evaluates the candidate on the held-out test split (against the served model, once there
    # is one) and blesses it or not.
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=warmup.outputs["serving_model"],
        baseline_model=baseline.outputs["baseline_model"],
        example_splits=["test"],
        eval_config=params.get("eval_config", eval_config(config)),
        task=config.label.task.value,
        label_column=config.label.column,
        first_run_margin=config.evaluator.first_run_margin,
    ).with_id("Evaluator")
    components.append(evaluator)

    # Loads the candidate the way TF Serving does (TF1 session, restore, init op) and replays
    # its warm-up records through every signature; a model that would not serve fails the run.
    serving_check = ServingCheck(model=warmup.outputs["serving_model"]).with_id("ServingCheck")
    components.append(serving_check)
    infra_blessing = serving_check.outputs["blessing"]
    if serving_platform is not None:
        # TFX's InfraValidator starts the real TF Serving on the candidate; loading alone
        # (LOAD_ONLY) replays the warm-up records, which run every signature.
        infra_validator = InfraValidator(
            model=warmup.outputs["serving_model"],
            serving_spec=serving_platform,
            validation_spec=infra_validator_pb2.ValidationSpec(max_loading_time_seconds=300, num_tries=2),
        ).with_id("InfraValidator")
        infra_validator.add_upstream_node(serving_check)
        components.append(infra_validator)
        infra_blessing = infra_validator.outputs["blessing"]

    # Copies a model that the Evaluator and the serving checks blessed into the TF Serving
    # directory <serving_dir>/<version>/: under a hidden name, with its model card, checked,
    # synced, then renamed. The card's other inputs are what it reports.
    pusher = Pusher(
        model=warmup.outputs["serving_model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_blessing,
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_dir)
        ),
        model_card={
            **config.model_card.model_dump(mode="json"),
            "model_name": config.model_name,
            "model": config.model_code_config(),
            "code_version": custom_config["code_version"],
        },
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        evaluation=evaluator.outputs["evaluation"],
        hyperparameters=hyperparameters,
        rollout=config.pusher.model_dump(mode="json"),
    ).with_id("Pusher")
    components.append(pusher)

    if config.inference.data_path:
        # Scores new rows (inference.data_path) with the model the Evaluator just blessed: TFX's
        # BulkInferrer (tfx-bsl's RunInference, in the TF1 session TF Serving loads models in),
        # which does nothing for a model not blessed. Each row is written with its predictions.
        inference_rows = _inference_rows(config, warmup.outputs["serving_model"]).with_id("InferenceRows")
        components.append(inference_rows)
        model_spec, output_example_spec = bulk_inferrer_specs(config)
        bulk_inferrer = BulkInferrer(
            examples=inference_rows.outputs["examples"],
            model=warmup.outputs["serving_model"],
            model_blessing=evaluator.outputs["blessing"],
            data_spec=bulk_inferrer_pb2.DataSpec(example_splits=[INFERENCE_SPLIT]),
            model_spec=model_spec,
            output_example_spec=output_example_spec,
        ).with_id("BulkInferrer")
        components.append(bulk_inferrer)

    # The run's outcome, model card and test metrics as KFP's system.HTML, system.Markdown,
    # system.Metrics and system.ClassificationMetrics artifacts, which the KFP UI shows on the
    # run's page; locally a few small files nothing reads.
    run_page = RunPage(
        evaluation=evaluator.outputs["evaluation"],
        blessing=evaluator.outputs["blessing"],
        pushed_model=pusher.outputs["pushed_model"],
        title=f"{config.pipeline_name}: {config.model_name}",
        task=config.label.task.value,
    ).with_id("RunPage")
    components.append(run_page)

    return Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args if beam_pipeline_args is not None else config.beam_args(),
    )
