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
    examples: int | None           # rows the Evaluator scored
    output_dir: str
    log_path: str

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


def run_ours(name: str, data_path: str, output_dir: str, overrides: list[str] = (),
             variant: str = "none") -> PipelineResult:
    """`tfxp run` with the Tuner and the cache off, on fresh output directories.

    `variant` names a proposed change that benchmarks/variant.py applies in the subprocess.
    """
    output_dir = os.path.abspath(output_dir)
    shutil.rmtree(output_dir, ignore_errors=True)
    os.makedirs(output_dir)
    sets = [f"output_dir={output_dir}", f"data.path={data_path}", "enable_cache=false",
            "tuner.enabled=false", *overrides]
    cmd = ([sys.executable, "-m", "pipeline", "run"] if variant == "none" else
           [sys.executable, "-m", "benchmarks.variant", variant]) + [a for s in sets for a in ("--set", s)]
    log_path = os.path.join(output_dir, "bench.log")
    measured = measure.run(cmd, log_path=log_path)
    if measured.returncode:
        raise RuntimeError(f"{name} failed (exit {measured.returncode}); see {log_path}")
    from pipeline.config import load_config

    config = load_config(None, sets)
    windows, metrics = _mlmd(config.metadata_path, config.pipeline_name)
    count = metrics.get("example_count")
    return PipelineResult(name, measured, windows, metrics.get("auc"),
                          int(count) if count is not None else None, output_dir, log_path)


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
    cmd = [sys.executable, os.path.join(code, "run_template.py"), os.path.join(out, "root"),
           data_dir, metadata_path, os.path.join(out, "serving")]
    log_path = os.path.join(out, "bench.log")
    measured = measure.run(cmd, env=env, cwd=code, log_path=log_path)
    if measured.returncode:
        raise RuntimeError(f"the taxi template failed (exit {measured.returncode}); see {log_path}")
    windows, metrics = _mlmd(metadata_path, pipeline_name)
    # the template leaves its ExampleGen's id at the class name
    if "CsvExampleGen" in windows:
        windows["ExampleGen"] = windows.pop("CsvExampleGen")
    count = metrics.get("example_count")
    return PipelineResult("TFX taxi template", measured, windows, metrics.get("auc"),
                          int(count) if count is not None else None, out, log_path)


# ------------------------------------------------------------------- scikit-learn

NUMERIC = ["trip_miles", "fare", "trip_seconds", "pickup_latitude", "pickup_longitude",
           "dropoff_latitude", "dropoff_longitude"]
CATEGORICAL = ["payment_type", "company", "trip_start_hour", "trip_start_day", "trip_start_month",
               "pickup_community_area", "dropoff_community_area"]


@dataclasses.dataclass
class SklearnResult:
    name: str
    load_seconds: float
    fit_seconds: float
    auc: float
    train_rows: int
    test_rows: int


def read_split(examples_dir: str, split: str):
    """A split of ExampleGen's output (gzipped TFRecords of tf.Example) as a DataFrame."""
    import pandas as pd
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(examples_dir, f"Split-{split}", "*.gz")))
    if not files:
        raise FileNotFoundError(f"no Split-{split} files under {examples_dir}")
    columns: dict[str, list] = {name: [] for name in NUMERIC + CATEGORICAL + ["tips"]}
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        features = tf.train.Example.FromString(record).features.feature
        for name, values in columns.items():
            feature = features.get(name)
            kind = feature.WhichOneof("kind") if feature is not None else None
            value = list(getattr(feature, kind).value) if kind else []
            values.append(value[0] if value else None)
    frame = pd.DataFrame(columns)
    for name in CATEGORICAL:
        frame[name] = frame[name].map(lambda v: v.decode() if isinstance(v, bytes) else v).astype(str)
    return frame


def labels(frame):
    """The pipeline's label: tips above 20% of the fare (missing tips or fare count as 0)."""
    return (frame["tips"].fillna(0).astype(float) > 0.2 * frame["fare"].fillna(0).astype(float)).astype(int)


def run_sklearn(examples_dir: str) -> list[SklearnResult]:
    """Impute, scale, one-hot; logistic regression and gradient boosting; AUC on test.

    It trains on our pipeline's train split and scores its test split (the split the
    Evaluator scores), read from that run's ExampleGen output.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    os.environ.setdefault("LOKY_MAX_CPU_COUNT", str(os.cpu_count()))  # joblib cannot count cores here
    started = time.monotonic()
    train, test = read_split(examples_dir, "train"), read_split(examples_dir, "test")
    load_seconds = time.monotonic() - started
    results = []
    for name, model, dense in (
            ("scikit-learn logistic regression", LogisticRegression(max_iter=1000), False),
            ("scikit-learn gradient boosting", HistGradientBoostingClassifier(random_state=0), True)):
        preprocess = ColumnTransformer([
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore", min_frequency=5,
                                          sparse_output=not dense), CATEGORICAL)])
        started = time.monotonic()
        fitted = Pipeline([("preprocess", preprocess), ("model", model)]).fit(train, labels(train))
        auc = roc_auc_score(labels(test), fitted.predict_proba(test)[:, 1])
        results.append(SklearnResult(name, load_seconds, time.monotonic() - started, float(auc),
                                     len(train), len(test)))
    return results


def examples_dir(output_dir: str, pipeline_name: str = "taxi-big-tipper") -> str:
    found = sorted(glob.glob(os.path.join(output_dir, "pipelines", pipeline_name, "ExampleGen", "examples", "*")))
    if not found:
        raise FileNotFoundError(f"no ExampleGen output under {output_dir}")
    return found[-1]


# ------------------------------------------------------------------- the table

COMPONENT_ORDER = ["ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "DriftCheck", "AnomaliesGate",
                   "Transform", "Trainer", "ServingWarmup", "ServingBaseline",
                   "latest_blessed_model_resolver", "Evaluator", "Pusher"]


# The components that run Beam pipelines: where data, and so memory, grows with the rows.
BEAM_COMPONENTS = ["ExampleGen", "StatisticsGen", "Transform", "Evaluator"]


def gib(n: int | None) -> float | None:
    return None if n is None else n / 2**30


def _median_of(results: list[PipelineResult], get) -> float | None:
    values = [v for v in (get(r) for r in results) if v is not None]
    return measure.median(values) if values else None


def comparison_table(ours: list[PipelineResult], template: list[PipelineResult],
                     sklearn: list[SklearnResult]) -> str:
    """One table: wall time, per-component seconds, start-up/orchestration, memory, AUC."""
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
    base = [[s.name, f"{s.fit_seconds:.1f}", f"{s.load_seconds:.1f}", f"{s.auc:.4f}", s.train_rows, s.test_rows]
            for s in sklearn]
    text += "\n\n" + measure.table(["scikit-learn on our train/test split", "fit+predict, s",
                                    "read split, s", "test AUC", "train rows", "test rows"], base)
    return text


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
            line += ["-" if s is None else f"{s:.{digits}f}",
                     f"{rows / s:.0f}" if throughput and s else ""]
        if len(results) >= 2:
            a, b = seconds[-1], seconds[-2]
            line.append(f"{a / b:.2f}" if a and b else "")
        body.append(line)

    add("data generation (-: reused)", [g for _, g, _ in results])
    add("wall time", [r.measured.seconds for _, _, r in results])
    for name in names:
        add(f"  {name}", [r.components.get(name) for _, _, r in results],
            throughput=name in BEAM_COMPONENTS)
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
        body.append([label] + [fmt(_median_of(results[n], get)) if _median_of(results[n], get) is not None
                               else "-" for n in names])

    add("wall time, s", lambda r: r.measured.seconds)
    for name in components:
        add(f"  {name}, s", lambda r, n=name: r.components.get(n))
    add("peak PSS tree, GiB", lambda r: r.measured.peak_tree_pss / 2**30, lambda v: f"{v:.2f}")
    add("peak RSS tree, GiB", lambda r: r.measured.peak_tree_rss / 2**30, lambda v: f"{v:.2f}")
    add("test AUC", lambda r: r.auc, lambda v: f"{v:.4f}")
    body.append(["wall times, s"] + [" ".join(f"{r.measured.seconds:.0f}" for r in results[n]) for n in names])
    return measure.table(["", *names], body)
