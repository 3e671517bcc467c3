"""`tfxp report [RUN]`: one static HTML page per pipeline run, readable offline.

Everything is read back from ML Metadata and the run's artifacts: StatisticsGen's statistics
per split, ExampleValidator's anomalies (TFDV's own anomalies table), DriftCheck's drift and
skew distances per feature against their thresholds, the Evaluator's TFMA metrics overall and
per slice with the ROC curve and confusion matrix (inline SVG, from TFMA's
ConfusionMatrixPlot), the comparison with the baseline and why the model was blessed or
refused, the served versions with their lineage, and `tfxp monitor`'s results over time.

The page loads nothing: styles, the SVG plots and the one script (sortable tables) are inline.
TFDV's Facets view (`get_statistics_html`) is not inline: it loads the Facets web component
from a CDN (webcomponents.js and facets-jupyter.html, distributed from GitHub only), so it is
added with `--facets` alone, for readers who are online.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import json
import os
import time
from typing import Any

from components.evaluator.plots import binary_matrices as _matrices
from components.evaluator.plots import confusion_svg, roc_svg
from components.evaluator.results import class_names, eval_results, metric_values, validation_failures
from models.spec import Task
from models.tasks import TASKS, describe_gate
from ops.monitoring.monitor import PER_CLASS, class_label, per_class
from pipeline.config import ConfigError, PipelineConfig
from pipeline.metadata import OUTPUT_EVENTS, custom_property, open_store
from pipeline.preflight import column_headers

SPLITS = ("train", "eval", "test")
SECTIONS = ("summary", "statistics", "anomalies", "drift", "metrics", "baseline", "served", "live")

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 48px;color:#1d2330}
h1{font-size:22px;margin:20px 0 4px}
h2{font-size:18px;border-bottom:1px solid #d5d9e0;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin:18px 0 6px}table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #d5d9e0;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f1f3f6;cursor:pointer}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b3261e;font-weight:600}.ok{color:#1b6e3a}.muted{color:#667085}nav a{margin-right:12px}
svg{background:#fff}.plots{display:flex;gap:24px;flex-wrap:wrap}.dataframe{font-size:13px}
details{margin:8px 0}summary{cursor:pointer}
"""

# Sortable tables: a click on a header sorts its table by that column (numbers as numbers).
_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, _) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], index = th.cellIndex;
    var up = th.dataset.order !== 'up'; th.dataset.order = up ? 'up' : 'down';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[index].textContent, y = b.cells[index].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return up ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
document.body.dataset.ready = 'yes';
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _table(
    header: list[str], rows: list[list[Any]], numeric: set[int] | None = None, classes: list[str | None] | None = None
) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for r, row in enumerate(rows):
        cls = f' class="{classes[r]}"' if classes and classes[r] else ""
        cells = "".join(
            f'<td class="num">{_e(_num(v))}</td>' if i in numeric else f"<td>{_e(v)}</td>" for i, v in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


# ----------------------------------------------------------------------------- reading the run


@dataclasses.dataclass
class RunArtifacts:
    run_id: str
    started: float
    executions: list[tuple[str, str]]  # (component, state)
    uris: dict[str, list[str]]  # "<component>/<artifact type>" -> uris
    blessing: bool | None


def _run_artifacts(config: PipelineConfig, run_id: str | None) -> RunArtifacts:
    from pipeline.metadata import node_id

    store = open_store(config.metadata_path)
    contexts = sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.create_time_since_epoch)
    contexts = [c for c in contexts if store.get_executions_by_context(c.id)]
    if not contexts:
        raise ConfigError(f"no runs of '{config.pipeline_name}' recorded in {config.metadata_path}")
    if run_id is None:
        context = contexts[-1]
    else:
        chosen = [c for c in contexts if c.name == run_id]
        if not chosen:
            raise ConfigError(
                f"no run '{run_id}' in {config.metadata_path}; runs: "
                f"{', '.join(c.name for c in contexts[-5:])} (tfxp runs lists them)"
            )
        context = chosen[0]
    from pipeline.metadata import STATE_NAMES

    executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.create_time_since_epoch)
    names = {e.id: node_id(store, e, config.pipeline_name) for e in executions}
    uris: dict[str, list[str]] = {}
    blessing = None
    events = store.get_events_by_execution_ids([e.id for e in executions])
    outputs = [(ev.execution_id, ev.artifact_id) for ev in events if ev.type in OUTPUT_EVENTS]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([a for _, a in outputs])}
    for execution_id, artifact_id in outputs:
        artifact = artifacts[artifact_id]
        uris.setdefault(f"{names[execution_id]}/{artifact.type}", []).append(artifact.uri)
        if artifact.type == "ModelBlessing":
            blessing = bool(custom_property(artifact, "blessed"))
    return RunArtifacts(
        context.name,
        context.create_time_since_epoch / 1000.0,
        [(names[e.id], STATE_NAMES.get(e.last_known_state, "?")) for e in executions],
        uris,
        blessing,
    )


# ----------------------------------------------------------------------------- statistics


def _histogram_svg(buckets: list[tuple[str, float]], width: int = 220, height: int = 60) -> str:
    if not buckets:
        return ""
    top = max(c for _, c in buckets) or 1.0
    bar = width / len(buckets)
    rects = "".join(
        f'<rect x="{i * bar:.1f}" y="{height - c / top * height:.1f}" width="{max(bar - 1, 1):.1f}" '
        f'height="{c / top * height:.1f}" fill="#4e79a7"><title>{_e(label)}: {c:g}</title></rect>'
        for i, (label, c) in enumerate(buckets)
    )
    return f'<svg width="{width}" height="{height}" role="img">{rects}</svg>'


def _feature_rows(dataset, headers: dict[str, str] | None = None) -> list[list[str]]:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    rows = []
    total = dataset.num_examples or 1
    for feature in sorted(dataset.features, key=lambda f: ".".join(f.path.step)):
        name = ".".join(feature.path.step)
        name = (headers or {}).get(name, name)
        kind = statistics_pb2.FeatureNameStatistics.Type.Name(feature.type)
        if feature.HasField("num_stats"):
            s = feature.num_stats
            common = s.common_stats
            standard = [h for h in s.histograms if h.type == statistics_pb2.Histogram.STANDARD]
            buckets = [
                (f"{b.low_value:.4g} to {b.high_value:.4g}", b.sample_count)
                for b in (standard[0].buckets if standard else [])
            ]
            summary = (
                f"mean {s.mean:.4g}, std {s.std_dev:.4g}, min {s.min:.4g}, median {s.median:.4g}, "
                f"max {s.max:.4g}, zeros {100 * s.num_zeros / total:.1f}%"
            )
        elif feature.HasField("string_stats"):
            s = feature.string_stats
            common = s.common_stats
            buckets = [(b.label, b.sample_count) for b in s.rank_histogram.buckets[:20]]
            top = ", ".join(f"{v.value} ({v.frequency:g})" for v in s.top_values[:3])
            summary = f"{s.unique} unique; top: {top}"
        else:
            continue
        missing = 100.0 * common.num_missing / total
        rows.append([name, kind, f"{common.num_non_missing}", f"{missing:.1f}%", summary, _histogram_svg(buckets)])
    return rows


def _statistics_section(uris: list[str], facets: bool, headers: dict[str, str] | None = None) -> str:
    import tensorflow_data_validation as tfdv

    if not uris:
        return "<p class=muted>This run recorded no statistics (StatisticsGen did not run).</p>"
    parts = []
    loaded = {}
    for split in SPLITS:
        path = os.path.join(uris[-1], f"Split-{split}", "FeatureStats.pb")
        if not os.path.exists(path):
            continue
        stats = loaded[split] = tfdv.load_stats_binary(path)
        dataset = stats.datasets[0]
        rows = _feature_rows(dataset, headers)
        head = "".join(f"<th>{h}</th>" for h in ("feature", "type", "present", "missing", "summary", "histogram"))
        body = "".join(
            "<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row[:5]) + f"<td>{row[5]}</td></tr>" for row in rows
        )
        parts.append(
            f'<details id="statistics-{split}"{" open" if split == "train" else ""}><summary><b>split '
            f"{split}</b>: {dataset.num_examples} examples, {len(rows)} features</summary>"
            f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></details>'
        )
    if facets and "train" in loaded:
        from tensorflow_data_validation.utils.display_util import get_statistics_html

        other = loaded.get("eval")
        parts.append(
            "<h3>TFDV's Facets view (train against eval; loaded from the network)</h3>"
            + get_statistics_html(loaded["train"], other, lhs_name="train", rhs_name="eval")
        )
    parts.append(
        f"<p class=muted>From TFDV's statistics protos ({_e(uris[-1])}); the numbers of "
        "TFDV's Facets Overview, drawn here without its web component (which loads from a CDN; "
        "<code>tfxp report --facets</code> adds it for online readers).</p>"
    )
    return "".join(parts)


# ----------------------------------------------------------------------------- anomalies, drift


def _anomalies_section(uris: list[str], headers: dict[str, str] | None = None) -> str:
    from tensorflow_data_validation.utils.display_util import get_anomalies_dataframe
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    if not uris:
        return "<p class=muted>ExampleValidator did not run.</p>"
    parts = []
    for split in SPLITS:
        path = os.path.join(uris[-1], f"Split-{split}", "SchemaDiff.pb")
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            anomalies = anomalies_pb2.Anomalies.FromString(f.read())
        if anomalies.anomaly_info or anomalies.HasField("dataset_anomaly_info"):
            frame = get_anomalies_dataframe(anomalies)  # its index: each feature's name in quotes
            frame = frame.rename(index={f"'{key}'": f"'{name}'" for key, name in (headers or {}).items()})
            table = frame.to_html(classes="anomalies", border=0)
            parts.append(
                f'<h3>split {split}: <span class="bad">{len(anomalies.anomaly_info)} anomalies</span></h3>' + table
            )
        else:
            parts.append(f'<h3>split {split}: <span class="ok">no anomalies</span> against the schema</h3>')
    return "".join(parts)


def _distance_rows(anomalies, kinds=("drift", "skew"), headers: dict[str, str] | None = None) -> list[list[Any]]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    rows = []
    for info in anomalies.drift_skew_info:
        for kind in kinds:
            for m in info.drift_measurements if kind == "drift" else info.skew_measurements:
                name = ".".join(info.path.step)
                rows.append(
                    [
                        (headers or {}).get(name, name),
                        kind,
                        anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(m.type),
                        m.value,
                        m.threshold,
                        "above" if m.value > m.threshold else "ok",
                    ]
                )
    return sorted(rows, key=lambda r: (r[1], r[0]))


def _drift_section(uris: list[str], config: PipelineConfig, headers: dict[str, str] | None = None) -> str:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    if not uris:
        return "<p class=muted>DriftCheck did not run (drift.enabled is false).</p>"
    path = os.path.join(uris[-1], "Split-train", "SchemaDiff.pb")
    if not os.path.exists(path):
        return "<p class=muted>DriftCheck wrote no findings.</p>"
    with open(path, "rb") as f:
        anomalies = anomalies_pb2.Anomalies.FromString(f.read())
    rows = _distance_rows(anomalies, headers=headers)
    text = (
        f"<p>Train split against the last accepted span (drift) and against logged serving requests "
        f"(skew); thresholds: L-infinity {config.drift.categorical_threshold:g} for categories, "
        f"Jensen-Shannon {config.drift.numeric_threshold:g} for numbers.</p>"
    )
    if not rows:
        return text + (
            "<p class=muted>Nothing to compare with: the first span, and no logged requests "
            "(drift.serving_requests).</p>"
        )
    return text + _table(
        ["feature", "against", "measure", "distance", "threshold", ""],
        rows,
        {3, 4},
        ["bad" if r[5] == "above" else None for r in rows],
    )


# ----------------------------------------------------------------------------- TFMA


def candidate_class_names(model_uris: list[str]) -> list[str]:
    """The class names of the run's candidate (the Trainer's model): the model the metrics are
    of, pushed or refused ([] for a task without classes)."""
    if not model_uris:
        return []
    from tfx.utils import path_utils

    return class_names(path_utils.serving_model_path(model_uris[-1]))


def _watched(task: Task) -> tuple[str, ...]:
    """The metrics the report's tables show for a task: the task table's summary metrics."""
    return TASKS[task].summary_metrics


def _metrics_section(
    uris: list[str], task: Task, names: list[str], headers: dict[str, str] | None = None
) -> tuple[str, dict[str, float], dict[str, float] | None]:
    """The metrics section; the candidate's and the baseline's overall metrics. A multiclass
    evaluation adds a per-class table, each class by its name (`names`, the candidate's)."""

    if not uris:
        return "<p class=muted>The Evaluator did not run in this run.</p>", {}, None
    result, base = eval_results(uris[-1])
    watched = _watched(task)
    overall: dict[str, float] = {}
    rows = []
    for slice_key, by_output in result.slicing_metrics:
        values = metric_values(by_output)
        name = ", ".join(f"{(headers or {}).get(k, k)}={v}" for k, v in slice_key) if slice_key else "overall"
        if not slice_key:
            overall = values
        rows.append([name, *[values.get(m) for m in watched]])
    rows.sort(key=lambda r: (r[0] != "overall", r[0]))
    plots = {tuple(k): p for k, p in (result.plots or [])}
    matrices = _matrices(plots.get((), {}))
    baseline = None
    if base is not None:
        baseline = next((metric_values(m) for k, m in base.slicing_metrics if not k), None)
    figures = (
        f'<div class="plots"><figure>{roc_svg(matrices)}<figcaption>ROC, test split '
        f"(auc {overall.get('auc', float('nan')):.4g})</figcaption></figure>"
        f"<figure>{confusion_svg(matrices)}<figcaption>confusion matrix, test split</figcaption></figure></div>"
        if matrices
        else "<p class=muted>No plots in this evaluation (ConfusionMatrixPlot was not "
        "computed by this run's Evaluator).</p>"
    )
    numeric = set(range(1, len(watched) + 1))
    html_text = (
        "<h3>overall (test split)</h3>"
        + _table(["slice", *watched], rows[:1], numeric)
        + (figures if task is Task.BINARY else "")
        + _classes_table(overall, names, "test split")
        + f"<details><summary><b>per slice</b>: {len(rows) - 1} slices</summary>"
        + _table(["slice", *watched], rows[1:], numeric)
        + "</details>"
    )
    return html_text, overall, baseline


def _baseline_section(
    run: RunArtifacts, config: PipelineConfig, overall: dict[str, float], baseline: dict[str, float] | None
) -> str:
    from ops.runs import runs

    ev = config.evaluator
    evaluation = run.uris.get("Evaluator/ModelEvaluation", [])
    info = next(
        (r for r in runs(config.metadata_path, config.pipeline_name, limit=1000) if r.run_id == run.run_id), None
    )
    thresholds = ev.thresholds(config.label.task)
    listed = ", ".join(f"{name} {value:g}" for name, value in sorted(thresholds.items()))
    parts = [f"<p>Thresholds: {html.escape(listed or 'none')}.</p>"]
    for gate in info.gates if info is not None else []:
        relation = ">=" if gate["higher_is_better"] else "<="
        parts.append(
            f"<p>First-run gate: {_e(gate['metric'])} {relation} {gate['threshold']:.4g} "
            f"({_e(describe_gate(gate))}; evaluator.first_run_margin).</p>"
        )
    if baseline is not None:
        rows = [
            [
                m,
                overall.get(m),
                baseline.get(m),
                (overall.get(m, 0.0) - baseline.get(m, 0.0)) if m in overall and m in baseline else None,
            ]
            for m in _watched(config.label.task)
            if m != "example_count"
        ]
        parts.append(
            f"<p>Baseline: the model served when the run started ({_e(info.baseline if info else '')}).</p>"
            + _table(["metric", "candidate", "baseline", "change"], rows, {1, 2, 3})
        )
    else:
        parts.append("<p>Baseline: none; nothing was served yet, so only the value thresholds decided.</p>")
    if run.blessing is None:
        parts.append("<p class=muted>The Evaluator did not decide in this run.</p>")
    elif run.blessing:
        parts.append('<p class="ok">Blessed: every threshold passed.</p>')
    else:
        failures = validation_failures(evaluation[-1]) if evaluation else []
        parts.append('<p class="bad">Refused:</p><ul>' + "".join(f"<li>{_e(f)}</li>" for f in failures) + "</ul>")
    if info is not None and info.pushed_to:
        parts.append(f"<p>Pushed to {_e(info.pushed_to)}.</p>")
    elif info is not None and info.already_served:
        parts.append(f"<p>Not pushed: the same model is already served ({_e(info.already_served)}).</p>")
    else:
        parts.append("<p>Not pushed.</p>")
    return "".join(parts)


# ----------------------------------------------------------------------------- served, live


def _served_section(config: PipelineConfig) -> str:
    from contracts import model_config
    from contracts.serving_dir import served_versions
    from ops.lineage import lineage

    versions = served_versions(config.serving_dir) if os.path.isdir(config.serving_dir) else []
    if not versions:
        return "<p class=muted>Nothing is served yet.</p>"
    first = TASKS[config.label.task].live_metrics[0]
    labelled = os.path.exists(model_config.config_path(config.serving_dir))
    rows = []
    for version in reversed(versions):
        try:
            found = lineage(config.metadata_path, config.pipeline_name, config.serving_dir, version)
        except ConfigError as err:
            rows.append(
                [version, ", ".join(model_config.labels_of(config.serving_dir, version)), "", "", "", "", str(err)]
            )
            continue
        note = f"a rollback copy of {found.rolled_back_from}" if found.rolled_back_from else ""
        # With a model config the labels say what traffic gets; without one TF Serving serves the newest.
        if version == versions[-1] and not labelled:
            note = ("served now; " + note) if note else "served now"
        rows.append(
            [
                version,
                ", ".join(model_config.labels_of(config.serving_dir, version)),
                found.run_id or "",
                ", ".join(map(str, found.spans)) or "0",
                found.metrics.get(first.metric),
                json.dumps(found.hyperparameters, sort_keys=True),
                note,
            ]
        )
    header = ["version", "labels", "pushed by run", "data spans", f"test {first.title}", "hyperparameters", ""]
    return _table(header, rows, {4})


def _line_svg(
    series: list[tuple[float, float]],
    reference: float | None,
    name: str = "auc",
    share: bool = True,
    width: int = 520,
    height: int = 160,
) -> str:
    """A live metric over time with the version's test value; a share on 0 to 1, an error
    from 0 to a little above its highest value."""
    if not series:
        return ""
    t0, t1 = min(t for t, _ in series), max(t for t, _ in series)
    span = (t1 - t0) or 1.0
    top = 1.0 if share else 1.1 * max([v for _, v in series] + [reference or 0.0]) or 1.0

    def x(t: float) -> float:
        return 40 + (t - t0) / span * (width - 60)

    def y(v: float) -> float:
        return 10 + (1 - v / top) * (height - 30)

    path = " ".join(f"{'M' if i == 0 else 'L'}{x(t):.1f},{y(v):.1f}" for i, (t, v) in enumerate(series))
    dots = "".join(
        f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3" fill="#4e79a7"><title>{v:.4g}</title></circle>'
        for t, v in series
    )
    ref = (
        f'<line x1="40" x2="{width - 20}" y1="{y(reference):.1f}" y2="{y(reference):.1f}" stroke="#59a14f" '
        f'stroke-dasharray="5"/><text x="{width - 20}" y="{y(reference) - 4:.1f}" font-size="10" '
        f'text-anchor="end">test {_e(name)} {reference:.3g}</text>'
        if reference is not None
        else ""
    )
    axis = "".join(
        f'<text x="34" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{v:.3g}</text>' for v in (0.0, top / 2, top)
    )
    return (
        f'<svg class="live" width="{width}" height="{height}" role="img" aria-label="live {_e(name)} over time">'
        f'<rect x="40" y="10" width="{width - 60}" height="{height - 30}" fill="none" stroke="#d0d5dd"/>'
        f'{axis}{ref}<path d="{path}" fill="none" stroke="#4e79a7" stroke-width="2"/>{dots}</svg>'
    )


def _live_section(config: PipelineConfig) -> str:
    from ops.monitoring.monitor import history

    results = history(config)
    if not results:
        return "<p class=muted>No <code>tfxp monitor</code> results recorded yet.</p>"
    live = TASKS[config.label.task].live_metrics
    first = live[0]
    rows, series, reference = [], [], None
    for r in results:
        end = datetime.datetime.fromtimestamp(r["window"][1], datetime.timezone.utc)
        m = r.get("metrics") or {}
        verdict = "; ".join(r.get("findings") or []) or ("none" if r["requests"] else "no traffic in the window")
        rows.append(
            [f"{end:%Y-%m-%d %H:%M}", r["version"], r["requests"], r["labelled"], *[m.get(x.metric) for x in live]]
            + [verdict]
        )
        if first.metric in m:
            series.append((r["window"][1], m[first.metric]))
            reference = (r.get("test_metrics") or {}).get(first.metric, reference)
    classes = ["bad" if r.get("findings") else None for r in results]
    header = ["window end (UTC)", "version", "requests", "labelled", *[f"live {x.title}" for x in live]]
    page = _line_svg(series, reference, first.title, first.higher_is_better) + _table(
        [*header, "thresholds crossed"], rows, set(range(1, len(header))), classes
    )
    measured = [r for r in results if r.get("metrics")]
    return page + (_live_classes(measured[-1]) if measured else "")


def _live_classes(result: dict) -> str:
    """The newest measured window's per-class metrics (multiclass), each class by its name."""
    return _classes_table(result.get("metrics") or {}, result.get("class_names") or [], "newest measured window")


def _classes_table(metrics: dict[str, float], names: list[str], where: str) -> str:
    """Per-class metrics (`f1_score/classId:2`), each class by its name; "" without any."""
    indices = [i for i, _ in per_class(metrics, "f1_score")]
    if not indices:
        return ""
    rows = [
        [i, class_label(i, names).strip("'"), *[metrics.get(f"{name}/classId:{i}") for name in PER_CLASS]]
        for i in indices
    ]
    return f"<h3>per class, {_e(where)}</h3>" + _table(["class", "name", *PER_CLASS], rows, {2, 3, 4, 5})


# ----------------------------------------------------------------------------- the page


def render(config: PipelineConfig, run_id: str | None = None, facets: bool = False) -> tuple[str, str]:
    """The page for a run (default: the newest): (run id, HTML)."""
    run = _run_artifacts(config, run_id)
    states = ", ".join(f"{name} {state}" for name, state in run.executions)
    started = datetime.datetime.fromtimestamp(run.started, datetime.timezone.utc)
    blessed = {None: "not decided", True: "blessed", False: "refused"}[run.blessing]
    headers = column_headers(config)  # columns shown by their CSV header, not their feature key
    names = candidate_class_names(run.uris.get("Trainer/Model", []))
    metrics_html, overall, baseline = _metrics_section(
        run.uris.get("Evaluator/ModelEvaluation", []), config.label.task, names, headers
    )
    sections = {
        "summary": (
            "Run",
            f"<p>Run <b>{_e(run.run_id)}</b>, started {started:%Y-%m-%d %H:%M:%S} UTC, "
            f"pipeline {_e(config.pipeline_name)}, model {_e(config.model_name)}: <b>{blessed}</b>.</p>"
            f"<p class=muted>{_e(states)}</p>",
        ),
        "statistics": (
            "Statistics per split (TFDV)",
            _statistics_section(run.uris.get("StatisticsGen/ExampleStatistics", []), facets, headers),
        ),
        "anomalies": (
            "Anomalies against the schema (TFDV)",
            _anomalies_section(run.uris.get("ExampleValidator/ExampleAnomalies", []), headers),
        ),
        "drift": (
            "Drift and skew per feature (TFDV)",
            _drift_section(run.uris.get("DriftCheck/ExampleAnomalies", []), config, headers),
        ),
        "metrics": ("Model metrics (TFMA)", metrics_html),
        "baseline": ("Against the baseline: blessed or refused", _baseline_section(run, config, overall, baseline)),
        "served": ("Served versions and their lineage", _served_section(config)),
        "live": ("Live metrics (tfxp monitor)", _live_section(config)),
    }
    nav = "".join(f'<a href="#{key}">{_e(title.split(" (")[0])}</a>' for key, (title, _) in sections.items())
    body = "".join(
        f'<section id="{key}"><h2>{_e(title)}</h2>{content}</section>' for key, (title, content) in sections.items()
    )
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(config.pipeline_name)} '
        f"run {_e(run.run_id)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(config.pipeline_name)}: run {_e(run.run_id)}</h1><nav>{nav}</nav>{body}"
        f"<p class=muted>Written by tfxp report at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC.</p>"
        f"<script>{_SCRIPT}</script></body></html>"
    )
    return run.run_id, page


def report_path(config: PipelineConfig, run_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in run_id)
    return os.path.join(config.output_dir, "reports", f"{safe}.html")


def write(config: PipelineConfig, run_id: str | None = None, facets: bool = False) -> str:
    run, page = render(config, run_id, facets)
    path = report_path(config, run)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(partial, path)
    return path
