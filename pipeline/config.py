"""The pipeline's one typed configuration: parsed from a YAML file plus overrides, validated once.

Every other module takes a `PipelineConfig`; nothing reads files or the environment at import
time. Errors are `ConfigError`s whose message says what is wrong and how to fix it.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import importlib.util
import os
import pathlib
from typing import Any, Mapping

import yaml

DEFAULT_CONFIG = "package://pipeline/configs/taxi.yaml"
PACKAGE_PREFIX = "package://"


class ConfigError(ValueError):
    """A configuration (or the data it names) is wrong; the message says how to fix it."""


class FeatureType(str, enum.Enum):
    """How a feature column is preprocessed (see models/features.py)."""

    NUMERIC = "numeric"          # z-score scaled float
    BUCKETIZED = "bucketized"    # quantile buckets of a number, one-hot
    CATEGORICAL = "categorical"  # vocabulary of strings (or integers), one-hot with OOV buckets
    TIMESTAMP = "timestamp"      # hour of day, day of week and month (UTC), each one-hot


# A timestamp feature's values: epoch seconds (a number) or ISO-8601 text (2019-03-01,
# 2019-03-01T14:05:00, with Z or an offset such as +02:00).
TIMESTAMP_FORMATS = ("epoch", "iso")
# What the model sees of a timestamp, each a categorical part; crosses name them NAME.PART.
TIMESTAMP_PARTS = ("hour", "day_of_week", "month")


class Task(str, enum.Enum):
    """What the model predicts from the label column (label.task)."""

    BINARY = "binary"          # two classes: a sigmoid head, AUC and accuracy
    MULTICLASS = "multiclass"  # one of several classes: a softmax head over a vocabulary of classes
    REGRESSION = "regression"  # a number: a linear head, MAE and RMSE


VOCABULARIES = ("approximate", "exact")
# tf.Transform's limit for approximate vocabularies (tft.analyzers.LARGE_VOCAB_TOP_K).
VOCABULARY_CAP = 200_000


class InfraValidation(str, enum.Enum):
    """Whether TFX's InfraValidator also loads the candidate in a real TF Serving."""

    AUTO = "auto"      # where the runner can start one (see ServingCheckConfig)
    ALWAYS = "always"  # required: refused where none can be started
    NEVER = "never"


class DataFormat(str, enum.Enum):
    CSV = "csv"
    TFRECORD = "tfrecord"
    PARQUET = "parquet"

    @property
    def file_pattern(self) -> str:
        """The files of this format in a data directory."""
        return {"csv": "*.csv", "tfrecord": "*", "parquet": "*.parquet"}[self.value]


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """One input feature: its column, how it is preprocessed, and what fills it when missing."""

    name: str
    type: FeatureType
    default: float | int | str | None = None  # fills missing values; None: the type's default
    num_buckets: int = 10        # bucketized: number of quantile buckets
    top_k: int | None = None     # categorical: keep the k most frequent values
    num_oov_buckets: int = 1     # categorical: buckets for values outside the vocabulary
    # categorical: "approximate" (one pass, shared with the other analyzers; exact whenever the
    # column has at most top_k distinct values, or VOCABULARY_CAP without top_k) or "exact"
    # (a Beam sub-pipeline of its own per feature, for larger vocabularies).
    vocabulary: str = "approximate"
    format: str | None = None    # timestamp: one of TIMESTAMP_FORMATS; None: epoch


@dataclasses.dataclass(frozen=True)
class CrossSpec:
    """A feature cross: each row's combination of the values of two or more categorical or
    bucketized features (or timestamp parts, NAME.PART), hashed into `hash_buckets` ids that
    the model one-hot encodes like a categorical feature's."""

    features: tuple[str, ...]
    hash_buckets: int = 100
    name: str | None = None      # None: the parts joined by _x_ (dots as _)

    def default_name(self) -> str:
        return "_x_".join(part.replace(".", "_") for part in self.features)


@dataclasses.dataclass(frozen=True)
class LabelSpec:
    """The label and the task it defines.

    binary: without a rule the column already holds the class: 0/1 integers, or strings of
    which `positive_values` are the positive class. With `greater_than_fraction_of` the label
    is 1 where `column > fraction * greater_than_fraction_of` (the taxi "big tipper" task).
    multiclass: the column's values (strings or integers) are the classes: `classes` lists
    them in the order the model answers them; without it, tf.Transform's vocabulary of the
    train split does (most frequent first). A row whose class is not in `classes` stops the
    run before any component (pipeline/preflight.py), or with `other_classes: drop` is left
    out by ExampleGen; without `classes`, rows of classes absent from the train split are left
    out of training and count as errors in the evaluation.
    regression: the column is a number; with `log_transform` the model learns log(1 + y)
    and answers y, so the target must not be below 0.
    """

    column: str
    name: str = "label"
    task: Task = Task.BINARY
    positive_values: tuple[str, ...] = ()
    greater_than_fraction_of: str | None = None
    fraction: float = 0.2
    classes: tuple[str, ...] = ()   # multiclass: the expected classes, in order
    log_transform: bool = False     # regression: train on log(1 + y)
    # Rows whose label (or greater_than_fraction_of) is missing: "error" stops the run before
    # any component (pipeline/preflight.py); "drop" makes ExampleGen leave them out.
    missing: str = "error"
    # multiclass with classes: rows of another class, "error" (preflight) or "drop" (ExampleGen).
    other_classes: str = "error"


LABEL_MISSING = ("error", "drop")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    path: str               # a file or a directory of files; package://PKG/sub/path for packaged data
    format: DataFormat = DataFormat.CSV
    train_buckets: int = 8  # hash buckets per split: the ratio of train:eval:test
    eval_buckets: int = 1
    test_buckets: int = 1
    # Dated or numbered drops below `path`: a pattern with {SPAN}, e.g. "span-{SPAN}/*.csv".
    # Each run reads the newest `rolling_spans` spans; a new drop is a new span.
    span_pattern: str | None = None
    rolling_spans: int = 1
    # CSV cells that mean "no value", for every column type (spaces around them are ignored).
    missing_values: tuple[str, ...] = ("", "NA", "N/A", "NaN", "null")


@dataclasses.dataclass(frozen=True)
class SchemaConfig:
    path: str | None = None  # a curated schema.pbtxt to import instead of inferring one


@dataclasses.dataclass(frozen=True)
class TransformConfig:
    # Transform's own TFDV pass over the raw and the transformed data (pre/post-transform
    # statistics, schema and anomalies artifacts). Nothing downstream reads them; StatisticsGen
    # and ExampleValidator already check the raw data.
    statistics: bool = False


@dataclasses.dataclass(frozen=True)
class TunerConfig:
    enabled: bool = True
    max_trials: int = 2
    train_steps: int = 100
    eval_steps: int = 20
    seed: int | None = None  # the random search's seed; None: trainer.seed


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    train_steps: int = 1000
    eval_steps: int = 100
    batch_size: int = 64
    learning_rate: float = 0.001
    hidden_units: tuple[int, ...] = (32, 16)
    # Regression: "mse" (default) or "huber" (delta: one standard deviation of the target).
    # Classification has its own (cross-entropy) and takes none.
    loss: str | None = None
    # Seeds weights, dropout and the shuffle of the training data, with TensorFlow's op
    # determinism: the same data and config train the same model.
    seed: int = 42
    warm_start: bool = False  # start from the newest served model's weights where they still fit
    # The Trainer's entry point, by dotted path in an installed package (models/ by default).
    run_fn: str = "models.model.run_fn"


@dataclasses.dataclass(frozen=True)
class ServingCheckConfig:
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


@dataclasses.dataclass(frozen=True)
class DriftConfig:
    """Drift between the current span's train statistics and the last accepted span's (TFDV)."""

    enabled: bool = True
    categorical_threshold: float = 0.1  # L-infinity distance, for string features
    numeric_threshold: float = 0.2      # approximate Jensen-Shannon divergence, for numbers
    features: tuple[str, ...] = ()      # checked features; empty: every model feature
    accept: bool = False                # accept the drift found in this run (recorded in ML Metadata)
    # Requests logged by `tfxp serve --log-requests DIR`: when set, the span's train statistics
    # are also compared with theirs (training-serving skew), with the same thresholds.
    serving_requests: str | None = None


@dataclasses.dataclass(frozen=True)
class EvaluatorConfig:
    """The Evaluator's thresholds: min_/max_ values the test-split metric must meet, and
    _decrease/_increase changes against the served baseline it must not exceed.

    Each task takes its own (TASK_THRESHOLDS); unset ones get TASK_DEFAULTS, or none.
    AUC is one-vs-rest averaged over the classes (macro) for multiclass, as is F1.
    """

    min_auc: float | None = None
    max_auc_decrease: float | None = None
    min_accuracy: float | None = None
    max_accuracy_decrease: float | None = None
    min_macro_f1: float | None = None
    max_mae: float | None = None           # regression: in the label's units
    max_mae_increase: float | None = None
    max_rmse: float | None = None
    max_rmse_increase: float | None = None
    slices: tuple[str, ...] = ()    # raw feature columns to slice metrics by

    def thresholds(self, task: Task) -> dict[str, float]:
        """{option: value} of the thresholds that apply to `task`, defaults filled in."""
        values = dict(TASK_DEFAULTS[task])
        for name in TASK_THRESHOLDS[task]:
            if getattr(self, name) is not None:
                values[name] = getattr(self, name)
        return values


TASK_THRESHOLDS = {
    Task.BINARY: ("min_auc", "max_auc_decrease", "min_accuracy", "max_accuracy_decrease"),
    Task.MULTICLASS: ("min_auc", "max_auc_decrease", "min_accuracy", "max_accuracy_decrease", "min_macro_f1"),
    Task.REGRESSION: ("max_mae", "max_mae_increase", "max_rmse", "max_rmse_increase"),
}
TASK_DEFAULTS = {
    Task.BINARY: {"min_auc": 0.6, "max_auc_decrease": 0.01, "min_accuracy": 0.5},
    Task.MULTICLASS: {"max_accuracy_decrease": 0.01},
    Task.REGRESSION: {},  # errors are in the label's units: the config says what is good enough
}
REGRESSION_LOSSES = ("mse", "huber")


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    """The served model in production: ground truth (`tfxp feedback`) and `tfxp monitor`.

    Feedback rows are joined to logged requests (`requests`, the directory `tfxp serve
    --log-requests` writes) by `id_column`: a logged feature of that name, or else the
    request's id (see ops/monitoring/feedback.py). `key_column` joins on another logged
    feature instead. Unset thresholds fall back to the Evaluator's and the drift check's.
    """

    requests: str | None = None       # the request log directory; default drift.serving_requests
    id_column: str = "request_id"     # the feedback CSV's id column
    key_column: str | None = None     # join on this logged feature (same-named CSV column) instead
    window: str = "24h"               # default --window: 30m, 24h, 7d, 3600s
    min_auc: float | None = None      # live AUC below it is flagged; None: evaluator.min_auc
    min_accuracy: float | None = None  # None: evaluator.min_accuracy
    max_auc_drop: float = 0.05        # live AUC below the version's test AUC by more is flagged
    categorical_threshold: float | None = None  # skew and drift of traffic; None: drift's
    numeric_threshold: float | None = None
    min_labelled: int = 50            # fewer labelled rows in the window: no live metrics
    max_error_ratio: float = 0.01     # serving errors / requests, from the server's metrics
    serving_url: str | None = None    # REST endpoint for health, e.g. http://127.0.0.1:8501


@dataclasses.dataclass(frozen=True)
class BeamConfig:
    """Beam options. DirectRunner locally; other runners take their flags in `extra_args`."""

    runner: str = "DirectRunner"
    # in_memory was the fastest mode on the bundled ~15k-row sample (README, Beam runners);
    # at 150k rows and more multi_processing with a worker per core (0) was faster.
    direct_running_mode: str = "in_memory"  # in_memory | multi_threading | multi_processing
    direct_num_workers: int = 1             # 0: one per core
    # With DirectRunner's multi_processing: keep the worker processes alive from one Beam
    # component to the next instead of starting new ones for each (pipeline/beam_workers.py).
    # Other modes and runners ignore it.
    reuse_workers: bool = True
    # Another runner's flags (e.g. --project=..., --region=..., --temp_location=...) replace
    # these, which skip work a DirectRunner run does not need: with an SDK image named, TFX
    # does not build an sdist of itself per Beam component; with update_compatibility_version
    # (the installed Beam's version: no behaviour change) DirectRunner does not first try
    # Prism, which it would download from GitHub; no_pipeline_type_check skips Beam's
    # construction-time type-hint checks of the library transforms.
    extra_args: tuple[str, ...] = ("--sdk_container_image=localhost/tfx-kfp-pipeline:latest",
                                   "--update_compatibility_version=2.77.0",
                                   "--no_pipeline_type_check")

    def args(self) -> list[str]:
        if self.runner != "DirectRunner":
            return [f"--runner={self.runner}", *self.extra_args]
        reuse = self.reuse_workers and self.direct_running_mode == "multi_processing"
        runner = "pipeline.beam_workers.WarmWorkersRunner" if reuse else self.runner
        return [f"--runner={runner}", f"--direct_running_mode={self.direct_running_mode}",
                f"--direct_num_workers={self.direct_num_workers}", *self.extra_args]


@dataclasses.dataclass(frozen=True)
class KubeflowConfig:
    """Where and how the compiled pipeline runs on Kubeflow Pipelines (or Vertex AI).

    Artifacts go to the object store of `pipeline_root`, which `tfxp submit` sends with every
    run (KFP 2.x takes it from the run, else from its kfp-launcher ConfigMap, and accepts only
    gs://, s3:// and minio://). Every step mounts the PVC `pvc` at `mount_path`: the data, the
    serving directory and the accepted statistics live on it. On Vertex AI (gs:// for all of
    them) no PVC is needed: set `pvc: ""` and pass credentials through `secrets`.
    """

    image: str = "localhost/tfx-kfp-pipeline:latest"  # registry/name:tag or @digest; compile refuses localhost/
    image_pull_policy: str = "IfNotPresent"           # Always | IfNotPresent | Never
    pipeline_root: str = "minio://mlpipeline/v2/artifacts"  # a default KFP install's own object store
    data_root: str = "/mnt/pipeline/data"             # default of the data_root run parameter
    serving_root: str = "/mnt/pipeline/serving"       # models go to <serving_root>/<model_name>/
    state_root: str = "/mnt/pipeline/state"           # what outlives a run: the accepted spans' statistics
    pvc: str | None = "tfx-pipeline"  # None or "": no PVC (object-store roots)
    mount_path: str = "/mnt/pipeline"
    # Per component id ("default" for the rest): cpu_request, cpu_limit, memory_request,
    # memory_limit (Kubernetes quantities), accelerator_type and accelerator_count.
    resources: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=lambda: {
        "default": {"cpu_request": "500m", "cpu_limit": "1", "memory_request": "2G", "memory_limit": "4G"},
        "Transform": {"cpu_request": "2", "cpu_limit": "4", "memory_request": "8G", "memory_limit": "16G"},
        "Trainer": {"cpu_request": "2", "cpu_limit": "4", "memory_request": "8G", "memory_limit": "16G"},
    })
    trainer_node_selector: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # e.g. {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
    trainer_tolerations: tuple[Mapping[str, Any], ...] = ()
    secrets: Mapping[str, str] = dataclasses.field(default_factory=dict)  # ENV_VAR: secret-name/key
    endpoint: str | None = None  # KFP API, e.g. http://ml-pipeline-ui.kubeflow:80; env KFP_ENDPOINT
    namespace: str | None = None  # multi-user KFP: the profile namespace; env KFP_NAMESPACE
    experiment: str = "tfx-pipelines"

    def serving_dir(self, model_name: str) -> str:
        return f"{self.serving_root.rstrip('/')}/{model_name}"


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    pipeline_name: str
    model_name: str
    data: DataConfig
    label: LabelSpec
    features: Mapping[str, FeatureSpec]
    crosses: tuple[CrossSpec, ...] = ()
    output_dir: str = "output"  # pipeline root, metadata and serving directory live below it
    enable_cache: bool = True
    schema: SchemaConfig = SchemaConfig()
    transform: TransformConfig = TransformConfig()
    tuner: TunerConfig = TunerConfig()
    trainer: TrainerConfig = TrainerConfig()
    evaluator: EvaluatorConfig = EvaluatorConfig()
    drift: DriftConfig = DriftConfig()
    serving_check: ServingCheckConfig = ServingCheckConfig()
    monitor: MonitorConfig = MonitorConfig()
    beam: BeamConfig = BeamConfig()
    kubeflow: KubeflowConfig = KubeflowConfig()

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

    def model_config(self) -> dict[str, Any]:
        """What the model code (Transform, Tuner, Trainer) needs, as plain JSON-able data."""
        return {
            "label": _plain(dataclasses.asdict(self.label)),
            "features": {name: _plain(dataclasses.asdict(spec)) for name, spec in self.features.items()},
            "crosses": [_plain(dataclasses.asdict(cross)) for cross in self.crosses],
            "tuner": dataclasses.asdict(self.tuner),
            "trainer": _plain(dataclasses.asdict(self.trainer)),
        }

    def drift_features(self) -> list[str]:
        """The features the drift check compares: drift.features, else every feature but the
        timestamps, whose values move on with every new span by nature."""
        return list(self.drift.features) or sorted(
            name for name, spec in self.features.items() if spec.type is not FeatureType.TIMESTAMP)


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------- parsing

def resolve_path(path: str, base: pathlib.Path | None = None) -> str:
    """Resolves package://PKG/sub/path to the installed package's files; makes others absolute."""
    if path.startswith(PACKAGE_PREFIX):
        package, _, rest = path[len(PACKAGE_PREFIX):].partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"{path}: package '{package}' is not installed; "
                              "install it or give a plain file path")
        return os.path.join(list(spec.submodule_search_locations)[0], rest)
    expanded = pathlib.Path(os.path.expanduser(path))
    if not expanded.is_absolute():
        expanded = (base or pathlib.Path.cwd()) / expanded
    return str(expanded.resolve())


def _build(cls: type, raw: Any, where: str) -> Any:
    """Builds dataclass `cls` from a mapping, rejecting unknown keys with a suggestion."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of options, got {type(raw).__name__} {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}: unknown option '{key}'{hint}; "
                              f"valid options are: {', '.join(sorted(fields))}")
        kwargs[key] = _coerce(fields[key].type, value, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except TypeError as err:
        missing = [n for n, f in fields.items()
                   if n not in kwargs and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        raise ConfigError(f"{where}: missing required option(s): {', '.join(missing)}") from err


_SCALARS = {"int": int, "float": float, "str": str, "bool": bool}


def _coerce(type_name: Any, value: Any, where: str) -> Any:
    """Checks and converts a YAML value against a field's annotation (a string here)."""
    t = str(type_name).replace(" ", "")
    if value is None:
        if "None" in t:
            return None
        raise ConfigError(f"{where}: a value is required")
    if t.startswith("tuple["):
        inner = t[len("tuple["):-1].rsplit(",", 1)[0] if t.endswith(",...]") else t[len("tuple["):-1]
        if isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value))
    for enum_cls in (FeatureType, DataFormat, InfraValidation, Task):
        if t == enum_cls.__name__:
            try:
                return enum_cls(str(value).lower())
            except ValueError:
                raise ConfigError(f"{where}: '{value}' is not one of: "
                                  f"{', '.join(m.value for m in enum_cls)}") from None
    if t.startswith("Mapping["):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        inner = t[len("Mapping["):-1].split(",", 1)[1]
        if inner == "str":
            return {str(k): _coerce("str", v, f"{where}.{k}") for k, v in value.items()}
        return {str(k): (dict(v) if isinstance(v, Mapping) else v) for k, v in value.items()}
    options = [p for p in t.split("|") if p != "None"]
    if options == ["float", "int", "str"]:  # a fill value: keep its YAML type
        return value
    kind = options[0]
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "yes", "1", "on"):
            return True
        if str(value).lower() in ("false", "no", "0", "off"):
            return False
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if kind in ("int", "float"):
        try:
            number = _SCALARS[kind](value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if kind == "int" and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return number
    if kind == "str":
        if isinstance(value, (Mapping, list)):
            raise ConfigError(f"{where}: expected a text value, got {value!r}")
        return str(value)
    return value


def _parse_override(text: str) -> tuple[list[str], Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override '{text}' is not of the form KEY=VALUE "
                          "(for example trainer.train_steps=200)")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"override '{text}': the value is not valid YAML ({problem}); "
                          f"quote it to pass it as text, e.g. --set '{key.strip()}=\"{value}\"'") from None
    return key.strip().split("."), parsed


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Applies KEY.SUB=VALUE overrides (values parsed as YAML) to a raw config mapping.

    Relative data.path and schema.path overrides resolve against the current directory."""
    for text in overrides:
        keys, value = _parse_override(text)
        node = raw
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override '{text}': '{'.'.join(keys[:depth + 1])}' is not a section")
            node = child
        if tuple(keys) in _PATH_OPTIONS and isinstance(value, str):
            # A path typed on the command line means the directory the user is in, not the
            # config file's directory (which is where paths written in the file resolve).
            value = resolve_path(value, pathlib.Path.cwd())
        node[keys[-1]] = value
    return raw


_PATH_OPTIONS = {("data", "path"), ("schema", "path"), ("drift", "serving_requests"), ("monitor", "requests")}


def load_config(path: str | None = None, overrides: list[str] | None = None) -> PipelineConfig:
    """Reads a YAML config (default: the bundled taxi config), applies overrides, validates."""
    path = path or DEFAULT_CONFIG
    file_path = pathlib.Path(resolve_path(path))
    try:
        text = file_path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file {file_path} does not exist; pass --config with an existing "
                          "YAML file (see pipeline/configs/taxi.yaml for an example)") from None
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
    """Validates a raw mapping into a PipelineConfig. Relative data paths resolve against `base`."""
    raw = dict(raw)
    sections = {"data": DataConfig, "label": LabelSpec, "schema": SchemaConfig, "transform": TransformConfig,
                "tuner": TunerConfig, "trainer": TrainerConfig, "evaluator": EvaluatorConfig,
                "drift": DriftConfig, "serving_check": ServingCheckConfig, "monitor": MonitorConfig,
                "beam": BeamConfig,
                "kubeflow": KubeflowConfig}
    features_raw = raw.pop("features", None)
    if not isinstance(features_raw, Mapping) or not features_raw:
        raise ConfigError("config: 'features' must map each feature column to its options, "
                          "for example  features: {fare: {type: numeric}}")
    features = {}
    for name, options in features_raw.items():
        if isinstance(options, str):
            options = {"type": options}
        options = dict(options or {})
        if "type" not in options:
            raise ConfigError(f"features.{name}: missing 'type' (one of: "
                              f"{', '.join(t.value for t in FeatureType)})")
        features[str(name)] = _build(FeatureSpec, {"name": str(name), **options}, f"features.{name}")
    crosses = _crosses(raw.pop("crosses", None))
    built = {key: _build(cls, raw.pop(key, None), key) for key, cls in sections.items()}
    top_fields = {f.name for f in dataclasses.fields(PipelineConfig)} - set(sections) - {"features", "crosses"}
    for key in raw:
        if key not in top_fields:
            known = top_fields | set(sections) | {"features", "crosses"}
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"config: unknown option '{key}'{hint}; valid top-level options are: "
                              f"{', '.join(sorted(known))}")
    scalars = {f.name: _coerce(f.type, raw[f.name], f.name)
               for f in dataclasses.fields(PipelineConfig) if f.name in raw}
    for required in ("pipeline_name", "model_name"):
        if required not in scalars:
            raise ConfigError(f"config: missing required option '{required}'")
    data = dataclasses.replace(built["data"], path=resolve_path(built["data"].path, base))
    schema = built["schema"]
    if schema.path:
        schema = dataclasses.replace(schema, path=resolve_path(schema.path, base))
    drift = built["drift"]
    if drift.serving_requests:
        drift = dataclasses.replace(drift, serving_requests=resolve_path(drift.serving_requests, base))
    monitor = built["monitor"]
    if monitor.requests:
        monitor = dataclasses.replace(monitor, requests=resolve_path(monitor.requests, base))
    elif drift.serving_requests:
        monitor = dataclasses.replace(monitor, requests=drift.serving_requests)
    built["monitor"] = monitor
    scalars["output_dir"] = resolve_path(scalars.get("output_dir", "output"), pathlib.Path.cwd())
    config = PipelineConfig(features=features, crosses=crosses,
                            **{**built, "data": data, "schema": schema, "drift": drift}, **scalars)
    validate(config)
    return config


def _crosses(raw: Any) -> tuple[CrossSpec, ...]:
    """crosses: a list of {features: [A, B, ...], hash_buckets: N, name: ...} or of "A x B" texts."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("crosses: expected a list, for example  crosses: [{features: [a, b], hash_buckets: 100}]")
    crosses = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            item = {"features": [part.strip() for part in item.split(" x ")]}
        cross = _build(CrossSpec, item, f"crosses[{i}]")
        crosses.append(cross if cross.name else dataclasses.replace(cross, name=cross.default_name()))
    return tuple(crosses)


def validate(config: PipelineConfig) -> None:
    """Checks the rules that span several options."""
    label = config.label
    if label.column in config.features:
        raise ConfigError(f"label column '{label.column}' is also listed under features; "
                          "remove it from features")
    if label.name in config.features:
        raise ConfigError(f"label.name '{label.name}' clashes with a feature name; choose another")
    if label.greater_than_fraction_of and label.positive_values:
        raise ConfigError("label: give either positive_values or greater_than_fraction_of, not both")
    if label.missing not in LABEL_MISSING:
        raise ConfigError(f"label.missing '{label.missing}' is not one of: {', '.join(LABEL_MISSING)}")
    for split in ("train_buckets", "eval_buckets", "test_buckets"):
        if getattr(config.data, split) < 1:
            raise ConfigError(f"data.{split} must be at least 1 (it is a share of hash buckets)")
    for name, spec in config.features.items():
        if spec.type is FeatureType.BUCKETIZED and spec.num_buckets < 2:
            raise ConfigError(f"features.{name}.num_buckets must be at least 2")
        if spec.type is FeatureType.NUMERIC and isinstance(spec.default, str):
            raise ConfigError(f"features.{name}.default must be a number for a numeric feature")
        if spec.vocabulary not in VOCABULARIES:
            raise ConfigError(f"features.{name}.vocabulary '{spec.vocabulary}' is not one of: "
                              f"{', '.join(VOCABULARIES)}")
        if spec.top_k is not None and spec.top_k < 1:
            raise ConfigError(f"features.{name}.top_k must be at least 1, got {spec.top_k}")
        if spec.vocabulary == "approximate" and (spec.top_k or 0) > VOCABULARY_CAP:
            raise ConfigError(f"features.{name}.top_k {spec.top_k} is above {VOCABULARY_CAP}, the "
                              "limit of an approximate vocabulary; set vocabulary: exact")
        _validate_timestamp(name, spec)
    _validate_crosses(config)
    if config.data.span_pattern is not None and "{SPAN}" not in config.data.span_pattern:
        raise ConfigError(f"data.span_pattern '{config.data.span_pattern}' has no {{SPAN}}; "
                          "use for example span-{SPAN}/*.csv")
    if config.data.rolling_spans < 1:
        raise ConfigError("data.rolling_spans must be at least 1")
    for name in config.drift.features:
        if name not in config.features:
            raise ConfigError(f"drift.features: '{name}' is not a feature; features are: "
                              f"{', '.join(sorted(config.features))}")
    for name in ("categorical_threshold", "numeric_threshold"):
        if not 0.0 < getattr(config.drift, name) <= 1.0:
            raise ConfigError(f"drift.{name} must lie in (0, 1]")
    modes = ("in_memory", "multi_threading", "multi_processing")
    if config.beam.direct_running_mode not in modes:
        raise ConfigError(f"beam.direct_running_mode '{config.beam.direct_running_mode}' "
                          f"is not one of: {', '.join(modes)}")
    for name, value in (("trainer.train_steps", config.trainer.train_steps),
                        ("trainer.eval_steps", config.trainer.eval_steps),
                        ("trainer.batch_size", config.trainer.batch_size),
                        ("tuner.max_trials", config.tuner.max_trials)):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    _validate_task(config)
    _validate_monitor(config.monitor)
    _validate_kubeflow(config.kubeflow)


def _validate_timestamp(name: str, spec: FeatureSpec) -> None:
    if spec.type is not FeatureType.TIMESTAMP:
        if spec.format is not None:
            raise ConfigError(f"features.{name}.format is an option of type timestamp, not {spec.type.value}; "
                              "remove it")
        return
    if spec.format is not None and spec.format not in TIMESTAMP_FORMATS:
        raise ConfigError(f"features.{name}.format '{spec.format}' is not one of: {', '.join(TIMESTAMP_FORMATS)} "
                          "(epoch: seconds since 1970-01-01 UTC; iso: text such as 2019-03-01T14:05:00Z)")
    if spec.default is not None:
        raise ConfigError(f"features.{name}.default: a timestamp takes no default (a missing one gets a "
                          "'missing' category of its own in each part); remove it")


def _validate_crosses(config: PipelineConfig) -> None:
    """Each cross names two or more distinct categorical, bucketized or timestamp-part features."""
    features = config.features
    # A timestamp's parts are model inputs named NAME_PART (models/features.py timestamp_part_name).
    parts = {f"{name}_{part}": f"{name}.{part}" for name, spec in features.items()
             if spec.type is FeatureType.TIMESTAMP for part in TIMESTAMP_PARTS}
    for clash in parts.keys() & {*features, config.label.name}:
        raise ConfigError(f"'{clash}' names both a feature (or the label) and the model input of timestamp "
                          f"part {parts[clash]}; rename the feature or the label")
    taken = {*features, config.label.name, *parts}
    for i, cross in enumerate(config.crosses):
        where = f"crosses[{i}] ({' x '.join(cross.features) or 'no features'})"
        if len(cross.features) < 2:
            raise ConfigError(f"{where}: a cross needs at least two features; list two or more, "
                              "e.g. features: [payment_type, company]")
        for part in cross.features:
            if cross.features.count(part) > 1:
                raise ConfigError(f"{where}: '{part}' is listed twice; list each feature once")
            name, dot, sub = part.partition(".")
            spec = features.get(name)
            if spec is None:
                close = difflib.get_close_matches(name, features, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"features are: {', '.join(sorted(features))}"
                raise ConfigError(f"{where}: '{name}' is not a feature; {hint}")
            if spec.type is FeatureType.TIMESTAMP and sub not in TIMESTAMP_PARTS:
                raise ConfigError(f"{where}: '{part}' is a timestamp; cross one of its parts: "
                                  f"{', '.join(f'{name}.{p}' for p in TIMESTAMP_PARTS)}")
            if spec.type is not FeatureType.TIMESTAMP and dot:
                raise ConfigError(f"{where}: '{part}': only timestamp features have parts; write '{name}'")
            if spec.type is FeatureType.NUMERIC:
                raise ConfigError(f"{where}: '{name}' is a numeric feature, which has too many values to cross; "
                                  f"make it type: bucketized, or cross another feature")
        if cross.hash_buckets < 2:
            raise ConfigError(f"{where}: hash_buckets must be at least 2, got {cross.hash_buckets}")
        if cross.name in taken:
            raise ConfigError(f"{where}: the name '{cross.name}' is already taken by a feature, the label or "
                              "another cross; give the cross a name of its own (name: ...)")
        taken.add(cross.name)


def _validate_task(config: PipelineConfig) -> None:
    """The label, loss and thresholds options that fit `label.task`, and only those."""
    label, task = config.label, config.label.task
    binary_only = [name for name in ("positive_values", "greater_than_fraction_of") if getattr(label, name)]
    if task is not Task.BINARY and binary_only:
        raise ConfigError(f"label.{binary_only[0]} is an option of label.task binary, not {task.value}; remove it")
    if task is not Task.MULTICLASS and label.classes:
        raise ConfigError(f"label.classes is an option of label.task multiclass, not {task.value}; remove it")
    if task is not Task.REGRESSION and label.log_transform:
        raise ConfigError(f"label.log_transform is an option of label.task regression, not {task.value}; remove it")
    if len(set(label.classes)) != len(label.classes):
        twice = sorted({c for c in label.classes if label.classes.count(c) > 1})
        raise ConfigError(f"label.classes lists {', '.join(repr(c) for c in twice)} more than once")
    if label.other_classes not in LABEL_MISSING:
        raise ConfigError(f"label.other_classes '{label.other_classes}' is not one of: {', '.join(LABEL_MISSING)}")
    if label.other_classes != "error" and not label.classes:
        raise ConfigError("label.other_classes applies to label.classes (multiclass); list the classes or remove it")
    if task is Task.MULTICLASS and len(label.classes) == 1:
        raise ConfigError("label.classes needs at least 2 classes (or leave it out: the data's classes)")
    if task is Task.REGRESSION:
        if config.trainer.loss is not None and config.trainer.loss not in REGRESSION_LOSSES:
            raise ConfigError(f"trainer.loss '{config.trainer.loss}' is not one of: {', '.join(REGRESSION_LOSSES)}")
    elif config.trainer.loss is not None:
        raise ConfigError(f"trainer.loss is an option of label.task regression ({', '.join(REGRESSION_LOSSES)}); "
                          f"{task.value} trains with cross-entropy: remove it")
    ev = config.evaluator
    allowed = TASK_THRESHOLDS[task]
    for name in sorted(set().union(*TASK_THRESHOLDS.values()) - set(allowed)):
        if getattr(ev, name) is not None:
            raise ConfigError(f"evaluator.{name} does not apply to label.task {task.value}; "
                              f"its thresholds are: {', '.join(allowed)}")
    for name, value in ev.thresholds(task).items():
        if value < 0:
            raise ConfigError(f"evaluator.{name} must not be negative, got {value}")
        if name in ("min_auc", "min_accuracy", "min_macro_f1", "max_auc_decrease", "max_accuracy_decrease") \
                and value > 1:
            raise ConfigError(f"evaluator.{name} must lie between 0 and 1, got {value}")


def window_seconds(text: str, where: str = "monitor.window") -> float:
    """Seconds of a window written as 30m, 24h, 7d or 3600s."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = str(text).strip()[:-1], str(text).strip()[-1:]
    try:
        seconds = float(number) * units[unit]
    except (KeyError, ValueError):
        raise ConfigError(f"{where}: '{text}' is not a window; write a number and a unit "
                          "(s, m, h, d), e.g. 30m or 24h") from None
    if seconds <= 0:
        raise ConfigError(f"{where}: '{text}' must be longer than zero")
    return seconds


def _validate_monitor(mon: MonitorConfig) -> None:
    window_seconds(mon.window)
    for name in ("min_auc", "min_accuracy", "max_auc_drop", "max_error_ratio"):
        value = getattr(mon, name)
        if value is not None and not 0.0 <= value <= 1.0:
            raise ConfigError(f"monitor.{name} must lie between 0 and 1, got {value}")
    for name in ("categorical_threshold", "numeric_threshold"):
        value = getattr(mon, name)
        if value is not None and not 0.0 < value <= 1.0:
            raise ConfigError(f"monitor.{name} must lie in (0, 1]")
    if mon.min_labelled < 1:
        raise ConfigError(f"monitor.min_labelled must be at least 1, got {mon.min_labelled}")


_RESOURCE_KEYS = ("cpu_request", "cpu_limit", "memory_request", "memory_limit",
                  "accelerator_type", "accelerator_count")


PULL_POLICIES = ("Always", "IfNotPresent", "Never")
# KFP 2.x objectstore/config.go ParseBucketPathToConfig (mem:// is its tests' own).
OBJECT_STORE_SCHEMES = ("gs://", "s3://", "minio://")


def _validate_kubeflow(kf: KubeflowConfig) -> None:
    if not kf.pipeline_root.startswith(OBJECT_STORE_SCHEMES) or not kf.pipeline_root.split("://", 1)[1].strip("/"):
        raise ConfigError(f"kubeflow.pipeline_root '{kf.pipeline_root}' is not an object-store URI: Kubeflow "
                          "Pipelines 2.x accepts only gs://BUCKET/..., s3://BUCKET/... or minio://BUCKET/... "
                          "(a default install: minio://mlpipeline/v2/artifacts)")
    if kf.image_pull_policy not in PULL_POLICIES:
        raise ConfigError(f"kubeflow.image_pull_policy '{kf.image_pull_policy}': use one of {', '.join(PULL_POLICIES)}")
    for component, resources in kf.resources.items():
        if not isinstance(resources, Mapping):
            raise ConfigError(f"kubeflow.resources.{component}: expected a mapping of {', '.join(_RESOURCE_KEYS)}")
        for key in resources:
            if key not in _RESOURCE_KEYS:
                close = difflib.get_close_matches(str(key), _RESOURCE_KEYS, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"kubeflow.resources.{component}: unknown option '{key}'{hint}; "
                                  f"valid options are: {', '.join(_RESOURCE_KEYS)}")
    for env, ref in kf.secrets.items():
        if ref.count("/") != 1 or not all(ref.split("/")):
            raise ConfigError(f"kubeflow.secrets.{env}: '{ref}' is not of the form SECRET_NAME/KEY")
    if kf.pvc and not kf.mount_path.startswith("/"):
        raise ConfigError("kubeflow.mount_path must be an absolute path")
