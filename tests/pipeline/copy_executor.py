"""A tiny TFX executor for tests/pipeline/test_kfp_executor.py: copies its input's files to its output."""

from __future__ import annotations

import shutil

from tfx.dsl.components.base import base_executor


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        [examples] = input_dict["examples"]
        [statistics] = output_dict["statistics"]
        assert examples.type_name == "Examples", examples.type_name
        assert examples.span == 3
        shutil.copytree(examples.uri, statistics.uri)
        statistics.set_string_custom_property("source", examples.uri)
