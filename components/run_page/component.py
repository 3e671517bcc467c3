"""The RunPage component: after the Pusher, the run's outcome, model card and test metrics as
artifacts of KFP's system.* types (artifacts.py), which KFP's UI shows on the run's page.

Locally it costs one read of the evaluation and a few small files; nothing reads its outputs.
"""

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.run_page import artifacts, executor

REPORT_KEY, MODEL_CARD_KEY = "report", "model_card"
METRICS_KEY, CLASSIFICATION_KEY = "metrics", "classification_metrics"


class RunPageSpec(ComponentSpec):
    PARAMETERS = {"title": ExecutionParameter(type=str), "task": ExecutionParameter(type=str)}
    INPUTS = {
        "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation),
        "blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "pushed_model": ChannelParameter(type=standard_artifacts.PushedModel),
    }
    OUTPUTS = {
        REPORT_KEY: ChannelParameter(type=artifacts.HTML),
        MODEL_CARD_KEY: ChannelParameter(type=artifacts.Markdown),
        METRICS_KEY: ChannelParameter(type=artifacts.Metrics),
        CLASSIFICATION_KEY: ChannelParameter(type=artifacts.ClassificationMetrics),
    }


class RunPage(base_component.BaseComponent):
    """The run page (HTML), the model card (Markdown), the test metrics and the ROC curve and
    confusion matrix, for KFP's UI."""

    SPEC_CLASS = RunPageSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, *, evaluation, blessing, pushed_model, title: str, task: str):
        super().__init__(
            spec=RunPageSpec(
                evaluation=evaluation,
                blessing=blessing,
                pushed_model=pushed_model,
                title=title,
                task=task,
                **{key: types.Channel(type=p.type) for key, p in RunPageSpec.OUTPUTS.items()},
            )
        )
