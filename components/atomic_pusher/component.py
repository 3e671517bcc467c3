"""TFX's Pusher with the atomic executor (executor.py) and the inputs its model card reads.

The card (components/model_card) is written into the version before it becomes visible, so the
Pusher itself must see what the card reports: the statistics (the span, rows per split), the
schema, the Evaluator's evaluation and the Tuner's best hyperparameters. All are optional, as
TFX's own three inputs are; the card says what a run did not have. Not the examples nor the
baseline model, whose properties alone the card would read: on Kubeflow the launcher downloads
every input artifact's files before the step starts.
"""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components.pusher.component import Pusher as TfxPusher  # not tfx.v1: pipeline/pipeline.py says why
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import component_spec, standard_artifacts, standard_component_specs
from tfx.utils import json_utils

from components.atomic_pusher import executor

STATISTICS_KEY = "statistics"
SCHEMA_KEY = "schema"
EVALUATION_KEY = "evaluation"
HYPERPARAMETERS_KEY = "hyperparameters"


def _optional(artifact_type) -> component_spec.ChannelParameter:
    return component_spec.ChannelParameter(type=artifact_type, optional=True)


class CardPusherSpec(standard_component_specs.PusherSpec):
    """TFX's PusherSpec plus the model card's inputs."""

    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        STATISTICS_KEY: _optional(standard_artifacts.ExampleStatistics),
        SCHEMA_KEY: _optional(standard_artifacts.Schema),
        EVALUATION_KEY: _optional(standard_artifacts.ModelEvaluation),
        HYPERPARAMETERS_KEY: _optional(standard_artifacts.HyperParameters),
    }


class Pusher(TfxPusher):
    """TFX's Pusher (model, blessings, a filesystem destination) that publishes atomically and
    writes a model card into each version; `model_card` (JSON-able) is the config's part of
    the card and `rollout` the config's `pusher` section (which label a push gets), both passed
    in the Pusher's custom_config."""

    SPEC_CLASS = CardPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        *,
        model: types.BaseChannel,
        model_blessing: types.BaseChannel,
        infra_blessing: types.BaseChannel,
        push_destination,
        model_card: dict[str, Any],
        statistics: types.BaseChannel | None = None,
        schema: types.BaseChannel | None = None,
        evaluation: types.BaseChannel | None = None,
        hyperparameters: types.BaseChannel | None = None,
        rollout: dict[str, Any] | None = None,
    ):
        # TFX's __init__ builds its own PusherSpec, with no room for the card's inputs.
        spec = CardPusherSpec(
            model=model,
            model_blessing=model_blessing,
            infra_blessing=infra_blessing,
            push_destination=push_destination,
            custom_config=json_utils.dumps(
                {executor.MODEL_CARD_CONFIG: model_card, executor.ROLLOUT_CONFIG: rollout or {}}
            ),
            statistics=statistics,
            schema=schema,
            evaluation=evaluation,
            hyperparameters=hyperparameters,
            pushed_model=types.Channel(type=standard_artifacts.PushedModel),
        )
        base_component.BaseComponent.__init__(self, spec=spec)
