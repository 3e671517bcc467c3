"""The RunPage executor: reads the evaluation, the blessing and the push, writes the four artifacts
(content.py holds what goes in them)."""

from __future__ import annotations

import json
import os
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components.evaluator.results import eval_results, metric_values, validation_failures
from components.run_page import content
from contracts.saved_model import ASSETS_EXTRA, MODEL_CARD_HTML, MODEL_CARD_JSON, MODEL_CARD_MD

# The Pusher's custom properties (components/atomic_pusher/executor.py, TFX's own names).
_PUSHED_PROPERTIES = ("pushed", "pushed_version", "pushed_destination", "already_served")
# The report's custom property that holds why a refused run pushed nothing.
REFUSED_PROPERTY = "refused_reasons"


def property_value(artifact: types.Artifact, name: str) -> Any:
    """A custom property's value, None when absent. On Kubeflow TFX's entrypoint turns every
    input property into a struct ({"__value__": 0.0}), which get_custom_property reads as None
    when the value is falsy (a refused model's `blessed`): the struct is decoded here first."""
    value = artifact.get_json_value_custom_property(name)
    return value if value is not None else artifact.get_custom_property(name)


def refused_reasons(outcome: dict[str, Any], failures: list[str]) -> list[str] | None:
    """Why the run pushed nothing (the Evaluator's failed thresholds, else the outcome's line);
    None when it pushed or the model was already served: `tfxp run`'s rule (tfxp/local_runs.py)."""
    if outcome.get("pushed") or outcome.get("already_served"):
        return None
    return list(failures) or [content.outcome_text(outcome)]


def _read(path: str) -> str | None:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return f.read()


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        from components.run_page.component import CLASSIFICATION_KEY, METRICS_KEY, MODEL_CARD_KEY, REPORT_KEY

        evaluation = artifact_utils.get_single_uri(input_dict["evaluation"])
        blessing = artifact_utils.get_single_instance(input_dict["blessing"])
        pushed = artifact_utils.get_single_instance(input_dict["pushed_model"])
        outcome = {name: property_value(pushed, name) for name in _PUSHED_PROPERTIES}
        blessed = property_value(blessing, "blessed")
        outcome["blessed"] = None if blessed is None else bool(blessed)
        if outcome["pushed_version"] is not None and not outcome["pushed"]:
            outcome["pushed_version"] = None
        # The card of the version that serves this model: the one pushed, or the one that already held it.
        version_dir = outcome["pushed_destination"] if outcome["pushed_version"] else outcome["already_served"]
        card_dir = os.path.join(version_dir, ASSETS_EXTRA) if version_dir else ""
        card_md, card_html, card_json = (
            _read(os.path.join(card_dir, name)) if card_dir else None
            for name in (MODEL_CARD_MD, MODEL_CARD_HTML, MODEL_CARD_JSON)
        )
        facts = json.loads(card_json) if card_json else {}

        result, base = eval_results(evaluation)
        overall = next((metric_values(m) for k, m in result.slicing_metrics if not k), {})
        baseline = next((metric_values(m) for k, m in base.slicing_metrics if not k), None) if base else None
        plots = dict((tuple(k), p) for k, p in (result.plots or [])).get(())
        failures = validation_failures(evaluation)
        task = exec_properties["task"]

        report = artifact_utils.get_single_instance(output_dict[REPORT_KEY])
        page = content.page_html(exec_properties["title"], outcome, overall, baseline, failures, task, plots, card_html)
        self._write(report, "report.html", page)
        card = artifact_utils.get_single_instance(output_dict[MODEL_CARD_KEY])
        self._write(card, "model_card.md", content.card_markdown(outcome, card_md, overall, failures))
        reasons = refused_reasons(outcome, failures)
        if reasons:
            # On Kubeflow, pipeline/kfp_executor.py posts run_refused from this property.
            report.set_string_custom_property(REFUSED_PROPERTY, json.dumps(reasons))

        metrics = artifact_utils.get_single_instance(output_dict[METRICS_KEY])
        for name, value in content.scalar_metrics(overall).items():
            metrics.set_float_custom_property(name, value)
        classification = artifact_utils.get_single_instance(output_dict[CLASSIFICATION_KEY])
        for name, value in content.classification(task, plots, facts.get("class_names") or []).items():
            classification.set_json_value_custom_property(name, value)

    @staticmethod
    def _write(artifact: types.Artifact, filename: str, text: str) -> None:
        path = content.content_path(artifact.uri, filename)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
