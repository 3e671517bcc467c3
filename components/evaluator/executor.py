"""Thin executor: TFX's Evaluator executor, minus a baseline artifact that holds no model,
with the classes of a multiclass model filled into the eval config's per-class metrics, and
the thresholds fitted to the run (components/evaluator/gates.py): no change thresholds without
a baseline, first-run gates from the data where no value threshold bounds a gate metric."""

from __future__ import annotations

import os
from typing import Any

from tfx import types
from tfx.components.evaluator import executor as tfx_evaluator
from tfx.types import standard_component_specs

from components.evaluator import gates
from components.serving_baseline.baseline import holds_serving_model
from models.spec import Task

# The component's own parameters (component.py), which TFX's executor does not know.
TASK_KEY = "task"
LABEL_COLUMN_KEY = "label_column"  # the raw label column the naive predictors read
FIRST_RUN_MARGIN_KEY = "first_run_margin"


def without_empty_baseline(input_dict: dict[str, list[types.Artifact]]) -> dict[str, list[types.Artifact]]:
    """The inputs with `baseline_model` removed when no baseline artifact holds a SavedModel."""
    key = standard_component_specs.BASELINE_MODEL_KEY
    baselines = input_dict.get(key) or []
    if any(holds_serving_model(artifact.uri) for artifact in baselines):
        return input_dict
    return {name: artifacts for name, artifacts in input_dict.items() if name != key}


def set_class_ids(per_class: Any, macro: Any, num_classes: int) -> None:
    """Binarizes `per_class` one-vs-rest over classes 0..num_classes-1 and weighs them equally
    in `macro`'s average. With no classes known yet (0) both are left empty, for
    `with_class_ids` to fill from the model."""
    per_class.binarize.SetInParent()
    macro.aggregate.SetInParent()
    per_class.binarize.class_ids.values[:] = list(range(num_classes))
    macro.aggregate.class_weights.clear()
    for i in range(num_classes):
        macro.aggregate.class_weights[i] = 1.0


def with_class_ids(eval_config_json: str, model_dir: str) -> str:
    """The eval config with the model's classes in the metrics specs that left them empty.

    A multiclass config without label.classes learns its classes from the data, so the
    pipeline cannot name them when it builds the eval config (nor in a Kubeflow run
    parameter): its per-class spec binarizes over no class ids and its macro-average spec
    has no class weights, which TFMA would refuse. The candidate's assets.extra/classes.txt
    (written by models/model.py's export) says how many classes it answers.
    """
    from google.protobuf import json_format
    from tensorflow_model_analysis.proto import config_pb2

    from contracts.saved_model import ASSETS_EXTRA, CLASSES_FILE

    config = json_format.Parse(eval_config_json, config_pb2.EvalConfig())
    per_class = [s for s in config.metrics_specs if s.HasField("binarize") and not s.binarize.class_ids.values]
    macro = [s for s in config.metrics_specs if s.aggregate.macro_average and not s.aggregate.class_weights]
    if not per_class and not macro:
        return eval_config_json
    import tensorflow as tf

    path = os.path.join(model_dir, ASSETS_EXTRA, CLASSES_FILE)
    if not tf.io.gfile.exists(path):
        raise ValueError(
            f"the eval config asks for per-class metrics but the model has no {path} to "
            "name its classes; set label.classes in the config"
        )
    with tf.io.gfile.GFile(path) as f:
        count = sum(1 for line in f if line.strip())
    for per_class_spec, macro_spec in zip(per_class, macro):
        set_class_ids(per_class_spec, macro_spec, count)
    return json_format.MessageToJson(config, sort_keys=True)


def gated(eval_config_json: str, task: Task, label_column: str, margin: float, examples_uri: str, has_baseline: bool):
    """(the eval config with its thresholds fitted to this run, the first-run gates added).

    The naive predictors read the raw label column: a regression label in its own units, as
    TFMA scores it; a class as its text, which ranks the classes as their indices do."""
    from google.protobuf import json_format
    from tensorflow_model_analysis.proto import config_pb2

    config = json_format.Parse(eval_config_json, config_pb2.EvalConfig())

    def labels():
        return (
            gates.split_labels(examples_uri, "train", label_column),
            gates.split_labels(examples_uri, "test", label_column),
        )

    added = gates.gate_eval_config(config, task, margin, labels, has_baseline)
    return json_format.MessageToJson(config, sort_keys=True), added


class Executor(tfx_evaluator.Executor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        from tfx.utils import path_utils

        exec_properties = dict(exec_properties)
        task = Task(exec_properties.pop(TASK_KEY))
        label_column = exec_properties.pop(LABEL_COLUMN_KEY)
        margin = float(exec_properties.pop(FIRST_RUN_MARGIN_KEY))
        inputs = without_empty_baseline(input_dict)
        eval_config = exec_properties.get(standard_component_specs.EVAL_CONFIG_KEY)
        models = input_dict.get(standard_component_specs.MODEL_KEY) or []
        added: list[dict] = []
        if eval_config and models:
            model_dir = path_utils.serving_model_path(models[0].uri)
            eval_config = with_class_ids(eval_config, model_dir)
            examples = input_dict[standard_component_specs.EXAMPLES_KEY][0].uri
            has_baseline = standard_component_specs.BASELINE_MODEL_KEY in inputs
            eval_config, added = gated(eval_config, task, label_column, margin, examples, has_baseline)
            exec_properties[standard_component_specs.EVAL_CONFIG_KEY] = eval_config
        super().Do(inputs, output_dict, exec_properties)
        evaluation = output_dict[standard_component_specs.EVALUATION_KEY][0]
        gates.write_gates(evaluation.uri, added)
