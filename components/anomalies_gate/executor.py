"""Thin executor: finds each split's anomalies file and hands them to the gate's logic; on
a pass, records the span's train statistics as the drift baseline for the next span."""

from __future__ import annotations

import os
from typing import Any

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components.anomalies_gate import gate
from components.drift_check import drift as drift_lib
from components.drift_check.executor import SPAN_PROPERTY


def _split_dirs(artifact: types.Artifact) -> dict[str, str]:
    splits = artifact_utils.decode_split_names(artifact.split_names)
    return {split: artifact_utils.get_split_uri([artifact], split) for split in splits}


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        anomalies = artifact_utils.get_single_instance(input_dict["anomalies"])
        drift = input_dict.get("drift") or []
        accepted = gate.check(
            _split_dirs(anomalies),
            _split_dirs(drift[0]) if drift else None,
            accept_drift=bool(exec_properties.get("accept_drift")),
        )
        if accepted:
            logging.warning("drift accepted for this run (drift.accept):\n  %s", "\n  ".join(accepted))
        statistics = input_dict.get("statistics") or []
        if statistics and drift and exec_properties.get("history_dir"):
            span = drift[0].get_int_custom_property(SPAN_PROPERTY)
            drift_lib.record(
                exec_properties["history_dir"],
                span,
                os.path.join(artifact_utils.get_split_uri([statistics[0]], "train"), drift_lib.STATS_FILE),
            )
