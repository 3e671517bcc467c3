"""TFX's Pusher executor with an atomic, verified copy into the serving directory.

TFX's own executor copies the model straight into `<base>/<version>/` (saved_model.pb last),
so a full disk or a kill mid-copy leaves an all-digit directory that TF Serving tries to load
and that every later run took as its baseline. This one publishes through
`contracts.serving_dir.publish_version`: a hidden copy, checked complete, synced, then renamed.
The blessing checks and the pushed-model artifact are TFX's (`CheckBlessing`, `GetModelPath`,
the same custom properties). A model that is already the newest served version, by TensorFlow's
SavedModel fingerprint, is not pushed again.

Each version also carries its model card (components/model_card: Markdown, HTML and the facts
as JSON under assets.extra/), written before the rename like the record, from the Pusher's
inputs (components/atomic_pusher/component.py) and its custom_config's `model_card`.

After the rename the Pusher updates the TF Serving model config beside the versions
(contracts/model_config.py): it lists the new version, then labels it `canary` (`stable` too on
the first push, or with `pusher.rollout: stable`). A label that moves waits until TF Serving has
the version AVAILABLE at `pusher.serving_url`; when it does not load in time the label stays where
it was and the log says so (`tfxp canary VERSION` moves it later). With no URL there is nothing to
ask: the label moves at once, which a server started afterwards accepts and one already running
refuses (docs/serving.md "Rollout").

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
from tfx.utils import io_utils, json_utils, proto_utils

from components.serving_baseline.baseline import same_saved_model
from contracts import model_config
from contracts.saved_model import ASSETS_EXTRA, MODEL_CARD_HTML, MODEL_CARD_JSON, MODEL_CARD_MD, PUSH_RECORD
from contracts.serving_dir import latest_served, next_version, publish_version, served_versions

MODEL_CARD_CONFIG = "model_card"  # the custom_config key of the card's config part (component.py)
ROLLOUT_CONFIG = "rollout"  # the custom_config key of the config's `pusher` section
CANARY_PENDING = "canary_pending"  # ours: why the canary label did not move to the pushed version

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
        base_directory = destination.filesystem.base_directory
        push_record = self._push_record(input_dict, model_push)
        version = next_version(base_directory)
        custom_config = json_utils.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "null")
        model_name = ((custom_config or {}).get(MODEL_CARD_CONFIG) or {}).get("model_name") or os.path.basename(
            base_directory.rstrip("/")
        )
        # The baseline the card names is what production traffic gets: the stable version.
        stable = model_config.stable_version(base_directory, model_name, served_versions(base_directory))
        baseline = os.path.join(base_directory, str(stable)) if stable is not None else None
        card = self._model_card(input_dict, exec_properties, model_path, base_directory, baseline, version, push_record)
        extra_files = {PUSH_RECORD: json.dumps(push_record, indent=1, sort_keys=True).encode(), **card}
        version, serving_path = publish_version(model_path, base_directory, version=version, extra_files=extra_files)
        logging.info("Model published to serving path %s", serving_path)
        io_utils.copy_dir(model_path, model_push.uri)  # the pushed model, archived as TFX does
        model_push.set_int_custom_property(PUSHED, 1)
        model_push.set_string_custom_property(PUSHED_DESTINATION, serving_path)
        model_push.set_string_custom_property(PUSHED_VERSION, str(version))
        pending = label_push(base_directory, model_name, version, (custom_config or {}).get(ROLLOUT_CONFIG) or {})
        if pending:
            model_push.set_string_custom_property(CANARY_PENDING, pending)

    def _model_card(
        self,
        input_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
        model_path: str,
        base_directory: str,
        served: str | None,
        version: int,
        push_record: dict,
    ) -> dict[str, bytes]:
        """The card's three files (assets.extra/model_card.{md,html,json}), from the inputs."""
        from components.model_card import card
        from components.serving_check.executor import CHECK_PROPERTY, outcome

        def single(key: str) -> types.Artifact | None:
            artifacts = input_dict.get(key) or []
            return artifacts[-1] if artifacts else None

        custom_config = json_utils.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "null")
        settings = dict((custom_config or {}).get(MODEL_CARD_CONFIG) or {})
        settings["code"] = card.code_origin(os.path.dirname(os.path.abspath(__file__)))
        record = card.RunRecord(
            model_name=settings.get("model_name") or os.path.basename(base_directory.rstrip("/")),
            version=version,
            pushed_at=push_record["pushed_at"],
            settings=settings,
            model_dir=model_path,
            pipeline=push_record["pipeline"],
            run_id=push_record["run_id"],
        )
        statistics = single("statistics")
        if statistics is not None:
            record.span = statistics.span if statistics.has_property("span") else None
            record.statistics = {
                split: os.path.join(artifact_utils.get_split_uri([statistics], split), "FeatureStats.pb")
                for split in artifact_utils.decode_split_names(statistics.split_names)
            }
        schema = single("schema")
        if schema is not None:
            record.schema = io_utils.get_only_uri_in_dir(schema.uri)
        evaluation = single("evaluation")
        record.evaluation = evaluation.uri if evaluation is not None else None
        blessing = single(standard_component_specs.MODEL_BLESSING_KEY)
        if blessing is not None and blessing.has_custom_property("blessed"):
            record.blessed = bool(blessing.get_int_custom_property("blessed"))
        # The newest served version when the model is pushed: the baseline the Evaluator compared
        # with (ServingBaseline's pick), as the run lock keeps other pushes out locally.
        record.baseline = served
        hyperparameters = single("hyperparameters")
        if hyperparameters is not None:
            record.hyperparameters = os.path.join(hyperparameters.uri, "best_hyperparameters.txt")
        record.serving_checks = [
            outcome(
                bool(a.get_int_custom_property("blessed")) if a.has_custom_property("blessed") else False,
                a.get_string_custom_property(CHECK_PROPERTY) if a.has_custom_property(CHECK_PROPERTY) else None,
            )
            for a in input_dict.get(standard_component_specs.INFRA_BLESSING_KEY, [])
        ]
        try:
            facts = card.gather(record)
        except Exception as err:
            # A push without its card would break "every served version has one": the push stops.
            raise RuntimeError(f"the model card of version {version} could not be made: {err}") from err
        return {
            os.path.join(ASSETS_EXTRA, MODEL_CARD_MD): card.render_markdown(facts).encode(),
            os.path.join(ASSETS_EXTRA, MODEL_CARD_HTML): card.render_html(facts).encode(),
            os.path.join(ASSETS_EXTRA, MODEL_CARD_JSON): card.to_json(facts).encode(),
        }

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


def label_push(base_directory: str, model_name: str, version: int, rollout: dict[str, Any]) -> str | None:
    """Lists `version` in the model config, then labels it (contracts.model_config.plan_push);
    None when the labels moved, else why they did not (the push itself stands)."""
    current = model_config.read_config(base_directory, model_name)
    if current is None:
        older = [v for v in served_versions(base_directory) if v != version]
        # A serving directory from before the model config: TF Serving served its newest version.
        current = model_config.ModelConfig(
            model_name,
            base_directory,
            (older[-1],) if older else (),
            {model_config.STABLE: older[-1]} if older else {},
        )
    listed, labelled = model_config.plan_push(
        current, model_name, base_directory, version, rollout.get("rollout") or model_config.CANARY
    )
    model_config.write_config(base_directory, listed)
    if model_config.moves_a_label(current, labelled):
        url = rollout.get("serving_url")
        if not url:
            # Nothing to ask: a server started from now on reads the labels as new ones
            # (--allow_version_labels_for_unavailable_models), but one already running with the
            # old labels refuses the moved label until the version is loaded (TF Serving's rule).
            logging.warning(
                "The canary label moves to version %s without checking that TF Serving has loaded it "
                "(pusher.serving_url is not set); a server already running refuses that config",
                version,
            )
        else:
            wait = float(rollout.get("label_wait_seconds") or 120)
            state = model_config.wait_available(url, model_name, version, wait)
            if state != "AVAILABLE":
                why = (
                    f"the labels stay where they were: version {version} is {state} at {url} after "
                    f"{wait:g} s (pusher.label_wait_seconds); once TF Serving serves it, run `tfxp canary {version}`"
                )
                logging.warning(why)
                return why
    model_config.write_config(base_directory, labelled)
    logging.info("Model config %s: %s", model_config.config_path(base_directory), labelled.labels)
    return None
