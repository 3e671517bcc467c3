"""A tiny TFX executor for tests/pipeline/test_notify.py: writes a report as RunPage does for a run
that pushed nothing (the `refused_reasons` property of components/run_page/executor.py)."""

from __future__ import annotations

import json

from tfx.dsl.components.base import base_executor

from components.run_page.executor import REFUSED_PROPERTY


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        [report] = output_dict["report"]
        if exec_properties.get("refuse"):
            report.set_string_custom_property(REFUSED_PROPERTY, json.dumps(["auc = 0.61 below the threshold 0.7"]))
