"""The pipeline's one typed configuration: parsed from a YAML file plus overrides, validated once.

Each section is a frozen pydantic model whose rules sit next to its fields; the features, the
label and the trainer and tuner sections are the model code's own (models/spec.py), composed
here. Rules between sections are in `PipelineConfig`'s validator. Every other module takes a
`PipelineConfig`; nothing reads files or the environment at import time. Errors are
`ConfigError`s: one line naming the key path, what is wrong and how to fix it.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import typing
import urllib.parse
from typing import Annotated, Any, Mapping

import pydantic
import yaml
from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from contracts.column_names import feature_key
from models.sections import Choice, Fraction, Invalid, Section, Share, Texts, error_line, fields_of, walk
from models.spec import (
    CrossSpec,
    Features,
    FeatureSpec,
    LabelSpec,
    ModelSpec,
    Task,
    TrainerConfig,
    TunerConfig,
    check_model,
)
from models.spec import FeatureType as FeatureType  # the pipeline's modules import it from here too
from models.tasks import LIVE_OPTIONS, TASKS

DEFAULT_CONFIG = "package://pipeline/configs/taxi.yaml"
PACKAGE_PREFIX = "package://"


class ConfigError(ValueError):
    """A configuration (or the data it names) is wrong; the message says how to fix it."""


def resolve_path(path: str, base: pathlib.Path | None = None) -> str:
    """Resolves package://PKG/sub/path to the installed package's files; makes others absolute."""
    if path.startswith(PACKAGE_PREFIX):
        package, _, rest = path[len(PACKAGE_PREFIX) :].partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"{path}: package '{package}' is not installed; install it or give a plain file path")
        return os.path.join(list(spec.submodule_search_locations)[0], rest)
    expanded = pathlib.Path(os.path.expanduser(path))
    if not expanded.is_absolute():
        expanded = (base or pathlib.Path.cwd()) / expanded
    return str(expanded.resolve())


def _from_config_file(path: str, info: ValidationInfo) -> str:
    """Relative to the config file's directory (the validation context's base), when parsing one."""
    if info.context is None:
        return path
    return resolve_path(path, info.context.get("base"))


def _from_current_directory(path: str, info: ValidationInfo) -> str:
    return path if info.context is None else resolve_path(path, pathlib.Path.cwd())


_FROM_CONFIG_FILE = AfterValidator(_from_config_file)
# A file or directory: package://PKG/sub/path, or relative to the config file (to the current
# directory when given with --set).
FilePath = Annotated[str, _FROM_CONFIG_FILE]


def window_seconds(text: str, where: str = "monitor.window") -> float:
    """Seconds of a window written as 30m, 24h, 7d or 3600s."""
    try:
        return _window(text)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


def _window(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = str(text).strip()[:-1], str(text).strip()[-1:]
    try:
        seconds = float(number) * units[unit]
    except (KeyError, ValueError):
        raise ValueError(f"'{text}' is not a window; write a number and a unit (s, m, h, d), e.g. 30m or 24h") from None
    if seconds <= 0:
        raise ValueError(f"'{text}' must be longer than zero")
    return seconds


# --------------------------------------------------------------------------- sections


class DataFormat(Choice):
    CSV = "csv"
    TFRECORD = "tfrecord"
    PARQUET = "parquet"

    @property
    def file_pattern(self) -> str:
        """The files of this format in a data directory."""
        return {"csv": "*.csv", "tfrecord": "*", "parquet": "*.parquet"}[self.value]


class DataConfig(Section):
    # A file, a directory of files, or a glob (exports/*.csv; '*' within one directory level);
    # package://PKG/sub/path for packaged data.
    path: FilePath
    format: DataFormat = DataFormat.CSV
    # Hash buckets per split: the ratio of train:eval:test.
    train_buckets: int = Field(default=8, ge=1)
    eval_buckets: int = Field(default=1, ge=1)
    test_buckets: int = Field(default=1, ge=1)
    # Dated or numbered drops below `path`: a pattern with {SPAN}, e.g. "span-{SPAN}/*.csv".
    # Each run reads the newest `rolling_spans` spans; a new drop is a new span.
    span_pattern: str | None = None
    rolling_spans: int = Field(default=1, ge=1)
    # CSV cells that mean "no value", for every column type (spaces around them are ignored).
    missing_values: Texts = ("", "NA", "N/A", "NaN", "null")

    @field_validator("path")
    @classmethod
    def _one_level_wildcards(cls, path: str) -> str:
        if "**" in path:
            raise ValueError(
                f"'{path}': '**' (any depth) is not supported, as ExampleGen matches files with "
                "TensorFlow's gfile, where '*' stays within one directory; write one '*' per "
                "directory level, e.g. data/*/part-*.csv.gz"
            )
        return path

    @field_validator("span_pattern")
    @classmethod
    def _has_span(cls, pattern: str | None) -> str | None:
        if pattern is not None and "{SPAN}" not in pattern:
            raise ValueError(f"'{pattern}' has no {{SPAN}}; use for example span-{{SPAN}}/*.csv")
        return pattern


class SchemaConfig(Section):
    path: FilePath | None = None  # a curated schema.pbtxt to import instead of inferring one


class TransformConfig(Section):
    # Transform's own TFDV pass over the raw and the transformed data (pre/post-transform
    # statistics, schema and anomalies artifacts). Nothing downstream reads them; StatisticsGen
    # and ExampleValidator already check the raw data.
    statistics: bool = False


class InfraValidation(Choice):
    """Whether TFX's InfraValidator also loads the candidate in a real TF Serving."""

    AUTO = "auto"  # where the runner can start one (see ServingCheckConfig)
    ALWAYS = "always"  # required: refused where none can be started
    NEVER = "never"


class ServingCheckConfig(Section):
    """The checks between the Evaluator and the Pusher.

    The in-process serving check (components/serving_check) always runs. With
    `infra_validator`, TFX's InfraValidator also starts the real TF Serving `image` on the
    candidate (its warm-up records run every signature): `auto` uses it in local runs where
    docker or podman already holds `image`; `always` makes that a requirement. TFX's Kubeflow
    V2 compiler does not support InfraValidator, so compiled pipelines use the in-process
    check alone (`always` is refused there).
    """

    infra_validator: InfraValidation = InfraValidation.AUTO
    image: str | None = None  # name:tag; default: serving/launch.py's OFFICIAL_IMAGE, as kubernetes/ runs


def _feature_keys(columns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(feature_key(column) for column in columns)


# Column names given by their CSV header or their feature key, kept as keys (contracts/column_names.py).
Columns = Annotated[Texts, AfterValidator(_feature_keys)]


class DriftConfig(Section):
    """Drift between the current span's train statistics and the last accepted span's (TFDV)."""

    enabled: bool = True
    categorical_threshold: Share = 0.1  # L-infinity distance, for string features
    numeric_threshold: Share = 0.2  # approximate Jensen-Shannon divergence, for numbers
    features: Columns = ()  # checked features; empty: every model feature
    accept: bool = False  # accept the drift found in this run (recorded in ML Metadata)
    # Requests logged by `tfxp serve --log-requests DIR`: when set, the span's train statistics
    # are also compared with theirs (training-serving skew), with the same thresholds.
    serving_requests: FilePath | None = None


# The evaluator options each task takes, and its defaults (change thresholds only: the value
# thresholds a model needs by default are its first-run gates, EvaluatorConfig.first_run_margin).
TASK_THRESHOLDS = {task: definition.threshold_options for task, definition in TASKS.items()}
TASK_DEFAULTS = {task: definition.default_thresholds for task, definition in TASKS.items()}
NonNegative = Annotated[float, Field(ge=0)]


class EvaluatorConfig(Section):
    """The Evaluator's thresholds: min_/max_ values the test-split metric must meet, and
    _decrease/_increase changes against the served baseline it must not exceed.

    Each task takes its own (TASK_THRESHOLDS); unset ones get TASK_DEFAULTS, or none.
    AUC is one-vs-rest averaged over the classes (macro) for multiclass, as is F1. Change
    thresholds apply only once a model is served (the baseline). A gate metric of the task
    (models/tasks.py: binary AUC, multiclass accuracy, regression MAE and RMSE) with no value
    threshold set here gets one from the run's data, its first-run gate: the naive
    predictor's value (AUC 0.5; the train split's majority class share; the MAE of the train
    median, the RMSE of the train mean, on the test split) plus first_run_margin, or for
    errors times (1 - first_run_margin).
    """

    min_auc: Fraction | None = None
    max_auc_decrease: Fraction | None = None
    min_accuracy: Fraction | None = None
    max_accuracy_decrease: Fraction | None = None
    min_macro_f1: Fraction | None = None
    max_mae: NonNegative | None = None  # regression: in the label's units
    max_mae_increase: NonNegative | None = None
    max_rmse: NonNegative | None = None
    max_rmse_increase: NonNegative | None = None
    first_run_margin: Fraction = 0.02  # beat the naive predictor by this much (errors: this share)
    slices: Columns = ()  # raw feature columns to slice metrics by

    def thresholds(self, task: Task) -> dict[str, float]:
        """{option: value} of the thresholds that apply to `task`, defaults filled in."""
        values = dict(TASK_DEFAULTS[task])
        for name in TASK_THRESHOLDS[task]:
            if getattr(self, name) is not None:
                values[name] = getattr(self, name)
        return values


class MonitorConfig(Section):
    """The served model in production: ground truth (`tfxp feedback`) and `tfxp monitor`.

    Feedback rows are joined to logged requests (`requests`, the directory `tfxp serve
    --log-requests` writes) by `id_column`: a logged feature of that name, or else the
    request's id (see ops/monitoring/feedback.py). `key_column` joins on another logged
    feature instead. Unset thresholds fall back to the Evaluator's and the drift check's.
    Each task takes its own live thresholds (LIVE_OPTIONS).
    """

    requests: FilePath | None = None  # the request log directory; default drift.serving_requests
    id_column: str = "request_id"  # the feedback CSV's id column
    key_column: str | None = None  # join on this logged feature (same-named CSV column) instead
    window: str = "24h"  # default --window: 30m, 24h, 7d, 3600s
    # Live metrics per task (models/tasks.py, live_metrics): binary AUC and accuracy,
    # multiclass accuracy and macro F1, regression MAE and RMSE. A value threshold left unset
    # is the Evaluator's of the same name, else the naive predictor's value on the window's
    # labels beaten by evaluator.first_run_margin. A metric worse than the version's test value
    # by more than its max_<metric>_drop/_increase (the metric's units), or when that is unset
    # by more than max_metric_drop of the test value, is flagged.
    min_auc: Fraction | None = None  # binary
    min_accuracy: Fraction | None = None  # binary, multiclass
    min_macro_f1: Fraction | None = None  # multiclass
    max_mae: NonNegative | None = None  # regression, in the label's units
    max_rmse: NonNegative | None = None  # regression, in the label's units
    max_auc_drop: Fraction | None = None
    max_accuracy_drop: Fraction | None = None
    max_macro_f1_drop: Fraction | None = None
    max_mae_increase: NonNegative | None = None
    max_rmse_increase: NonNegative | None = None
    max_metric_drop: Fraction = 0.05  # a share of the test value
    categorical_threshold: Share | None = None  # skew and drift of traffic; None: drift's
    numeric_threshold: Share | None = None
    min_labelled: int = Field(default=50, ge=1)  # fewer labelled rows in the window: no live metrics
    max_error_ratio: Fraction = 0.01  # serving errors / requests, from the server's metrics
    serving_url: str | None = None  # REST endpoint for health, e.g. http://127.0.0.1:8501

    @field_validator("window")
    @classmethod
    def _is_a_window(cls, window: str) -> str:
        _window(window)
        return window


class NotifyFormat(Choice):
    JSON = "json"  # {"event", "pipeline", "model", "text", "details", "time"}
    SLACK = "slack"  # {"text": ...}: Slack's incoming webhooks and the chat tools that copy them


def _webhook_url(url: str | None) -> str | None:
    parts = urllib.parse.urlsplit(url) if url is not None else None
    if parts is not None and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise ValueError(f"'{url}' is not an http:// or https:// URL with a host")
    return url


class NotifyConfig(Section):
    """A webhook told when a run fails or is refused and when `tfxp monitor` crosses a
    threshold (pipeline/notify.py). The URL is `url`, else the environment variable `url_env`
    names (TFXP_NOTIFY_URL by default: a secret URL stays out of the config file, and a
    Kubernetes secret can set it in the image's steps); neither: no notifications. A webhook
    that does not answer within `timeout_seconds` or answers an error costs one line on stderr,
    never the run's own outcome.
    """

    url: Annotated[str | None, AfterValidator(_webhook_url)] = None
    url_env: str = "TFXP_NOTIFY_URL"
    format: NotifyFormat = NotifyFormat.JSON
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _one_source(self) -> NotifyConfig:
        if self.url and "url_env" in self.model_fields_set:
            raise Invalid("url_env", "give notify.url or notify.url_env, not both")
        return self


class ModelCardConfig(Section):
    """What the model card written beside each pushed version (components/model_card) says
    beyond what the run recorded: its intended use, its known limitations and who owns it."""

    intended_use: str = (
        "Not stated: set model_card.intended_use in the config (who uses the predictions, for what decisions)."
    )
    limitations: Texts = ()  # one sentence each; the card adds what the run itself shows
    owners: Texts = ()  # names or contacts

    @field_validator("intended_use")
    @classmethod
    def _said(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("must not be empty; leave it out for the default note")
        return text.strip()


class InferenceConfig(Section):
    """An optional batch-scoring step after the Evaluator (pipeline/pipeline.py): with
    `data_path` set, InferenceRows reads the raw rows there (a file, a directory of files
    or a glob, as data.path; in `format`, default data.format; no label needed) and TFX's
    BulkInferrer scores them with the model the Evaluator just blessed, writing each row with
    its predictions as an Examples artifact. Unset: the pipeline has neither step.
    """

    data_path: FilePath | None = None
    format: DataFormat | None = None  # default: data.format

    @model_validator(mode="after")
    def _needs_data(self) -> InferenceConfig:
        if self.format is not None and self.data_path is None:
            raise Invalid("format", "applies to inference.data_path, which is not set; set it or remove this")
        if self.data_path is not None and "**" in self.data_path:
            raise Invalid("data_path", f"'{self.data_path}': '**' is not supported; write one '*' per directory level")
        return self


class Rollout(Choice):
    CANARY = "canary"  # a push gets the `canary` label; `tfxp promote` moves `stable` to it
    STABLE = "stable"  # a push gets both labels at once (the old stable becomes `previous`)


class PusherConfig(Section):
    """How a push reaches traffic (contracts/model_config.py, docs/serving.md "Rollout"): the
    Pusher lists the new version in <serving_dir>/models.config, then labels it. Moving a label
    needs the version loaded first (TF Serving's rule): with `serving_url` the Pusher, `tfxp
    promote` and `tfxp rollback` wait up to `label_wait_seconds` for the version to be AVAILABLE
    there; without it a label is moved only to a version the config already loaded."""

    rollout: Rollout = Rollout.CANARY
    serving_url: Annotated[str | None, AfterValidator(_webhook_url)] = None  # TF Serving's REST address
    label_wait_seconds: float = Field(default=120.0, gt=0, le=3600)


class DirectRunningMode(Choice):
    AUTO = "auto"
    IN_MEMORY = "in_memory"
    MULTI_THREADING = "multi_threading"
    MULTI_PROCESSING = "multi_processing"


# The Beam arguments that name the SDK environment: the compiled pipeline's are derived from
# kubeflow.image and beam.flink_on_kubernetes, so extra_args may not set them too.
SDK_IMAGE_ARG = "--sdk_container_image"
# `auto`: a local run whose input data holds at least this many bytes runs multi_processing
# with a worker per core, kept across components; a smaller one in_memory. The bundled sample
# ran faster in_memory, 17 MB about as fast either way, 170 MB faster with the workers
# (benchmarks/README.md, "Beam's mode chosen by the data's size").
AUTO_MULTI_PROCESSING_BYTES = 32 * 2**20


def available_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# Read and removed by pipeline/kfp_executor.py before TFX sees the Beam arguments.
EXCHANGE_DIR_ARG = "--tfxp_beam_exchange_dir"
FLINK_ON_KUBERNETES_ARGS = (
    "--runner",
    "--job_endpoint",
    "--artifact_endpoint",
    "--environment_type",
    "--environment_config",
    "--parallelism",
)


class FlinkOnKubernetes(Section):
    """The compiled pipeline's Beam steps on the Flink cluster of kubernetes/flink (docs/beam.md,
    "Flink on Kubernetes"): Beam's job server there, and in every TaskManager pod a Beam worker
    pool (Beam's EXTERNAL environment) running kubeflow.image on `worker_pool`. Artifacts cross
    through `exchange_dir`, a directory on the PVC that the steps and the TaskManager pods mount
    at the same path (kubeflow.pvc at kubeflow.mount_path): the Flink workers cannot read the KFP
    launcher's local copies (/minio/...). Local runs (`tfxp run`) ignore this section.
    """

    job_endpoint: str  # HOST:PORT of the job server's Service, e.g. beam-flink-jobserver.NAMESPACE:8099
    # Where the SDK uploads the job's artifacts; the job server would answer with its own bind
    # address (0.0.0.0), which another pod cannot dial. The Service's artifact port (8098).
    artifact_port: int = Field(default=8098, ge=1, le=65535)
    worker_pool: str = "localhost:50000"  # the sidecar in each TaskManager pod
    parallelism: int = Field(default=2, ge=1)
    exchange_dir: str = "/mnt/pipeline/beam-exchange"

    @field_validator("job_endpoint", "worker_pool")
    @classmethod
    def _host_port(cls, address: str) -> str:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or "/" in address:
            raise ValueError(f"'{address}' is not HOST:PORT (e.g. beam-flink-jobserver.kubeflow:8099)")
        return address

    @field_validator("exchange_dir")
    @classmethod
    def _absolute(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"'{path}' is not an absolute path on the shared PVC (e.g. /mnt/pipeline/beam-exchange)")
        return path.rstrip("/")


class BeamConfig(Section):
    """Beam options. DirectRunner locally; other runners take their flags in `extra_args`. The
    SDK image (`--sdk_container_image`) is kubeflow.image, for local and compiled runs alike."""

    runner: str = "DirectRunner"
    # auto: in_memory for small input data, multi_processing with a worker per core for large
    # (AUTO_MULTI_PROCESSING_BYTES; `direct_mode`). Compiled pipelines: in_memory.
    direct_running_mode: DirectRunningMode = DirectRunningMode.AUTO
    # 0: one per core. auto's multi_processing takes one per core unless this is set.
    direct_num_workers: int = Field(default=1, ge=0)
    # With DirectRunner's multi_processing: keep the worker processes alive from one Beam
    # component to the next instead of starting new ones for each (pipeline/beam_workers.py).
    # Other modes and runners ignore it.
    reuse_workers: bool = True
    # Another runner's flags (e.g. --project=..., --region=..., --temp_location=...) replace
    # these, which skip work a DirectRunner run does not need: with update_compatibility_version
    # (the installed Beam's version: no behaviour change) DirectRunner does not first try
    # Prism, which it would download from GitHub; no_pipeline_type_check skips Beam's
    # construction-time type-hint checks of the library transforms. (The SDK image, which keeps
    # TFX from building an sdist of itself per Beam component, is added from kubeflow.image.)
    extra_args: Texts = (
        "--update_compatibility_version=2.77.0",
        "--no_pipeline_type_check",
    )
    flink_on_kubernetes: FlinkOnKubernetes | None = None  # the compiled pipeline only

    @field_validator("extra_args")
    @classmethod
    def _no_sdk_image(cls, args: tuple[str, ...]) -> tuple[str, ...]:
        for arg in args:
            if arg.split("=", 1)[0] == SDK_IMAGE_ARG:
                raise ValueError(
                    f"remove {arg}: the Beam SDK image is kubeflow.image (set that), for local and compiled runs"
                )
        return args

    @model_validator(mode="after")
    def _flink_args_once(self) -> BeamConfig:
        if self.flink_on_kubernetes is not None:
            for arg in self.extra_args:
                if arg.split("=", 1)[0] in FLINK_ON_KUBERNETES_ARGS:
                    raise Invalid(
                        "extra_args", f"remove {arg}: beam.flink_on_kubernetes sets it for the compiled pipeline"
                    )
        return self

    def direct_mode(self, data_bytes: int | None = None, cores: int | None = None) -> tuple[DirectRunningMode, int]:
        """The DirectRunner's mode and worker count. `auto` resolves by the input's size in bytes
        (None: unknown, as for a compiled pipeline) and the cores there are."""
        mode, workers = self.direct_running_mode, self.direct_num_workers
        if mode is not DirectRunningMode.AUTO:
            return mode, workers
        cores = available_cores() if cores is None else cores
        if data_bytes is None or data_bytes < AUTO_MULTI_PROCESSING_BYTES or cores < 2:
            return DirectRunningMode.IN_MEMORY, 1
        if "direct_num_workers" not in self.model_fields_set or workers == 0:
            workers = cores
        return DirectRunningMode.MULTI_PROCESSING, workers

    def args(self, sdk_image: str | None = None, compiled: bool = False, data_bytes: int | None = None) -> list[str]:
        """Beam's arguments; `compiled` for the Kubeflow pipeline's steps, where
        flink_on_kubernetes (if set) replaces the runner and its environment. `data_bytes`, the
        input data's size, resolves direct_running_mode `auto` (`direct_mode`)."""
        image = [f"{SDK_IMAGE_ARG}={sdk_image}"] if sdk_image else []
        flink = self.flink_on_kubernetes if compiled else None
        if flink is not None:
            return [
                "--runner=FlinkRunner",
                f"--job_endpoint={flink.job_endpoint}",
                f"--artifact_endpoint={flink.job_endpoint.rpartition(':')[0]}:{flink.artifact_port}",
                "--environment_type=EXTERNAL",
                f"--environment_config={flink.worker_pool}",
                f"--parallelism={flink.parallelism}",
                *image,
                f"{EXCHANGE_DIR_ARG}={flink.exchange_dir}",
                *self.extra_args,
            ]
        if self.runner != "DirectRunner":
            return [f"--runner={self.runner}", *image, *self.extra_args]
        mode, workers = self.direct_mode(None if compiled else data_bytes)
        reuse = self.reuse_workers and mode is DirectRunningMode.MULTI_PROCESSING
        runner = "pipeline.beam_workers.WarmWorkersRunner" if reuse else self.runner
        return [
            f"--runner={runner}",
            f"--direct_running_mode={mode}",
            f"--direct_num_workers={workers}",
            *image,
            *self.extra_args,
        ]


class PullPolicy(Choice):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class Resources(Section):
    """One component's container resources on Kubeflow (Kubernetes quantities)."""

    cpu_request: str | None = None
    cpu_limit: str | None = None
    memory_request: str | None = None
    memory_limit: str | None = None
    accelerator_type: str = "nvidia.com/gpu"  # used with accelerator_count
    accelerator_count: int | None = Field(default=None, ge=0)


# KFP 2.x objectstore/config.go ParseBucketPathToConfig (mem:// is its tests' own).
OBJECT_STORE_SCHEMES = ("gs://", "s3://", "minio://")
# Where compiled steps find the webhook (pipeline/notify.py ENV_URL, which imports this module).
NOTIFY_URL_ENV = "TFXP_NOTIFY_URL"


class KubeflowConfig(Section):
    """Where and how the compiled pipeline runs on Kubeflow Pipelines (or Vertex AI).

    Artifacts go to the object store of `pipeline_root`, which `tfxp submit` sends with every
    run (KFP 2.x takes it from the run, else from its kfp-launcher ConfigMap, and accepts only
    gs://, s3:// and minio://). Every step mounts the PVC `pvc` at `mount_path`: the data, the
    serving directory and the accepted statistics live on it. On Vertex AI (gs:// for all of
    them) no PVC is needed: set `pvc: ""` and pass credentials through `secrets`.
    """

    image: str = "localhost/tfx-kfp-pipeline:latest"  # registry/name:tag or @digest; compile refuses localhost/
    # None: left out of the platform spec (Kubernetes' default then applies), for KFP 2.0.x,
    # whose driver refuses the field (added in KFP 2.1; docs/kubeflow.md).
    image_pull_policy: PullPolicy | None = PullPolicy.IF_NOT_PRESENT
    pipeline_root: str = "minio://mlpipeline/v2/artifacts"  # a default KFP install's own object store
    data_root: str = "/mnt/pipeline/data"  # default of the data_root run parameter
    serving_root: str = "/mnt/pipeline/serving"  # models go to <serving_root>/<model_name>/
    state_root: str = "/mnt/pipeline/state"  # what outlives a run: the accepted spans' statistics
    pvc: str | None = "tfx-pipeline"  # None or "": no PVC (object-store roots)
    mount_path: str = "/mnt/pipeline"
    # Each step's security context (run as the image's uid 10001, non-root) and emptyDir volumes
    # at /tmp and the image's HOME, for a read-only root file system (docs/kubeflow.md, "Pod
    # security"). false leaves them out, for older KFP backends whose driver does not know the
    # fields (KFP 2.0.5's, which tests/kfp_backend runs); the image still runs as uid 10001.
    pod_security: bool = True
    # Per component id ("default" for the rest). Given, it replaces these as a whole.
    resources: dict[str, Resources] = Field(
        default_factory=lambda: {
            "default": Resources(cpu_request="500m", cpu_limit="1", memory_request="2G", memory_limit="4G"),
            "Transform": Resources(cpu_request="2", cpu_limit="4", memory_request="8G", memory_limit="16G"),
            "Trainer": Resources(cpu_request="2", cpu_limit="4", memory_request="8G", memory_limit="16G"),
        }
    )
    trainer_node_selector: dict[str, str] = Field(default_factory=dict)
    # e.g. {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
    trainer_tolerations: tuple[dict[str, Any], ...] = ()
    secrets: dict[str, str] = Field(default_factory=dict)  # ENV_VAR: secret-name/key
    # KFP's exit handler (pipeline/kfp_exit_handler.py): a last task that runs whatever became of
    # the others and posts run_failed for failures outside the steps' own code (a pod killed for
    # memory, a driver error). Needs the webhook in secrets (TFXP_NOTIFY_URL) and a KFP backend
    # >= 2.14: older ones refuse its PipelineTaskFinalStatus input (docs/kubeflow.md).
    exit_handler: bool = False
    endpoint: str | None = None  # KFP API, e.g. http://ml-pipeline-ui.kubeflow:80; env KFP_ENDPOINT
    namespace: str | None = None  # multi-user KFP: the profile namespace; env KFP_NAMESPACE
    experiment: str = "tfx-pipelines"

    @field_validator("pipeline_root")
    @classmethod
    def _object_store(cls, root: str) -> str:
        if not root.startswith(OBJECT_STORE_SCHEMES) or not root.split("://", 1)[1].strip("/"):
            raise ValueError(
                f"'{root}' is not an object-store URI: Kubeflow Pipelines 2.x accepts only "
                "gs://BUCKET/..., s3://BUCKET/... or minio://BUCKET/... "
                "(a default install: minio://mlpipeline/v2/artifacts)"
            )
        return root

    @field_validator("secrets")
    @classmethod
    def _secret_refs(cls, secrets: dict[str, str]) -> dict[str, str]:
        for env, ref in secrets.items():
            if ref.count("/") != 1 or not all(ref.split("/")):
                raise Invalid(env, f"'{ref}' is not of the form SECRET_NAME/KEY")
        return secrets

    @model_validator(mode="after")
    def _mount(self) -> KubeflowConfig:
        if self.pvc and not self.mount_path.startswith("/"):
            raise Invalid("mount_path", f"must be an absolute path, got '{self.mount_path}'")
        if self.exit_handler and NOTIFY_URL_ENV not in self.secrets:
            raise Invalid(
                "exit_handler",
                f"notifies the webhook in {NOTIFY_URL_ENV}, which no secret sets: add "
                f"kubeflow.secrets.{NOTIFY_URL_ENV}=SECRET_NAME/KEY",
            )
        return self

    def serving_dir(self, model_name: str) -> str:
        return f"{self.serving_root.rstrip('/')}/{model_name}"


def _features_given(features: dict[str, FeatureSpec]) -> dict[str, FeatureSpec]:
    if not features:
        raise ValueError("must map each feature column to its options, for example  features: {fare: {type: numeric}}")
    return features


class PipelineConfig(Section):
    pipeline_name: str
    model_name: str
    data: DataConfig
    label: LabelSpec
    features: Annotated[Features, AfterValidator(_features_given)] = Field(default_factory=dict, validate_default=True)
    crosses: tuple[CrossSpec, ...] = ()
    # Pipeline root, metadata and serving directory live below it; relative to the current directory.
    output_dir: Annotated[str, AfterValidator(_from_current_directory)] = Field(default="output", validate_default=True)
    enable_cache: bool = True
    schema_: SchemaConfig = Field(default_factory=SchemaConfig, alias="schema")
    transform: TransformConfig = Field(default_factory=TransformConfig)
    tuner: TunerConfig = Field(default_factory=TunerConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    evaluator: EvaluatorConfig = Field(default_factory=EvaluatorConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    serving_check: ServingCheckConfig = Field(default_factory=ServingCheckConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    beam: BeamConfig = Field(default_factory=BeamConfig)
    kubeflow: KubeflowConfig = Field(default_factory=KubeflowConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    model_card: ModelCardConfig = Field(default_factory=ModelCardConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    pusher: PusherConfig = Field(default_factory=PusherConfig)

    @model_validator(mode="before")
    @classmethod
    def _monitor_reads_the_skew_checks_log(cls, raw: Any) -> Any:
        """monitor.requests defaults to drift.serving_requests (both resolve the same way)."""
        if isinstance(raw, Mapping):
            drift, monitor = raw.get("drift"), raw.get("monitor")
            logged = drift.get("serving_requests") if isinstance(drift, Mapping) else None
            if logged and (monitor is None or isinstance(monitor, Mapping) and not monitor.get("requests")):
                raw = {**raw, "monitor": {**(monitor or {}), "requests": logged}}
        return raw

    @model_validator(mode="after")
    def _sections_agree(self) -> PipelineConfig:
        check_model(self.label, self.features, self.trainer, self.crosses)
        for name in self.drift.features:
            if name not in self.features:
                raise Invalid(
                    "drift.features", f"'{name}' is not a feature; features are: {', '.join(sorted(self.features))}"
                )
        task, allowed = self.label.task, TASK_THRESHOLDS[self.label.task]
        for name in sorted(set().union(*TASK_THRESHOLDS.values()) - set(allowed)):
            if getattr(self.evaluator, name) is not None:
                raise Invalid(
                    f"evaluator.{name}",
                    f"does not apply to label.task {task}; its thresholds are: {', '.join(allowed)}",
                )
        flink = self.beam.flink_on_kubernetes
        if flink is not None:
            mount = self.kubeflow.mount_path.rstrip("/")
            if not self.kubeflow.pvc or not flink.exchange_dir.startswith(mount + "/"):
                raise Invalid(
                    "beam.flink_on_kubernetes.exchange_dir",
                    f"'{flink.exchange_dir}' must be on the PVC the steps and TaskManagers share: set kubeflow.pvc "
                    f"and an exchange_dir below kubeflow.mount_path ({mount})",
                )
        for name, tasks in LIVE_OPTIONS.items():
            if task not in tasks and getattr(self.monitor, name) is not None:
                own = [o for o, t in LIVE_OPTIONS.items() if task in t]
                raise Invalid(
                    f"monitor.{name}",
                    f"does not apply to label.task {task}; its live thresholds are: {', '.join(own)}",
                )
        return self

    def beam_args(self, compiled: bool = False, data_bytes: int | None = None) -> list[str]:
        """Beam's arguments with the SDK image kubeflow.image; `compiled`: for the Kubeflow steps;
        `data_bytes`: the input's size, for beam.direct_running_mode auto."""
        return self.beam.args(self.kubeflow.image, compiled, data_bytes)

    @property
    def schema(self) -> SchemaConfig:
        """The `schema` section (a field name pydantic's BaseModel keeps for itself)."""
        return self.schema_

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipelines", self.pipeline_name)

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata", self.pipeline_name, "metadata.sqlite")

    @property
    def feedback_dir(self) -> str:
        """Ground truth joined to logged requests (`tfxp feedback`)."""
        return os.path.join(self.output_dir, "feedback")

    @property
    def serving_dir(self) -> str:
        """The TF Serving model directory: versions are pushed to <serving_dir>/<version>/."""
        return os.path.join(self.output_dir, "serving", self.model_name)

    def model_code_config(self) -> dict[str, Any]:
        """What the model code (Transform, Tuner, Trainer) reads, as plain JSON-able data: a
        models.spec.ModelSpec, which the model code parses back. (Not `model_config`: pydantic
        keeps that name for a model's settings.)"""
        return ModelSpec(
            label=self.label, features=self.features, crosses=self.crosses, trainer=self.trainer, tuner=self.tuner
        ).model_dump(mode="json")

    def drift_features(self) -> list[str]:
        """The features the drift check compares: drift.features, else every feature but the
        timestamps, whose values move on with every new span by nature."""
        return list(self.drift.features) or sorted(
            name for name, spec in self.features.items() if spec.type is not FeatureType.TIMESTAMP
        )

    def as_dict(self) -> dict[str, Any]:
        """The whole configuration as plain JSON-able data, under the YAML's keys."""
        return self.model_dump(mode="json", by_alias=True)


# --------------------------------------------------------------------------- parsing


def _parse_override(text: str) -> tuple[list[str], Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override '{text}' is not of the form KEY=VALUE (for example trainer.train_steps=200)")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(
            f"override '{text}': the value is not valid YAML ({problem}); "
            f"quote it to pass it as text, e.g. --set '{key.strip()}=\"{value}\"'"
        ) from None
    return key.strip().split("."), parsed


def _is_file_path(keys: list[str]) -> bool:
    """Whether the option at `keys` is a FilePath."""
    _, section = walk(PipelineConfig, tuple(keys[:-1]))
    if not (isinstance(section, type) and issubclass(section, pydantic.BaseModel)):
        return False
    field = fields_of(section).get(keys[-1])
    if field is None:
        return False
    if _FROM_CONFIG_FILE in field.metadata:  # pydantic moves a field's own Annotated[...] metadata here
        return True
    annotations = [field.annotation]
    while annotations:
        annotation = annotations.pop()
        if _FROM_CONFIG_FILE in getattr(annotation, "__metadata__", ()):
            return True
        annotations.extend(typing.get_args(annotation))
    return False


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Applies KEY.SUB=VALUE overrides (values parsed as YAML) to a raw config mapping.

    Relative paths given this way (data.path, schema.path, ...) resolve against the current
    directory."""
    for text in overrides:
        keys, value = _parse_override(text)
        node = raw
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override '{text}': '{'.'.join(keys[: depth + 1])}' is not a section")
            node = child
        if isinstance(value, str) and _is_file_path(keys):
            # A path typed on the command line means the directory the user is in, not the
            # config file's directory (which is where paths written in the file resolve).
            value = resolve_path(value, pathlib.Path.cwd())
        node[keys[-1]] = value
    return raw


# The directories the runtime's Debian 13 root keeps as its own (scripts/runtime.sh binds every
# other top-level directory of the host at its own path); TFXP_RUNTIME=root says a command runs there.
ROOT_OWN_DIRS = ("bin", "boot", "etc", "lib", "lib32", "lib64", "libx32", "run", "sbin", "usr", "var")


def not_visible_hint(path: str | os.PathLike) -> str:
    """Why a host path may be missing inside the runtime root, or "" where that cannot be why."""
    parts = pathlib.PurePath(os.path.abspath(path)).parts
    if os.environ.get("TFXP_RUNTIME") != "root" or len(parts) < 2 or parts[1] not in ROOT_OWN_DIRS:
        return ""
    return (
        f" (commands run in the runtime's Debian 13 root, whose /{parts[1]} is its own, not the host's: "
        "move the file under your home, /tmp or the checkout)"
    )


def load_config(path: str | None = None, overrides: list[str] | None = None) -> PipelineConfig:
    """Reads a YAML config (default: the bundled taxi config), applies overrides, validates."""
    path = path or DEFAULT_CONFIG
    file_path = pathlib.Path(resolve_path(path))
    try:
        text = file_path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {file_path} does not exist{not_visible_hint(file_path)}; pass --config with an "
            "existing YAML file (see pipeline/configs/taxi.yaml for an example)"
        ) from None
    except OSError as err:
        raise ConfigError(f"config file {file_path} cannot be read: {err.strerror}") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {file_path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {file_path}: expected a mapping at the top level")
    raw = apply_overrides(raw, overrides or [])
    return parse_config(raw, base=file_path.parent)


def parse_config(raw: Mapping[str, Any], base: pathlib.Path | None = None) -> PipelineConfig:
    """Validates a raw mapping into a PipelineConfig. Relative paths resolve against `base`
    (default: the current directory)."""
    try:
        return PipelineConfig.model_validate(dict(raw), context={"base": base})
    except pydantic.ValidationError as err:
        raise ConfigError(error_line(err, PipelineConfig)) from None
