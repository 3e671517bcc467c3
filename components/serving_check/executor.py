"""Thin executor: runs the serving check on the candidate and blesses it, or fails the run.

A refused model fails this component, so the Pusher never runs and the run ends with the
check's one-line reason; a passing one gets InfraValidator's blessing marks (the `blessed`
custom property and the INFRA_BLESSED file), which TFX's Pusher reads.
"""

from __future__ import annotations

import os
from typing import Any

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from components.serving_check import check

BLESSED_FILE = "INFRA_BLESSED"  # the marker file TFX's InfraValidator writes
BLESSED_PROPERTY = "blessed"
CHECK_PROPERTY = "serving_check"


def outcome(blessed: bool, how: str | None) -> str:
    """One serving check's result as the run summary and the model card say it, from an
    InfraBlessing's `blessed` and CHECK_PROPERTY (None: TFX's InfraValidator, which records
    no reason in its artifact, only in the log)."""
    how = how or "TFX InfraValidator, the real TF Serving"
    if blessed:
        return f"passed ({how})"
    return f"refused ({how}): the model did not load or answer; the run's log has why"


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        model = artifact_utils.get_single_instance(input_dict["model"])
        blessing = artifact_utils.get_single_instance(output_dict["blessing"])
        result = check.check(path_utils.serving_model_path(model.uri))
        logging.info(
            "Serving check passed: %d warm-up records ran signatures %s", result.records, ", ".join(result.signatures)
        )
        io_utils.write_string_file(os.path.join(blessing.uri, BLESSED_FILE), "")
        blessing.set_int_custom_property(BLESSED_PROPERTY, 1)
        blessing.set_string_custom_property(
            CHECK_PROPERTY, "in process: TF1 session loader, warm-up replayed with TF Serving's request checks"
        )
