"""The model card of a pushed version: what the run recorded about the model, for the people
who use it, as Markdown and as a self-contained HTML page (and the facts as JSON).

`gather` reads the facts from the run's artifacts (the examples' span, the statistics' row
counts per split, the schema, the Evaluator's TFMA results and thresholds, the Tuner's best
hyperparameters, the serving checks) plus what the config says (the task, the label, the
features, `model_card:` intended use, limitations and owners) and where the code came from;
`render_markdown` and `render_html` lay the same sections out. The Pusher
(components/atomic_pusher) writes all three into the version's assets.extra/ before the version
becomes visible, so every served version has its card and no card is half-written.

model-card-toolkit, the field's library for this, was archived in 2024 and does not install
with this stack (docs/serving.md#model-cards); the sections follow its schema's (model details,
data, quantitative analysis, considerations).
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import os
import subprocess
from typing import Any

from components.evaluator.gates import read_gates
from components.evaluator.results import applied_thresholds, class_names, eval_results, metric_values
from models.tasks import TASKS

CARD_VERSION = 1  # the JSON's layout


@dataclasses.dataclass
class RunRecord:
    """Where the run's artifacts are, as the Pusher's inputs name them (None: not in the run)."""

    model_name: str
    version: int
    pushed_at: str
    settings: dict[str, Any]  # the Pusher's custom_config "model_card": config and code facts
    model_dir: str  # the SavedModel pushed
    pipeline: str | None = None
    run_id: str | None = None
    span: int | None = None
    statistics: dict[str, str] = dataclasses.field(default_factory=dict)  # split -> FeatureStats.pb
    schema: str | None = None  # schema.pbtxt
    evaluation: str | None = None  # the Evaluator's ModelEvaluation directory
    blessed: bool | None = None
    baseline: str | None = None  # the newest served version at the push: the Evaluator's baseline
    hyperparameters: str | None = None  # the Tuner's best_hyperparameters.txt
    serving_checks: list[str] = dataclasses.field(default_factory=list)


def code_origin(source_dir: str) -> dict[str, str | None]:
    """The training code's version: the git commit of the checkout `source_dir` is in (with
    "-dirty" for uncommitted changes), None outside one (an image), and the package version."""
    import importlib.metadata

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", source_dir, *args], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit and git("status", "--porcelain", "--untracked-files=no"):
        commit += "-dirty"
    elif commit is None:
        commit = _head_commit(source_dir)  # no git program (the runtime's root has none)
    try:
        package = importlib.metadata.version("tfx-kfp-pipeline")
    except importlib.metadata.PackageNotFoundError:
        package = None
    return {"git_commit": commit, "package_version": package}


def _head_commit(source_dir: str) -> str | None:
    """HEAD's commit read from the .git directory above `source_dir` (a worktree's too), or None."""
    directory = os.path.abspath(source_dir)
    while not os.path.exists(os.path.join(directory, ".git")):
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent
    git_dir = os.path.join(directory, ".git")
    try:
        if os.path.isfile(git_dir):  # a worktree: "gitdir: <path>"
            with open(git_dir, encoding="utf-8") as f:
                git_dir = os.path.join(directory, f.read().split(":", 1)[1].strip())
        common = git_dir
        if os.path.isfile(os.path.join(git_dir, "commondir")):
            with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as f:
                common = os.path.join(git_dir, f.read().strip())
        with open(os.path.join(git_dir, "HEAD"), encoding="utf-8") as f:
            head = f.read().strip()
        if not head.startswith("ref: "):
            return head or None
        ref = head[len("ref: ") :]
        for base in (git_dir, common):
            if os.path.isfile(os.path.join(base, ref)):
                with open(os.path.join(base, ref), encoding="utf-8") as f:
                    return f.read().strip() or None
        with open(os.path.join(common, "packed-refs"), encoding="utf-8") as f:
            for line in f:
                if line.rstrip("\n").endswith(" " + ref):
                    return line.split(" ", 1)[0]
    except (OSError, IndexError):
        return None
    return None


def _split_rows(statistics: dict[str, str]) -> dict[str, int]:
    import tensorflow_data_validation as tfdv

    rows = {}
    for split, path in statistics.items():
        datasets = tfdv.load_stats_binary(path).datasets
        rows[split] = int(sum(d.num_examples for d in datasets))
    return rows


def _schema_features(path: str | None) -> list[dict[str, Any]]:
    if not path:
        return []
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = tfdv.load_schema_text(path)
    features = []
    for feature in schema.feature:
        entry = {"name": feature.name, "type": schema_pb2.FeatureType.Name(feature.type)}
        if feature.HasField("presence") and feature.presence.min_fraction:
            entry["min_fraction"] = feature.presence.min_fraction
        features.append(entry)
    return features


def _hyperparameters(path: str | None, trainer: dict[str, Any]) -> tuple[dict[str, Any], str]:
    if path and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f).get("values", {}), "the Tuner's best trial (KerasTuner)"
    return dict(trainer), "the trainer config (no Tuner in this run)"


def gather(record: RunRecord) -> dict[str, Any]:
    """The card's facts, as plain JSON-able data."""
    settings = record.settings
    spec = settings.get("model", {})
    task = spec.get("label", {}).get("task", "binary")
    label = spec.get("label", {})
    features_config = spec.get("features", {})
    schema = _schema_features(record.schema)
    for feature in schema:
        if feature["name"] == label.get("column"):
            feature["use"] = f"label ({label.get('name')})" if label.get("name") != label.get("column") else "label"
        elif feature["name"] in features_config:
            feature["use"] = features_config[feature["name"]].get("type", "feature")
        else:
            feature["use"] = "not a model input"
    metrics: dict[str, Any] = {"overall": {}, "slices": [], "baseline": None, "thresholds": []}
    if record.evaluation:
        result, base = eval_results(record.evaluation)
        for slice_key, by_output in result.slicing_metrics:
            values = metric_values(by_output)
            if not slice_key:
                metrics["overall"] = values
            else:
                name = ", ".join(f"{k}={v}" for k, v in slice_key)
                metrics["slices"].append({"slice": name, "metrics": values})
        metrics["slices"].sort(key=lambda s: s["slice"])
        if base is not None:
            metrics["baseline"] = next((metric_values(m) for k, m in base.slicing_metrics if not k), None)
        metrics["thresholds"] = applied_thresholds(result.config, read_gates(record.evaluation))
        metrics["gates"] = read_gates(record.evaluation)
    hyperparameters, source = _hyperparameters(record.hyperparameters, spec.get("trainer", {}))
    return {
        "card_version": CARD_VERSION,
        "model": record.model_name,
        "version": record.version,
        "pushed_at": record.pushed_at,
        "pipeline": record.pipeline,
        "run_id": record.run_id,
        "task": task,
        "label": label,
        "class_names": class_names(record.model_dir),
        "data": {
            "span": record.span,
            "rows": _split_rows(record.statistics),
        },
        "features": schema,
        "crosses": spec.get("crosses", []),
        "metrics": metrics,
        "blessed": record.blessed,
        # The served version, when the evaluation compared with one.
        "baseline": record.baseline if metrics["baseline"] is not None else None,
        "hyperparameters": hyperparameters,
        "hyperparameters_source": source,
        "serving_checks": record.serving_checks,
        "intended_use": settings.get("intended_use"),
        "limitations": list(settings.get("limitations", [])),
        "owners": list(settings.get("owners", [])),
        "code": {**settings.get("code", {}), "model_code_hash": settings.get("code_version")},
    }


def to_json(facts: dict[str, Any]) -> str:
    """The facts as strict JSON: a metric TFMA computed no value for (NaN) or an infinite one is null."""

    def plain(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return json.dumps(plain(facts), indent=1, sort_keys=True, allow_nan=False)


# --------------------------------------------------------------------------- layout


def _num(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _label_text(card: dict[str, Any]) -> str:
    label = card["label"]
    text = f"`{label.get('column', '?')}`"
    if card["task"] == "binary" and label.get("positive_values"):
        text += f", positive when one of {', '.join(map(str, label['positive_values']))}"
    elif card["task"] == "binary" and label.get("greater_than_fraction_of"):
        text += f", positive when above {label.get('fraction')} x `{label['greater_than_fraction_of']}`"
    elif card["task"] == "regression" and label.get("log_transform"):
        text += ", learnt as log(1 + y)"
    if card["class_names"]:
        text += f"; classes: {', '.join(card['class_names'])}"
    return text


def _shown_metrics(card: dict[str, Any]) -> list[str]:
    watched = [m for m in TASKS_SUMMARY.get(card["task"], ()) if m in card["metrics"]["overall"]]
    return watched or sorted(card["metrics"]["overall"])


TASKS_SUMMARY = {task.value: definition.summary_metrics for task, definition in TASKS.items()}


def _derived_limitations(card: dict[str, Any]) -> list[str]:
    """What the run itself says about the card's figures."""
    notes = []
    rows = card["data"]["rows"]
    test = rows.get("test")
    span = card["data"]["span"]
    where = f"span {span}" if span is not None else "the data"
    if test is not None:
        notes.append(
            f"The metrics are of the held-out test split of {where} ({test} rows), not of live "
            "traffic; `tfxp monitor` measures the served model on labelled traffic."
        )
    small = [s["slice"] for s in card["metrics"]["slices"] if s["metrics"].get("example_count", 1e9) < 100]
    if small:
        notes.append(f"Slices with fewer than 100 test rows have uncertain metrics: {', '.join(small[:10])}.")
    if card["baseline"] is None and card["metrics"]["baseline"] is None:
        notes.append(
            "Nothing was served before this model: it was judged by value thresholds only, not against a baseline."
        )
    return notes


def sections(card: dict[str, Any]) -> list[tuple[str, list[tuple]]]:
    """The card's sections: (title, blocks), a block one of ("p", text), ("list", items) or
    ("table", header, rows). Text may hold `code` spans."""
    code = card["code"]
    details = [
        (
            "p",
            f"Version {card['version']} of model `{card['model']}`, pushed {card['pushed_at']}"
            + (f" by run `{card['run_id']}` of pipeline `{card['pipeline']}`." if card["run_id"] else "."),
        ),
        (
            "list",
            [
                f"Task: {card['task']}; label {_label_text(card)}",
                f"Training code: git commit `{code.get('git_commit') or 'unknown (not run from a git checkout)'}`, "
                f"package tfx-kfp-pipeline {code.get('package_version') or 'unknown'}, "
                f"model code hash `{code.get('model_code_hash') or 'unknown'}`",
                f"Owners: {', '.join(card['owners']) or 'not stated (model_card.owners)'}",
            ],
        ),
    ]
    use = [("p", card["intended_use"] or "Not stated (model_card.intended_use).")]
    limitations = [*card["limitations"], *_derived_limitations(card)]
    rows = card["data"]["rows"]
    data = [
        ("p", f"Data span: {card['data']['span'] if card['data']['span'] is not None else 'unknown'}."),
        ("table", ["split", "rows"], [[split, rows[split]] for split in sorted(rows, key=_split_order)]),
    ]
    features = [
        (
            "table",
            ["feature", "schema type", "use"],
            [[f"`{f['name']}`", f["type"], f["use"]] for f in card["features"]],
        ),
    ]
    if card["crosses"]:
        features.append(("p", "Crosses: " + "; ".join(" x ".join(c.get("features", [])) for c in card["crosses"])))
    metrics = card["metrics"]
    shown = _shown_metrics(card)
    base = metrics["baseline"] or {}
    thresholds: dict[str, list[str]] = {}
    for t in metrics["thresholds"]:
        what = f"change {t['relation']} {t['bound']:+g}" if t["change"] else f"{t['relation']} {t['bound']:.4g}"
        thresholds.setdefault(t["metric"], []).append(f"{what} ({t['source']})")
    overall_rows = []
    for name in shown:
        value = metrics["overall"].get(name)
        row = [name, _num(value), "; ".join(thresholds.get(name, []))]
        if base:
            change = value - base[name] if value is not None and name in base and name != "example_count" else None
            shown_change = "" if change is None or math.isnan(change) else f"{change:+.4g}"
            row += [_num(base.get(name)), shown_change]
        overall_rows.append(row)
    for name in sorted(set(thresholds) - set(shown)):
        overall_rows.append(
            [name, _num(metrics["overall"].get(name)), "; ".join(thresholds[name])] + (["", ""] if base else [])
        )
    header = ["metric", "test split", "thresholds"] + (["baseline", "change"] if base else [])
    quantitative = [("table", header, overall_rows)]
    if card["baseline"]:
        quantitative.append(("p", f"Baseline: `{card['baseline']}`, the version served when the run started."))
    elif not base:
        quantitative.append(("p", "Baseline: none; nothing was served yet."))
    per_class = sorted(
        {k.split("/", 1)[1] for k in metrics["overall"] if "/classId:" in k}, key=lambda s: int(s.split(":")[1])
    )
    if per_class:
        names = card["class_names"]
        quantitative.append(
            (
                "table",
                ["class", "precision", "recall", "f1_score", "auc"],
                [
                    [
                        names[int(s.split(":")[1])] if int(s.split(":")[1]) < len(names) else s,
                        *[_num(metrics["overall"].get(f"{m}/{s}")) for m in ("precision", "recall", "f1_score", "auc")],
                    ]
                    for s in per_class
                ],
            )
        )
    if metrics["slices"]:
        quantitative.append(("p", f"Per slice ({len(metrics['slices'])} slices of the test split):"))
        quantitative.append(
            (
                "table",
                ["slice", *shown],
                [[s["slice"], *[_num(s["metrics"].get(m)) for m in shown]] for s in metrics["slices"]],
            )
        )
    verdict = "yes: every threshold passed" if card["blessed"] else ("no" if card["blessed"] is False else "unknown")
    quantitative.append(("p", f"Blessed by the Evaluator: {verdict}."))
    hyper = [
        ("p", f"From {card['hyperparameters_source']}:"),
        ("table", ["name", "value"], [[k, json.dumps(v)] for k, v in sorted(card["hyperparameters"].items())]),
    ]
    serving = [("list", card["serving_checks"] or ["no serving check recorded"])]
    return [
        ("Model details", details),
        ("Intended use", use),
        ("Limitations", [("list", limitations)] if limitations else [("p", "None stated.")]),
        ("Training data", data),
        ("Features and schema", features),
        ("Evaluation", quantitative),
        ("Hyperparameters", hyper),
        ("Serving check", serving),
    ]


def _split_order(split: str) -> tuple[int, str]:
    return ({"train": 0, "eval": 1, "test": 2}.get(split, 3), split)


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(card: dict[str, Any]) -> str:
    lines = [f"# Model card: {card['model']}, version {card['version']}", ""]
    for title, blocks in sections(card):
        lines += [f"## {title}", ""]
        for block in blocks:
            if block[0] == "p":
                lines += [block[1], ""]
            elif block[0] == "list":
                lines += [f"- {item}" for item in block[1]] + [""]
            else:
                _, header, rows = block
                lines.append("| " + " | ".join(map(_md_cell, header)) + " |")
                lines.append("|" + "---|" * len(header))
                lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]
                lines.append("")
    return "\n".join(lines)


def _inline(text: Any) -> str:
    """HTML of a text with `code` spans."""
    parts = html.escape(str(text)).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}"
    "th{background:#f4f4f4}code{background:#f4f4f4;padding:0 .2rem}"
)


def render_html(card: dict[str, Any]) -> str:
    title = f"Model card: {card['model']}, version {card['version']}"
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
    ]
    for heading, blocks in sections(card):
        out.append(f"<h2>{html.escape(heading)}</h2>")
        for block in blocks:
            if block[0] == "p":
                out.append(f"<p>{_inline(block[1])}</p>")
            elif block[0] == "list":
                out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block[1]) + "</ul>")
            else:
                _, header, rows = block
                head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
                body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in rows)
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    out.append("</body></html>\n")
    return "".join(out)
