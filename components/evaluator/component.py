"""TFX's Evaluator with its executor swapped for one that fits the thresholds to the run: no
change thresholds without a baseline, first-run gates from the data."""

from tfx import types
from tfx.components.evaluator.component import Evaluator as TfxEvaluator  # not tfx.v1: pipeline/pipeline.py says why
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import component_spec, standard_artifacts, standard_component_specs
from tfx.utils import json_utils

from components.evaluator import executor
from components.evaluator.executor import FIRST_RUN_MARGIN_KEY, LABEL_COLUMN_KEY, TASK_KEY


class GatedEvaluatorSpec(standard_component_specs.EvaluatorSpec):
    """TFX's EvaluatorSpec plus the task (models/tasks.py), the raw label column and the
    first-run gates' margin."""

    PARAMETERS = {
        **standard_component_specs.EvaluatorSpec.PARAMETERS,
        TASK_KEY: component_spec.ExecutionParameter(type=str),
        LABEL_COLUMN_KEY: component_spec.ExecutionParameter(type=str),
        FIRST_RUN_MARGIN_KEY: component_spec.ExecutionParameter(type=float),
    }


class Evaluator(TfxEvaluator):
    """TFX's Evaluator (the inputs this pipeline uses) with three more parameters: `task`,
    `label_column` (the raw label column) and `first_run_margin`.

    Before the first push ServingBaseline outputs an empty baseline artifact (an output
    channel cannot be left out on Kubeflow). The stock executor would fail to load it; this
    one evaluates the candidate alone and drops the change thresholds, which TFX means
    against a baseline. Each gate metric of the task (models/tasks.py) that no value threshold
    bounds gets one from the data: the naive predictor's value plus the margin
    (components/evaluator/gates.py).
    """

    SPEC_CLASS = GatedEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        *,
        examples: types.BaseChannel,
        model: types.BaseChannel,
        baseline_model: types.BaseChannel,
        example_splits: list[str],
        eval_config,
        task: str,
        label_column: str,
        first_run_margin: float,
    ):
        # TFX's __init__ builds its own EvaluatorSpec, with no room for the extra parameters.
        spec = GatedEvaluatorSpec(
            examples=examples,
            model=model,
            baseline_model=baseline_model,
            example_splits=json_utils.dumps(example_splits),
            eval_config=eval_config,
            fairness_indicator_thresholds=json_utils.dumps(None),
            task=task,
            label_column=label_column,
            first_run_margin=first_run_margin,
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing),
        )
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
