"""End to end: our pipeline, the TFX taxi template's pipeline and a scikit-learn baseline.

Each pipeline runs in a subprocess of its own (fresh interpreter, as a user would start it),
so its wall time includes start-up and its memory is the peak of its whole process tree.
Per-component times come from the executions recorded in each run's ML Metadata store.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import sys
import time

from benchmarks import measure

TEMPLATE_PACKAGE = "tfx.experimental.templates.taxi"


@dataclasses.dataclass
class PipelineResult:
    name: str
    measured: measure.Measured
    windows: dict[str, tuple[float, float]]  # component id -> (start, end): ML Metadata timestamps
    auc: float | None
    examples: int | None  # rows the Evaluator scored
    output_dir: str
    log_path: str
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)  # the Evaluator's, test split

    @property
    def components(self) -> dict[str, float]:
        """Component id -> seconds it ran."""
        return {name: end - start for name, (start, end) in self.windows.items()}

    def peak_pss(self, component: str) -> int | None:
        """The largest PSS of the run's process tree sampled while `component` ran."""
        window = self.windows.get(component)
        return self.measured.peak_pss_between(*window) if window else None

    def cores(self, component: str) -> float | None:
        """The average number of cores the run's process tree kept busy while `component` ran."""
        window = self.windows.get(component)
        return self.measured.cores_between(*window) if window else None


def _mlmd(metadata_path: str, pipeline_name: str) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
    """(component id -> its time window, test metrics) of the newest run."""
    from ops.runs import runs as recorded_runs

    runs = recorded_runs(metadata_path, pipeline_name, limit=1)
    if not runs:
        return {}, {}
    run = runs[0]
    return {e.node_id: e.window for e in run.executions if e.window is not None}, run.metrics


def run_ours(
    name: str,
    data_path: str,
    output_dir: str,
    overrides: list[str] = (),
    variant: str = "none",
    config: str | None = None,
) -> PipelineResult:
    """`tfxp run` with the Tuner and the cache off, on fresh output directories.

    `variant` names a proposed change that benchmarks/variant.py applies in the subprocess;
    `config` a config file (default: the bundled taxi.yaml).
    """
    output_dir = os.path.abspath(output_dir)
    shutil.rmtree(output_dir, ignore_errors=True)
    os.makedirs(output_dir)
    sets = [
        f"output_dir={output_dir}",
        f"data.path={data_path}",
        "enable_cache=false",
        "tuner.enabled=false",
        *overrides,
    ]
    cmd = (
        [sys.executable, "-m", "tfxp", "run"]
        if variant == "none"
        else [sys.executable, "-m", "benchmarks.variant", variant]
    ) + [a for s in sets for a in ("--set", s)]
    if config:
        cmd += ["--config", config]
    log_path = os.path.join(output_dir, "bench.log")
    measured = measure.run(cmd, log_path=log_path)
    if measured.returncode:
        raise RuntimeError(f"{name} failed (exit {measured.returncode}); see {log_path}")
    from pipeline.config import load_config

    loaded = load_config(config, sets)
    windows, metrics = _mlmd(loaded.metadata_path, loaded.pipeline_name)
    count = metrics.get("example_count")
    return PipelineResult(
        name,
        measured,
        windows,
        metrics.get("auc"),
        int(count) if count is not None else None,
        output_dir,
        log_path,
        metrics,
    )


# ------------------------------------------------------------------- the taxi template

_TEMPLATE_RUNNER = '''\
"""Runs the copied TFX taxi template's pipeline with LocalDagRunner (written by benchmarks)."""
import sys

from tfx import v1 as tfx

from pipeline import configs, pipeline

root, data, metadata_path, serving = sys.argv[1:5]
tfx.orchestration.LocalDagRunner().run(pipeline.create_pipeline(
    pipeline_name=configs.PIPELINE_NAME, pipeline_root=root, data_path=data,
    preprocessing_fn=configs.PREPROCESSING_FN, run_fn=configs.RUN_FN,
    train_args=tfx.proto.TrainArgs(num_steps=configs.TRAIN_NUM_STEPS),
    eval_args=tfx.proto.EvalArgs(num_steps=configs.EVAL_NUM_STEPS),
    eval_accuracy_threshold=configs.EVAL_ACCURACY_THRESHOLD, serving_model_dir=serving,
    metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)))
'''


def prepare_template(dest: str, pipeline_name: str = "taxi-template") -> str:
    """Copies the template out of the installed tfx package and completes it.

    As shipped, the template's pipeline holds ExampleGen only: the tutorial's steps 5 and 6
    uncomment the other components. Here every `# components.append(...)` is enabled (its
    full pipeline), the pipeline gets a name, and AUC joins its Evaluator's metrics so its
    model can be compared with ours. Nothing else changes: its own steps, model and
    (default) Beam options.
    """
    import importlib.util

    source = os.path.dirname(importlib.util.find_spec(TEMPLATE_PACKAGE).origin)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*_test.py", "e2e_tests"))
    pipeline_py = os.path.join(dest, "pipeline", "pipeline.py")
    text = open(pipeline_py).read()
    enabled = text.replace("# components.append(", "components.append(")
    metrics_at = "metrics_specs=[\n          tfma.MetricsSpec(metrics=["
    if enabled.count("components.append(") < 8 or metrics_at not in enabled:
        raise RuntimeError(f"the template in {source} changed; update benchmarks/endtoend.py")
    enabled = enabled.replace(metrics_at, metrics_at + "\n              tfma.MetricConfig(class_name='AUC'),")
    open(pipeline_py, "w").write(enabled)
    configs_py = os.path.join(dest, "pipeline", "configs.py")
    configs = open(configs_py).read().replace("{{PIPELINE_NAME}}", pipeline_name)
    open(configs_py, "w").write(configs)
    open(os.path.join(dest, "run_template.py"), "w").write(_TEMPLATE_RUNNER)
    return dest


def run_template(data_dir: str, work_dir: str) -> PipelineResult:
    """The template's pipeline in a subprocess whose import path starts at the copy.

    The template's model code is named `models.*` and its pipeline `pipeline.*`, like this
    project's packages, so the copy comes first on PYTHONPATH (never on ours).
    """
    pipeline_name = "taxi-template"
    work_dir = os.path.abspath(work_dir)
    code = prepare_template(os.path.join(work_dir, "code"), pipeline_name)
    out = os.path.join(work_dir, "out")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    metadata_path = os.path.join(out, "metadata.sqlite")
    env = {**os.environ, "PYTHONPATH": code}
    cmd = [
        sys.executable,
        os.path.join(code, "run_template.py"),
        os.path.join(out, "root"),
        data_dir,
        metadata_path,
        os.path.join(out, "serving"),
    ]
    log_path = os.path.join(out, "bench.log")
    measured = measure.run(cmd, env=env, cwd=code, log_path=log_path)
    if measured.returncode:
        raise RuntimeError(f"the taxi template failed (exit {measured.returncode}); see {log_path}")
    windows, metrics = _mlmd(metadata_path, pipeline_name)
    # the template leaves its ExampleGen's id at the class name
    if "CsvExampleGen" in windows:
        windows["ExampleGen"] = windows.pop("CsvExampleGen")
    count = metrics.get("example_count")
    return PipelineResult(
        "TFX taxi template",
        measured,
        windows,
        metrics.get("auc"),
        int(count) if count is not None else None,
        out,
        log_path,
    )


# ------------------------------------------------------------------- scikit-learn

# The bundled config of each task, all on the taxi sample.
TASK_CONFIGS = {
    "binary": "package://pipeline/configs/taxi.yaml",
    "multiclass": "package://pipeline/configs/taxi_multiclass.yaml",
    "regression": "package://pipeline/configs/taxi_regression.yaml",
}
# Per task, the Evaluator's metrics the table shows: (column heading, TFMA metric name). The
# scikit-learn models get the same names, computed the same way (`task_metrics`).
TASK_METRICS = {
    "binary": [("test AUC", "auc")],
    "multiclass": [("accuracy", "accuracy"), ("macro F1", "macro_f1_score")],
    "regression": [("MAE", "mean_absolute_error"), ("RMSE", "root_mean_squared_error")],
}


@dataclasses.dataclass
class SklearnResult:
    name: str
    load_seconds: float
    fit_seconds: float
    metrics: dict[str, float]
    train_rows: int
    test_rows: int

    @property
    def auc(self) -> float | None:
        return self.metrics.get("auc")


def feature_columns(config) -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns of a config's features: bucketized ones are numbers here."""
    from pipeline.config import FeatureType

    numeric = [n for n, f in config.features.items() if f.type in (FeatureType.NUMERIC, FeatureType.BUCKETIZED)]
    return numeric, [n for n, f in config.features.items() if f.type is FeatureType.CATEGORICAL]


def timestamp_columns(config) -> dict[str, str]:
    """Timestamp feature -> its format ("iso" or "epoch")."""
    from pipeline.config import FeatureType

    stamps = {n: f for n, f in config.features.items() if f.type is FeatureType.TIMESTAMP}
    return {n: f.format.value if f.format else "epoch" for n, f in stamps.items()}


def timestamp_parts(values, fmt: str):
    """{part: a text per row} of a timestamp column as the pipeline splits it (models/derived.py
    timestamp_parts): hour of day (only where the value has a time), day of week (Monday 0) and
    month, UTC; "missing" where there is no valid value. Texts: categories, as the pipeline
    one-hots them. And "days": days since 1970 as a number (NaN where missing), as the pipeline's
    NAME_days_xf."""
    import pandas as pd

    if fmt == "iso":
        text = values.astype(str)
        when = pd.to_datetime(text.str.replace("/", "-", n=2), utc=True, format="ISO8601", errors="coerce")
        has_time = text.str.len() > 10
    else:
        when = pd.to_datetime(pd.to_numeric(values, errors="coerce"), unit="s", utc=True, errors="coerce")
        has_time = when.notna()

    def part(numbers, known):
        return numbers.where(known & when.notna()).map(lambda v: "missing" if pd.isna(v) else str(int(v)))

    return {
        "hour": part(when.dt.hour, has_time),
        "day_of_week": part(when.dt.dayofweek, when.notna()),
        "month": part(when.dt.month, when.notna()),
        "days": (when - pd.Timestamp(0, tz="UTC")).dt.total_seconds() / 86400,
    }


def read_split(examples_dir: str, split: str, columns: list[str], text: list[str]):
    """Columns of a split of ExampleGen's output (gzipped TFRecords of tf.Example) as a
    DataFrame; `text` columns as str (a missing value as "None"), the others as they are
    (numbers, or text decoded)."""
    import pandas as pd
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(examples_dir, f"Split-{split}", "*.gz")))
    if not files:
        raise FileNotFoundError(f"no Split-{split} files under {examples_dir}")
    values_of: dict[str, list] = {name: [] for name in columns}
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        features = tf.train.Example.FromString(record).features.feature
        for name, values in values_of.items():
            feature = features.get(name)
            kind = feature.WhichOneof("kind") if feature is not None else None
            value = list(getattr(feature, kind).value) if kind else []
            values.append(value[0] if value else None)
    frame = pd.DataFrame(values_of)
    for name in columns:
        if frame[name].map(lambda v: isinstance(v, bytes)).any():  # text, e.g. a yes/no label
            frame[name] = frame[name].map(lambda v: v.decode() if isinstance(v, bytes) else v)
    for name in text:
        frame[name] = frame[name].astype(str)
    return frame


def labels(frame, config):
    """The label the pipeline trains on (models/preprocessing.py): for binary the config's
    rule (missing tips or fare count as 0, as the taxi template counts them), for multiclass
    the class, for regression the number."""
    label = config.label
    if label.task.value == "multiclass":
        return frame[label.column]
    if label.task.value == "regression":
        return frame[label.column].astype(float)
    if label.greater_than_fraction_of:
        return (
            frame[label.column].fillna(0).astype(float)
            > label.fraction * frame[label.greater_than_fraction_of].fillna(0).astype(float)
        ).astype(int)
    if label.positive_values:  # compared as text: the config's values are texts, the column may hold numbers
        return frame[label.column].map(str).isin([str(v) for v in label.positive_values]).astype(int)
    return (frame[label.column].astype(float) > 0.5).astype(int)


def macro_f1_one_vs_rest(truth, probabilities, classes, threshold: float = 0.5) -> float:
    """TFMA's macro F1 as the Evaluator computes it: per class, one against the rest, a row is
    predicted as the class where its probability is above `threshold` (TFMA's default); F1 is
    2tp / (2tp + fp + fn) (NaN when that is 0/0, as TFMA's), averaged over `classes` with equal
    weights. `probabilities` has a column per class, in the order of `classes`."""
    import numpy as np

    truth = np.asarray(truth)
    probabilities = np.asarray(probabilities, dtype=float)
    scores = []
    for i, name in enumerate(classes):
        actual, predicted = truth == name, probabilities[:, i] > threshold
        tp, fp, fn = np.sum(actual & predicted), np.sum(~actual & predicted), np.sum(actual & ~predicted)
        scores.append(2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else float("nan"))
    return float(np.mean(scores))


def task_metrics(task: str, truth, predicted, classes=()) -> dict[str, float]:
    """The TASK_METRICS of one model's test predictions: binary the positive class's score,
    multiclass a probability per class (columns in the order of `classes`), regression values."""
    import numpy as np

    truth = np.asarray(truth)
    predicted = np.asarray(predicted, dtype=float)
    if task == "binary":
        from sklearn.metrics import roc_auc_score

        return {"auc": float(roc_auc_score(truth, predicted))}
    if task == "multiclass":
        best = np.asarray(classes, dtype=object)[np.argmax(predicted, axis=1)]
        return {
            "accuracy": float(np.mean(best == truth)),
            "macro_f1_score": macro_f1_one_vs_rest(truth, predicted, classes),
        }
    errors = predicted - truth.astype(float)
    return {
        "mean_absolute_error": float(np.mean(np.abs(errors))),
        "root_mean_squared_error": float(np.sqrt(np.mean(errors**2))),
    }


def _models(task: str, log_target: bool):
    """(name, estimator, dense input?): a linear model and gradient boosting for the task."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    if task != "regression":
        return [
            ("scikit-learn logistic regression", LogisticRegression(max_iter=1000), False),
            ("scikit-learn gradient boosting", HistGradientBoostingClassifier(random_state=0), True),
        ]
    import numpy as np

    def target(model):  # as the pipeline does with label.log_transform: fit log(1 + y), answer y
        return TransformedTargetRegressor(model, func=np.log1p, inverse_func=np.expm1) if log_target else model

    return [
        ("scikit-learn ridge regression", target(Ridge()), False),
        ("scikit-learn gradient boosting", target(HistGradientBoostingRegressor(random_state=0)), True),
    ]


def _preprocess(numeric: list[str], categorical: list[str], top_k: dict[str, int], dense: bool):
    """Impute and scale numbers; one-hot categories (values seen fewer than 5 times share one
    column); a categorical feature with `top_k` keeps its top_k most frequent values, the rest
    sharing one column, as its vocabulary in the pipeline does."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    def one_hot(**limit):
        return OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=not dense, **limit)

    plain = [c for c in categorical if c not in top_k]
    return ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("categorical", one_hot(), plain),
            *((f"top_k {c}", one_hot(max_categories=top_k[c] + 1), [c]) for c in categorical if c in top_k),
        ]
    )


def run_sklearn(examples_dir: str, config=None) -> list[SklearnResult]:
    """Impute, scale, one-hot; a linear model and gradient boosting for the config's task
    (default: the bundled binary taxi.yaml); the task's metrics on the test split.

    It trains on our pipeline's train split and scores its test split (the split the
    Evaluator scores), read from that run's ExampleGen output, with the config's features:
    numeric and bucketized ones as numbers, categorical ones one-hot (top_k as the config's),
    timestamps as their parts (hour, day of week, month), one-hot, as the pipeline splits them.
    """
    from sklearn.pipeline import Pipeline

    from pipeline.config import load_config

    config = config or load_config(None, [])
    task = config.label.task.value
    numeric, categorical = feature_columns(config)
    timestamps = timestamp_columns(config)
    top_k = {n: f.top_k for n, f in config.features.items() if n in categorical and f.top_k}
    sources = [config.label.column] + (
        [config.label.greater_than_fraction_of] if config.label.greater_than_fraction_of else []
    )
    columns = list(dict.fromkeys([*numeric, *categorical, *timestamps, *sources]))
    text = categorical + ([config.label.column] if task == "multiclass" else [])
    os.environ.setdefault("LOKY_MAX_CPU_COUNT", str(os.cpu_count()))  # joblib cannot count cores here
    started = time.monotonic()
    train, test = (read_split(examples_dir, split, columns, text) for split in ("train", "test"))
    for frame in (train, test):
        for name, fmt in timestamps.items():
            for part, values in timestamp_parts(frame[name], fmt).items():
                frame[f"{name}.{part}"] = values
    parts = [f"{name}.{part}" for name in timestamps for part in ("hour", "day_of_week", "month")]
    numeric = numeric + [f"{name}.days" for name in timestamps]
    load_seconds = time.monotonic() - started
    if task == "multiclass":  # the Evaluator's classes: the config's, else those seen in training
        classes = list(config.label.classes) or sorted(set(labels(train, config)))
    results = []
    for name, model, dense in _models(task, config.label.log_transform):
        started = time.monotonic()
        preprocess = _preprocess(numeric, categorical + parts, top_k, dense)
        fitted = Pipeline([("preprocess", preprocess), ("model", model)]).fit(train, labels(train, config))
        if task == "binary":
            predicted = fitted.predict_proba(test)[:, 1]
        elif task == "multiclass":  # a column per class of `classes`; 0 for one never seen in training
            import numpy as np

            seen = list(fitted.classes_)
            scores = fitted.predict_proba(test)
            predicted = np.stack(
                [scores[:, seen.index(c)] if c in seen else np.zeros(len(test)) for c in classes], axis=1
            )
        else:
            predicted = fitted.predict(test)
        metrics = task_metrics(task, labels(test, config), predicted, classes if task == "multiclass" else ())
        results.append(SklearnResult(name, load_seconds, time.monotonic() - started, metrics, len(train), len(test)))
    return results


def examples_dir(output_dir: str, pipeline_name: str = "taxi-big-tipper") -> str:
    found = sorted(glob.glob(os.path.join(output_dir, "pipelines", pipeline_name, "ExampleGen", "examples", "*")))
    if not found:
        raise FileNotFoundError(f"no ExampleGen output under {output_dir}")
    return found[-1]


# ------------------------------------------------------------------- the table

COMPONENT_ORDER = [
    "ExampleGen",
    "StatisticsGen",
    "SchemaGen",
    "ExampleValidator",
    "DriftCheck",
    "AnomaliesGate",
    "Transform",
    "Trainer",
    "ServingWarmup",
    "ServingBaseline",
    "latest_blessed_model_resolver",
    "Evaluator",
    "Pusher",
]


# The components that run Beam pipelines: where data, and so memory, grows with the rows.
BEAM_COMPONENTS = ["ExampleGen", "StatisticsGen", "Transform", "Evaluator"]


def gib(n: int | None) -> float | None:
    return None if n is None else n / 2**30


def _median_of(results: list[PipelineResult], get) -> float | None:
    values = [v for v in (get(r) for r in results) if v is not None]
    return measure.median(values) if values else None


def comparison_table(
    ours: list[PipelineResult], template: list[PipelineResult], sklearn: list[SklearnResult] = ()
) -> str:
    """One table: wall time, per-component seconds, start-up/orchestration, memory, AUC; and
    the scikit-learn baselines' AUC where given."""
    columns = [("ours", ours), ("TFX taxi template", template)]
    names = [n for n in COMPONENT_ORDER if any(n in r.components for _, rs in columns for r in rs)]
    names += sorted({n for _, rs in columns for r in rs for n in r.components} - set(names))
    rows = []

    def add(label, get, fmt=lambda v: f"{v:.1f}"):
        cells = [_median_of(rs, get) for _, rs in columns]
        rows.append([label] + [fmt(c) if c is not None else "-" for c in cells])

    add("wall time, s", lambda r: r.measured.seconds)
    rows.append(["  each run, s"] + [" ".join(f"{r.measured.seconds:.1f}" for r in rs) for _, rs in columns])
    for name in names:
        add(f"  {name}, s", lambda r, n=name: r.components.get(n))
    add("  outside components, s", lambda r: r.measured.seconds - sum(r.components.values()))
    add("peak PSS, process tree, GiB", lambda r: r.measured.peak_tree_pss / 2**30, lambda v: f"{v:.2f}")
    add("peak RSS, process tree, GiB", lambda r: r.measured.peak_tree_rss / 2**30, lambda v: f"{v:.2f}")
    add("peak RSS, one process, GiB", lambda r: r.measured.peak_process_rss / 2**30, lambda v: f"{v:.2f}")
    add("components run", lambda r: len(r.components), lambda v: f"{v:.0f}")
    add("test AUC (Evaluator)", lambda r: r.auc, lambda v: f"{v:.4f}")
    add("rows evaluated", lambda r: r.examples, lambda v: f"{v:.0f}")
    text = measure.table(["", *(c for c, _ in columns)], rows)
    if sklearn:
        base = [
            [s.name, f"{s.fit_seconds:.1f}", f"{s.load_seconds:.1f}", f"{s.auc:.4f}", s.train_rows, s.test_rows]
            for s in sklearn
        ]
        text += "\n\n" + measure.table(
            [
                "scikit-learn on our train/test split",
                "fit+predict, s",
                "read split, s",
                "test AUC",
                "train rows",
                "test rows",
            ],
            base,
        )
    return text


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def task_table(task: str, ours: list[PipelineResult], sklearn: list[SklearnResult]) -> str:
    """One task: our pipeline (the Evaluator's test metrics and the whole run's wall time,
    medians over the runs) beside each scikit-learn model (the same metrics on the same test
    split; its fit and predict time, and the time to read the splits)."""
    metrics = TASK_METRICS[task]
    header = [
        f"{task}: model",
        *(label for label, _ in metrics),
        "wall time, s",
        "read split, s",
        "train rows",
        "test rows",
    ]
    evaluated = _median_of(ours, lambda r: r.examples)
    rows = [
        [
            "ours (tfxp run; Evaluator)",
            *(_metric(_median_of(ours, lambda r, k=key: r.metrics.get(k))) for _, key in metrics),
            f"{_median_of(ours, lambda r: r.measured.seconds):.1f}",
            "-",
            sklearn[0].train_rows if sklearn else "-",
            "-" if evaluated is None else f"{evaluated:.0f}",
        ]
    ]
    for s in sklearn:
        rows.append(
            [
                s.name,
                *(_metric(s.metrics.get(key)) for _, key in metrics),
                f"{s.fit_seconds:.1f}",
                f"{s.load_seconds:.1f}",
                s.train_rows,
                s.test_rows,
            ]
        )
    return measure.table(header, rows)


def scale_table(results: list[tuple[int, float, PipelineResult]]) -> str:
    """Seconds and rows/s per component for each size; the ratio of the last two sizes."""
    names = [n for n in COMPONENT_ORDER if any(n in r.components for _, _, r in results)]
    header = [""]
    for rows, _, _ in results:
        header += [f"{rows} rows: s", "rows/s"]
    if len(results) >= 2:
        header.append(f"time {results[-1][0]}/{results[-2][0]}")
    body = []

    def add(label, seconds: list[float | None], throughput: bool = True, digits: int = 1):
        line = [label]
        for (rows, _, _), s in zip(results, seconds):
            line += ["-" if s is None else f"{s:.{digits}f}", f"{rows / s:.0f}" if throughput and s else ""]
        if len(results) >= 2:
            a, b = seconds[-1], seconds[-2]
            line.append(f"{a / b:.2f}" if a and b else "")
        body.append(line)

    add("data generation (-: reused)", [g for _, g, _ in results])
    add("wall time", [r.measured.seconds for _, _, r in results])
    for name in names:
        add(f"  {name}", [r.components.get(name) for _, _, r in results], throughput=name in BEAM_COMPONENTS)
    add("peak PSS tree, GiB", [r.measured.peak_tree_pss / 2**30 for _, _, r in results], False, 2)
    for name in BEAM_COMPONENTS:
        add(f"  during {name}", [gib(r.peak_pss(name)) for _, _, r in results], False, 2)
    for name in BEAM_COMPONENTS:  # CPU seconds over wall seconds
        add(f"cores busy during {name}", [r.cores(name) for _, _, r in results], False, 2)
    add("peak RSS tree, GiB", [r.measured.peak_tree_rss / 2**30 for _, _, r in results], False, 2)
    add("peak RSS one process, GiB", [r.measured.peak_process_rss / 2**30 for _, _, r in results], False, 2)
    text = measure.table(header, body)
    aucs = ", ".join(f"{rows}: {r.auc:.4f} on {r.examples} rows" for rows, _, r in results if r.auc is not None)
    return text + f"\ntest AUC (Evaluator): {aucs}"


def variants_table(results: dict[str, list[PipelineResult]]) -> str:
    names = list(results)
    components = [n for n in COMPONENT_ORDER if any(n in r.components for rs in results.values() for r in rs)]
    body = []

    def add(label, get, fmt=lambda v: f"{v:.1f}"):
        body.append(
            [label]
            + [fmt(_median_of(results[n], get)) if _median_of(results[n], get) is not None else "-" for n in names]
        )

    add("wall time, s", lambda r: r.measured.seconds)
    for name in components:
        add(f"  {name}, s", lambda r, n=name: r.components.get(n))
    add("peak PSS tree, GiB", lambda r: r.measured.peak_tree_pss / 2**30, lambda v: f"{v:.2f}")
    add("peak RSS tree, GiB", lambda r: r.measured.peak_tree_rss / 2**30, lambda v: f"{v:.2f}")
    add("test AUC", lambda r: r.auc, lambda v: f"{v:.4f}")
    body.append(["wall times, s"] + [" ".join(f"{r.measured.seconds:.0f}" for r in results[n]) for n in names])
    return measure.table(["", *names], body)
