"""The zoo tier: our pipeline on public data sets, as a new user runs it, beside scikit-learn.

Each data set of benchmarks/zoo_data.py is written as a CSV in a directory outside the checkout
(under the system's temporary directory, as a user keeps data), then, from that directory,
`tfxp init DATA --label COLUMN --output config.yaml` and `tfxp run --config config.yaml` with no
edit: the default config a user gets, its Tuner as init writes it. The bundled taxi sample runs
as the quick tier runs it (the bundled taxi.yaml, Tuner and cache off): its label is a rule over
two columns, which init does not write.

scikit-learn's HistGradientBoosting (default settings) and a logistic or ridge regression then
train on that run's ExampleGen train split and score its test split, the split the Evaluator
scores, with the config's features (benchmarks/endtoend.py run_sklearn). Each metric with a
target gets it from the issue: AUC and accuracy at least gradient boosting's minus 0.01, MAE
and RMSE at most 1.10 times gradient boosting's.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from benchmarks import endtoend, measure, zoo_data

TAXI = "taxi"
# Small to big: flights, the largest, last.
SETS = (TAXI, "mortgage", "cars", "weather", "diamonds", "flights")
# Metric key -> (column heading, its target: ("min", slack) for at least gradient boosting's
# minus slack, ("max", factor) for at most factor times gradient boosting's, None for no target).
METRICS = {
    "auc": ("AUC", ("min", 0.01)),
    "accuracy": ("accuracy", ("min", 0.01)),
    "macro_f1_score": ("macro F1", None),
    "mean_absolute_error": ("MAE", ("max", 1.10)),
    "root_mean_squared_error": ("RMSE", ("max", 1.10)),
}
GRADIENT_BOOSTING = "scikit-learn gradient boosting"


def work_dir() -> pathlib.Path:
    return pathlib.Path(tempfile.gettempdir()) / "tfxp-bench-zoo"


def target(metric: str, gradient_boosting: float | None) -> tuple[str, float] | None:
    """(">=" or "<=", bound) for our metric, from gradient boosting's value; None without one."""
    rule = METRICS.get(metric, (None, None))[1]
    if rule is None or gradient_boosting is None:
        return None
    kind, amount = rule
    return (">=", gradient_boosting - amount) if kind == "min" else ("<=", gradient_boosting * amount)


def meets(metric: str, ours: float | None, gradient_boosting: float | None) -> bool | None:
    """Whether our value is within the target; None where there is no target or no value."""
    bound = target(metric, gradient_boosting)
    if bound is None or ours is None:
        return None
    return ours >= bound[1] if bound[0] == ">=" else ours <= bound[1]


@dataclasses.dataclass
class ZooResult:
    name: str
    rows: int  # rows in the CSV
    task: str
    ours: endtoend.PipelineResult | None = None
    sklearn: list[endtoend.SklearnResult] = dataclasses.field(default_factory=list)
    error: str = ""  # one line: what failed
    model: str = ""  # what the Trainer exported (trainer.model's choice record): dnn or gbt
    reruns: list[dict] = dataclasses.field(default_factory=list)  # test metrics of each fresh rerun

    def same_on_reruns(self) -> bool | None:
        """Whether every rerun gave exactly the first run's test metrics; None without reruns."""
        if not self.reruns or self.ours is None:
            return None
        return all(_same(metrics, self.ours.metrics) for metrics in self.reruns)


def _same(a: dict, b: dict) -> bool:
    """The same metrics, bit for bit; NaN (a class never predicted: its precision) equals NaN."""
    import math

    def bits(value):
        return "nan" if isinstance(value, float) and math.isnan(value) else value

    return a.keys() == b.keys() and all(bits(a[k]) == bits(b[k]) for k in a)


def _rows(path: pathlib.Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f) - 1


def _output(directory: pathlib.Path, run: int) -> pathlib.Path:
    """The first run's output directory, and a fresh one for each rerun."""
    return directory / ("output" if run == 0 else f"output-rerun{run}")


def _trained_model(output_dir: str) -> str:
    """What the run's Trainer exported, from its choice record (dnn or gbt); "" if none."""
    import glob

    from ops.runs import trainer_choice

    models = sorted(glob.glob(os.path.join(output_dir, "pipelines", "*", "Trainer", "model", "*", "Format-Serving")))
    return trainer_choice(models[-1]).get("model", "") if models else ""


def _tfxp_run(
    name: str, directory: pathlib.Path, config_path: str, sets: list[str], run: int = 0
) -> endtoend.PipelineResult:
    """`tfxp run --config config.yaml [--set ...]` from `directory`, on a fresh output directory."""
    from pipeline.config import load_config

    config = load_config(config_path, [f"output_dir={_output(directory, run)}", *sets])
    shutil.rmtree(config.output_dir, ignore_errors=True)
    log_path = str(directory / ("run.log" if run == 0 else f"run-rerun{run}.log"))
    # init's config names its own output directory: a rerun must be told its fresh one, or it
    # reruns in the first run's directory from its cache.
    cmd = [sys.executable, "-m", "tfxp", "run", "--config", os.path.basename(config_path)]
    cmd += ["--set", f"output_dir={config.output_dir}"]
    measured = measure.run(cmd + [a for s in sets for a in ("--set", s)], cwd=str(directory), log_path=log_path)
    if measured.returncode:
        raise RuntimeError(f"tfxp run exited {measured.returncode}: {_last_line(log_path)} (log {log_path})")
    windows, metrics = endtoend._mlmd(config.metadata_path, config.pipeline_name)
    count = metrics.get("example_count")
    return endtoend.PipelineResult(
        name,
        measured,
        windows,
        metrics.get("auc"),
        int(count) if count is not None else None,
        config.output_dir,
        log_path,
        metrics,
    )


def _last_line(path: str) -> str:
    """The run's last `error:` line (tfxp's one-line errors), else its last line."""
    with open(path, errors="replace") as f:
        lines = [line.strip() for line in f if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["no output"])[-1]


def run_one(name: str, sets: list[str], work: pathlib.Path, repeats: int = 1) -> ZooResult:
    """One data set: init (not for taxi), run (`repeats` times, each on a fresh output
    directory), scikit-learn on the first run's split."""
    from pipeline.config import ConfigError, load_config, resolve_path

    if name == TAXI:
        config_path = endtoend.TASK_CONFIGS["binary"]
        data = resolve_path("package://tfx/examples/chicago_taxi_pipeline/data/simple")
        result = ZooResult(name, _rows(pathlib.Path(data) / "data.csv"), "binary")
        try:
            result.ours = endtoend.run_ours(name, data, str(_output(work / name, 0)), sets, config=config_path)
            for run in range(1, repeats):
                again = endtoend.run_ours(name, data, str(_output(work / name, run)), sets, config=config_path)
                result.reruns.append(again.metrics)
        except (RuntimeError, ConfigError) as e:
            result.error = str(e)
            return result
        config = load_config(config_path, [f"data.path={data}", f"output_dir={result.ours.output_dir}", *sets])
    else:
        data_set = zoo_data.DATA_SETS[name]
        directory = work / name
        csv_path = zoo_data.write_csv(data_set, zoo_data.fetch(data_set), directory)
        result = ZooResult(name, _rows(csv_path), data_set.task)
        init = subprocess.run(
            [sys.executable, "-m", "tfxp", "init", csv_path.name, "--label", data_set.label, "--output", "config.yaml"],
            cwd=directory,
            capture_output=True,
            text=True,
        )
        if init.returncode:
            result.error = f"tfxp init exited {init.returncode}: {(init.stderr or init.stdout).strip()}"
            return result
        config_path = str(directory / "config.yaml")
        try:
            result.ours = _tfxp_run(name, directory, config_path, sets)
            for run in range(1, repeats):
                result.reruns.append(_tfxp_run(name, directory, config_path, sets, run).metrics)
        except (RuntimeError, ConfigError) as e:
            result.error = str(e)
            return result
        config = load_config(config_path, [f"output_dir={result.ours.output_dir}", *sets])
    result.task = config.label.task.value
    result.model = _trained_model(result.ours.output_dir)
    examples = endtoend.examples_dir(result.ours.output_dir, config.pipeline_name)
    result.sklearn = endtoend.run_sklearn(examples, config)
    return result


def run(names: list[str], sets: list[str], work: pathlib.Path | None = None, repeats: int = 1) -> list[ZooResult]:
    """Each named data set in turn, one pipeline at a time."""
    work = work or work_dir()
    return [run_one(name, sets, work, repeats) for name in names]


def _value(value: float | None) -> str:
    """Four decimals below 10 (AUC, accuracy, small errors), fewer above (errors in dollars)."""
    if value is None:
        return "-"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}" if abs(value) < 1000 else f"{value:.1f}"


def table(results: list[ZooResult]) -> str:
    """A row per data set and metric: the model ours exported, ours, gradient boosting, the
    linear model, the target, met or not, whether fresh reruns gave the same metrics, and each
    one's wall time (ours: the whole first `tfxp run`; scikit-learn: fit and predict)."""
    header = [
        "data set",
        "rows",
        "task",
        "metric",
        "model",
        "ours",
        "gradient boosting",
        "linear",
        "target",
        "met",
        "same on rerun",
        "ours, s",
        "boosting, s",
        "linear, s",
        "train/test rows",
    ]
    body = []
    for r in results:
        if r.error or r.ours is None:
            body.append([r.name, r.rows, r.task, "-", "-", "failed (below)"] + [""] * (len(header) - 6))
            continue
        boosting = next((s for s in r.sklearn if s.name == GRADIENT_BOOSTING), None)
        linear = next((s for s in r.sklearn if s.name != GRADIENT_BOOSTING), None)
        same = r.same_on_reruns()
        for _, key in endtoend.TASK_METRICS[r.task]:
            ours = r.ours.metrics.get(key)
            gb = boosting.metrics.get(key) if boosting else None
            bound = target(key, gb)
            ok = meets(key, ours, gb)
            body.append(
                [
                    r.name,
                    r.rows,
                    r.task,
                    METRICS[key][0],
                    r.model or "-",
                    _value(ours),
                    _value(gb),
                    _value(linear.metrics.get(key) if linear else None),
                    "-" if bound is None else f"{bound[0]} {_value(bound[1])}",
                    "-" if ok is None else "yes" if ok else "NO",
                    "-" if same is None else "yes" if same else "NO",
                    f"{r.ours.measured.seconds:.1f}",
                    f"{boosting.fit_seconds:.1f}" if boosting else "-",
                    f"{linear.fit_seconds:.1f}" if linear else "-",
                    f"{boosting.train_rows}/{boosting.test_rows}" if boosting else "-",
                ]
            )
    checked = [meets(k, r.ours.metrics.get(k), b.metrics.get(k)) for r, k, b in _targeted(results)]
    met = sum(1 for c in checked if c)
    failures = "".join(f"\n{r.name} failed: {r.error}" for r in results if r.error or r.ours is None)
    return measure.table(header, body) + f"\ntargets met: {met} of {len(checked)}" + failures


def _targeted(results: list[ZooResult]):
    """(result, metric key, gradient boosting's result) for every metric that has a target."""
    for r in results:
        boosting = next((s for s in r.sklearn if s.name == GRADIENT_BOOSTING), None)
        if r.ours is None or boosting is None:
            continue
        for _, key in endtoend.TASK_METRICS[r.task]:
            if METRICS[key][1] is not None:
                yield r, key, boosting


def sources(names: list[str]) -> str:
    """A line per data set: the package it came from, the package's licence, where the data
    come from; read from the cached archive."""
    lines = []
    for name in names:
        if name == TAXI:
            lines.append(f"{TAXI}: the bundled sample (tfx's chicago_taxi_pipeline data), the bundled taxi.yaml")
            continue
        d = zoo_data.DATA_SETS[name]
        archive = zoo_data.fetch(d)
        lines.append(
            f"{name}: {d.title}; {d.requirement} {d.kind} ({archive.name}, licence {zoo_data.licence(archive)}); "
            f"data: {d.data_licence}; label {d.label}"
        )
    return "\n".join(lines)


def all_met(results: list[ZooResult]) -> bool:
    """Every data set ran, every metric with a target met it, and reruns (if any) agreed."""
    if any(r.error or r.ours is None or r.same_on_reruns() is False for r in results):
        return False
    return all(meets(k, r.ours.metrics.get(k), b.metrics.get(k)) for r, k, b in _targeted(results))
