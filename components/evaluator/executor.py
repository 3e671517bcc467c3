"""Thin executor: TFX's Evaluator executor, minus a baseline artifact that holds no model."""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components.evaluator import executor as tfx_evaluator
from tfx.types import standard_component_specs

from components.serving_baseline.baseline import holds_serving_model


def without_empty_baseline(input_dict: dict[str, list[types.Artifact]]) -> dict[str, list[types.Artifact]]:
    """The inputs with `baseline_model` removed when no baseline artifact holds a SavedModel."""
    key = standard_component_specs.BASELINE_MODEL_KEY
    baselines = input_dict.get(key) or []
    if any(holds_serving_model(artifact.uri) for artifact in baselines):
        return input_dict
    return {name: artifacts for name, artifacts in input_dict.items() if name != key}


class Executor(tfx_evaluator.Executor):
    def Do(self, input_dict: dict[str, list[types.Artifact]],
           output_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]) -> None:
        super().Do(without_empty_baseline(input_dict), output_dict, exec_properties)
