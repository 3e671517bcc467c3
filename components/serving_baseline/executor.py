"""Thin executor: copies the served model into the baseline artifact and records which one it
was; before the first push the artifact stays empty. The served model is the one production
traffic gets: the model config's `stable` label (contracts/model_config.py), else the newest
version; a canary that is not stable yet is not the baseline."""

from __future__ import annotations

import os
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from contracts import model_config, serving_dir

SOURCE_PROPERTY = "baseline_source"
NOTHING_SERVED = "none (nothing served yet)"


def baseline_version(directory: str) -> int | None:
    """The version ServingBaseline takes as the baseline: the `stable` one, else the newest
    complete one; None when nothing is served. The local runner keys this step's cache by it."""
    # <output>/serving/<model name> (PipelineConfig.serving_dir): the config names the model so.
    return model_config.stable_version(
        directory, os.path.basename(directory.rstrip("/")), serving_dir.served_versions(directory)
    )


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        output = artifact_utils.get_single_instance(output_dict["baseline_model"])
        directory = exec_properties["serving_dir"]
        stable = baseline_version(directory)
        served = os.path.join(directory, str(stable)) if stable is not None else None
        if served is None:
            # Nothing to compare with: the Evaluator (components.evaluator) then evaluates the
            # candidate alone, its change thresholds pass and its value thresholds decide.
            output.set_string_custom_property(SOURCE_PROPERTY, NOTHING_SERVED)
            return
        serving_dir.copy_tree(served, path_utils.serving_model_dir(output.uri))
        output.set_string_custom_property(SOURCE_PROPERTY, served)
