"""Thin executor: copies the served model (or, before the first push, the candidate) into
the baseline artifact and records which one it was."""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components.serving_baseline import baseline

SOURCE_PROPERTY = "baseline_source"


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: dict[str, list[types.Artifact]],
           output_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]) -> None:
        candidate = artifact_utils.get_single_instance(input_dict["model"])
        output = artifact_utils.get_single_instance(output_dict["baseline_model"])
        served = baseline.latest_served(exec_properties["serving_dir"])
        # Before the first push the candidate is its own baseline: the change threshold then
        # passes trivially and only the value thresholds decide, as TFMA does with no baseline.
        source = served or path_utils.serving_model_path(candidate.uri)
        baseline.copy_tree(source, path_utils.serving_model_dir(output.uri))
        output.set_string_custom_property(SOURCE_PROPERTY, served or "candidate (nothing served yet)")
