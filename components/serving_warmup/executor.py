"""Thin executor: copies the trained SavedModel and adds warm-up records for every signature."""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components.serving_warmup import warmup
from contracts.serving_dir import copy_tree


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        model = artifact_utils.get_single_instance(input_dict["model"])
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        output = artifact_utils.get_single_instance(output_dict["serving_model"])
        split_dir = artifact_utils.get_split_uri([examples], exec_properties["split"])
        files = tf.io.gfile.glob(os.path.join(split_dir, "*"))
        serialized = warmup.read_examples(files, limit=int(exec_properties["num_examples"]))
        serialized = warmup.drop_features(serialized, exec_properties["drop_columns"].split(","))
        destination = path_utils.serving_model_dir(output.uri)
        copy_tree(path_utils.serving_model_path(model.uri), destination)
        logs = warmup.prediction_logs(serialized, exec_properties["model_name"], warmup.signature_defs(destination))
        warmup.write_warmup(destination, logs)
