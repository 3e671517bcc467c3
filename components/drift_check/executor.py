"""Thin executor: loads the train statistics, the schema and the baseline span's statistics,
and writes TFDV's drift findings as an ExampleAnomalies artifact (split "train")."""

from __future__ import annotations

import json
import os
from typing import Any

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components.drift_check import drift

SPLIT = "train"
ANOMALIES_FILE = "SchemaDiff.pb"
BASELINE_SPAN_PROPERTY = "baseline_span"
SPAN_PROPERTY = "checked_span"
SERVING_EXAMPLES_PROPERTY = "serving_examples_compared"


def _span(statistics: types.Artifact) -> int:
    """The span StatisticsGen copied from ExampleGen's examples (0 without spans): the span of the
    data these statistics describe, not the newest on disk, which a new drop may have changed."""
    return int(statistics.span or 0)


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        import tensorflow_data_validation as tfdv

        statistics = artifact_utils.get_single_instance(input_dict["statistics"])
        schema_artifact = artifact_utils.get_single_instance(input_dict["schema"])
        output = artifact_utils.get_single_instance(output_dict["drift"])
        span = _span(statistics)
        current = tfdv.load_stats_binary(
            os.path.join(artifact_utils.get_split_uri([statistics], SPLIT), drift.STATS_FILE)
        )
        schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema_artifact.uri))
        comparators = (
            json.loads(exec_properties["features"]),
            exec_properties["categorical_threshold"],
            exec_properties["numeric_threshold"],
        )
        baseline = drift.baseline_span(exec_properties["history_dir"], span)
        found = anomalies_pb2.Anomalies()  # the first span has nothing to drift from
        if baseline is not None:
            found = drift.compare(
                current,
                tfdv.load_stats_binary(drift.stats_path(exec_properties["history_dir"], baseline)),
                drift.with_comparators(schema, *comparators),
            )
        requests_dir = exec_properties.get("serving_requests")
        if requests_dir:
            from components.drift_check.request_log import read_examples

            examples = read_examples(requests_dir)
            if examples:
                skew = drift.compare_skew(
                    current, drift.statistics_of_examples(examples), drift.with_skew_comparators(schema, *comparators)
                )
                for name, info in skew.anomaly_info.items():
                    found.anomaly_info[f"{name} (serving)"].CopyFrom(info)
                found.drift_skew_info.extend(skew.drift_skew_info)  # skew_measurements: the distances
            output.set_int_custom_property(SERVING_EXAMPLES_PROPERTY, len(examples))
        output.split_names = artifact_utils.encode_split_names([SPLIT])
        output.span = span
        output.set_int_custom_property(SPAN_PROPERTY, span)
        output.set_int_custom_property(BASELINE_SPAN_PROPERTY, -1 if baseline is None else baseline)
        io_utils.write_bytes_file(
            os.path.join(artifact_utils.get_split_uri([output], SPLIT), ANOMALIES_FILE), found.SerializeToString()
        )
