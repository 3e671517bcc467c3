"""What the run page's four artifacts hold, as plain functions of the run's evaluation and push.

The shapes are kfp's (kfp.dsl.types.artifact_types): `Metrics.log_metric` makes one custom
property per metric; `ClassificationMetrics.log_roc_curve` a `confidenceMetrics` list of
{confidenceThreshold, falsePositiveRate, recall}, `log_confusion_matrix` a `confusionMatrix` of
{annotationSpecs: [{displayName}], rows: [{row: [...]}]}, a row per actual class; KFP's UI
checks those shapes before it draws them (MetricsVisualizations.tsx, ROCCurveHelper.tsx).
"""

from __future__ import annotations

import html
import math
import os
from typing import Any

from components.evaluator.plots import binary_matrices, confusion_svg, roc_svg


def content_path(uri: str, filename: str) -> str:
    """Where an HTML or Markdown artifact's text goes. KFP's UI reads the object at the
    artifact's URI, so under KFP's launcher (which creates no output directory) the text is the
    URI itself; TFX's local launcher makes every output URI a directory first, and there the
    text is a file inside it."""
    return os.path.join(uri, filename) if os.path.isdir(uri) else uri


def scalar_metrics(overall: dict[str, float]) -> dict[str, float]:
    """The test split's overall metrics KFP can record: finite numbers (ML Metadata's custom
    properties travel as JSON, which has no NaN)."""
    return {name: float(value) for name, value in sorted(overall.items()) if math.isfinite(value)}


def confidence_metrics(matrices: list[dict]) -> list[dict[str, float]]:
    """The ROC curve of TFMA's binary confusion matrices at thresholds, in kfp's shape."""
    points = []
    for m in matrices:
        tp, fp = m.get("truePositives", 0.0), m.get("falsePositives", 0.0)
        tn, fn = m.get("trueNegatives", 0.0), m.get("falseNegatives", 0.0)
        if tp + fn and fp + tn:
            points.append(
                {
                    "confidenceThreshold": float(m.get("threshold", 0.0)),
                    "falsePositiveRate": fp / (fp + tn),
                    "recall": tp / (tp + fn),
                }
            )
    return points


def binary_confusion_matrix(matrices: list[dict], names: list[str], threshold: float = 0.5) -> dict[str, Any] | None:
    """The confusion matrix at the threshold nearest `threshold`: rows actual, columns predicted."""
    if not matrices:
        return None
    m = min(matrices, key=lambda m: abs(m.get("threshold", 0.0) - threshold))
    labels = names if len(names) == 2 else ["0", "1"]
    cells = [
        [m.get("trueNegatives", 0.0), m.get("falsePositives", 0.0)],
        [m.get("falseNegatives", 0.0), m.get("truePositives", 0.0)],
    ]
    return _matrix(labels, cells)


def multiclass_confusion_matrix(plots: dict | None, names: list[str]) -> dict[str, Any] | None:
    """TFMA's multiclass confusion matrix (MultiClassConfusionMatrixPlot, its first threshold),
    each class by its name where known."""
    for by_sub_key in (plots or {}).values():
        for plot in (by_sub_key or {}).values():
            matrices = plot.get("multiClassConfusionMatrixAtThresholds", {}).get("matrices", [])
            if not matrices:
                continue
            entries = [e for e in matrices[0].get("entries", []) if e.get("predictedClassId", 0) >= 0]
            size = max(
                [len(names)] + [max(e.get("actualClassId", 0), e.get("predictedClassId", 0)) + 1 for e in entries]
            )
            cells = [[0.0] * size for _ in range(size)]
            for e in entries:
                cells[e.get("actualClassId", 0)][e.get("predictedClassId", 0)] += e.get("numWeightedExamples", 0.0)
            labels = [names[i] if i < len(names) else str(i) for i in range(size)]
            return _matrix(labels, cells)
    return None


def _matrix(labels: list[str], cells: list[list[float]]) -> dict[str, Any]:
    return {
        "annotationSpecs": [{"displayName": label} for label in labels],
        # Counts of (weighted) examples: whole numbers unless the evaluation weighs examples.
        "rows": [{"row": [int(c) if float(c).is_integer() else c for c in row]} for row in cells],
    }


def classification(task: str, plots: dict | None, names: list[str]) -> dict[str, Any]:
    """The ClassificationMetrics custom properties of a task: a binary classifier's ROC curve and
    confusion matrix, a multiclass one's confusion matrix, nothing for a regression."""
    found: dict[str, Any] = {}
    if task == "binary":
        matrices = binary_matrices(plots)
        if matrices:
            found["confidenceMetrics"] = confidence_metrics(matrices)
            found["confusionMatrix"] = binary_confusion_matrix(matrices, names)
    elif task == "multiclass":
        matrix = multiclass_confusion_matrix(plots, names)
        if matrix is not None:
            found["confusionMatrix"] = matrix
    return found


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else "–"


def outcome_text(outcome: dict[str, Any]) -> str:
    """One line: pushed as which version, already served, or refused (and by what)."""
    if outcome.get("pushed_version"):
        return f"blessed and pushed as version {outcome['pushed_version']} ({outcome.get('pushed_destination')})"
    if outcome.get("already_served"):
        return f"blessed; the same model is already served as {outcome['already_served']}, not pushed again"
    if outcome.get("blessed") is False:
        return "refused by the Evaluator: nothing pushed"
    return "not pushed (the serving checks or the Pusher did not push it)"


def page_html(
    run: str,
    outcome: dict[str, Any],
    overall: dict[str, float],
    baseline: dict[str, float] | None,
    failures: list[str],
    task: str,
    plots: dict | None,
    card_html: str | None,
) -> str:
    """The run page: the outcome, why, the test metrics against the baseline, the binary ROC
    curve and confusion matrix, and the pushed version's model card below. One self-contained
    page: KFP's UI shows it in a sandboxed frame, which loads nothing else."""
    names = sorted(set(overall) | set(baseline or {}))
    rows = "".join(
        f"<tr><td>{_e(n)}</td><td class=num>{_num(overall.get(n))}</td>"
        + (f"<td class=num>{_num((baseline or {}).get(n))}</td>" if baseline is not None else "")
        + "</tr>"
        for n in names
    )
    head = "<tr><th>metric</th><th>candidate</th>" + ("<th>served (baseline)</th>" if baseline is not None else "")
    matrices = binary_matrices(plots) if task == "binary" else []
    figures = (
        f"<div class=plots><figure>{roc_svg(matrices)}<figcaption>ROC, test split</figcaption></figure>"
        f"<figure>{confusion_svg(matrices)}<figcaption>confusion matrix, test split</figcaption></figure></div>"
        if matrices
        else ""
    )
    why = "".join(f"<li>{_e(f)}</li>" for f in failures)
    card = (
        f"<h2>Model card</h2><iframe title='model card' style='width:100%;height:1200px;border:0' "
        f"srcdoc='{html.escape(card_html, quote=True)}'></iframe>"
        if card_html
        else "<p>No model card: no version was pushed by this run.</p>"
    )
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>"
        + _e(run)
        + "</title><style>body{font:14px/1.45 system-ui,sans-serif;margin:16px}table{border-collapse:collapse}"
        "td,th{border:1px solid #d5d9e0;padding:3px 7px}td.num{text-align:right}.plots{display:flex;gap:24px}"
        "</style></head><body>"
        f"<h1>{_e(run)}</h1><p><b>{_e(outcome_text(outcome))}</b></p>"
        + (f"<p>Why:</p><ul>{why}</ul>" if why else "")
        + f"<h2>Test split metrics</h2><table>{head}</tr>{rows}</table>{figures}{card}</body></html>"
    )


def card_markdown(outcome: dict[str, Any], card_md: str | None, overall: dict[str, float], failures: list[str]) -> str:
    """The pushed version's model card, or, when nothing was pushed, why and the test metrics."""
    if card_md:
        return card_md
    lines = ["# No model card", "", f"This run pushed no version: {outcome_text(outcome)}.", ""]
    lines += [f"- {f}" for f in failures]
    lines += ["", "| metric | candidate |", "| --- | --- |"] + [
        f"| {n} | {_num(v)} |" for n, v in sorted(overall.items())
    ]
    return "\n".join(lines) + "\n"
