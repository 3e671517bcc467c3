"""TFX's Pusher executor with an atomic, verified copy into the serving directory.

TFX's own executor copies the model straight into `<base>/<version>/` (saved_model.pb last),
so a full disk or a kill mid-copy leaves an all-digit directory that TF Serving tries to load
and that every later run took as its baseline. This one publishes through
`contracts.serving_dir.publish_version`: a hidden copy, checked complete, synced, then renamed.
The blessing checks and the pushed-model artifact are TFX's (`CheckBlessing`, `GetModelPath`,
the same custom properties). A model that is already the newest served version, by TensorFlow's
SavedModel fingerprint, is not pushed again.

Each version carries a push record (`contracts.saved_model.PUSH_RECORD`: pipeline, run, the
Pusher's execution, the model and blessings it pushed), written before the rename: TFX records
the push in ML Metadata only after this executor returns, and a run killed in between leaves a
version whose lineage `tfxp lineage` then reads from the record.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

from absl import logging
from tfx import types
from tfx.components.pusher import executor as tfx_pusher
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components.serving_baseline.baseline import same_saved_model
from contracts.saved_model import PUSH_RECORD
from contracts.serving_dir import latest_served, publish_version

# The custom properties TFX's Pusher records (tfx/components/pusher/executor.py), read by
# TFX's tooling and by `tfxp runs` and `lineage`.
PUSHED = "pushed"
PUSHED_DESTINATION = "pushed_destination"
PUSHED_VERSION = "pushed_version"
ALREADY_SERVED = "already_served"  # ours: the served version that holds this very model


class Executor(tfx_pusher.Executor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            model_push.set_int_custom_property(PUSHED, 0)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError("only filesystem push destinations are supported")
        model_path = self.GetModelPath(input_dict)
        served = latest_served(destination.filesystem.base_directory)
        if served is not None and same_saved_model(model_path, served):
            # A re-run whose model is the one served: a second copy would be a new version of
            # the same model, with no lineage of its own.
            logging.info("The model is already served as %s; not pushed again", served)
            model_push.set_int_custom_property(PUSHED, 0)
            model_push.set_string_custom_property(ALREADY_SERVED, served)
            return
        record = json.dumps(self._push_record(input_dict, model_push), indent=1, sort_keys=True).encode()
        version, serving_path = publish_version(
            model_path, destination.filesystem.base_directory, extra_files={PUSH_RECORD: record}
        )
        logging.info("Model published to serving path %s", serving_path)
        io_utils.copy_dir(model_path, model_push.uri)  # the pushed model, archived as TFX does
        model_push.set_int_custom_property(PUSHED, 1)
        model_push.set_string_custom_property(PUSHED_DESTINATION, serving_path)
        model_push.set_string_custom_property(PUSHED_VERSION, str(version))

    def _push_record(self, input_dict: dict[str, list[types.Artifact]], model_push: types.Artifact) -> dict:
        """What `tfxp lineage` needs to find this push in ML Metadata without its record there."""

        def artifacts(key: str) -> list[dict]:
            return [
                {
                    "id": a.id,
                    "uri": a.uri,
                    **({"blessed": a.get_int_custom_property("blessed")} if a.has_custom_property("blessed") else {}),
                }
                for a in input_dict.get(key, [])
            ]

        # BaseExecutor keeps the orchestrator's context in `_context`, meant for subclasses
        # (TFX's own executors read it); it has no public accessor.
        context = self._context
        info = context.pipeline_info if context is not None else None
        # The local runner names output artifacts <node>/<output>/<execution id>
        # (tfx/orchestration/portable/outputs_utils.py); elsewhere the id is not known here.
        tail = os.path.basename(model_push.uri.rstrip("/"))
        return {
            "pipeline": info.id if info is not None else None,
            "run_id": context.pipeline_run_id if context is not None else None,
            "pusher_execution_id": int(tail) if tail.isdigit() else None,
            "pushed_model": model_push.uri,
            "model": artifacts(standard_component_specs.MODEL_KEY),
            "model_blessing": artifacts(standard_component_specs.MODEL_BLESSING_KEY),
            "infra_blessing": artifacts(standard_component_specs.INFRA_BLESSING_KEY),
            "pushed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
