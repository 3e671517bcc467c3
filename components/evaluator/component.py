"""TFX's Evaluator with its executor swapped for one that drops an empty baseline."""

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.evaluator import executor


class Evaluator(tfx.components.Evaluator):
    """Same spec and parameters as `tfx.components.Evaluator`.

    Before the first push ServingBaseline outputs an empty baseline artifact (an output
    channel cannot be left out on Kubeflow). The stock executor would fail to load it; this
    one evaluates the candidate alone, which is what TFMA does with no baseline: the change
    thresholds pass (the model is "rubber-stamped") and the value thresholds decide.
    """

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
