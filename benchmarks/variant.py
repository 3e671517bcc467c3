"""`tfxp run` with one of the pipeline's speed-ups undone, in this process only, to measure it.

The pipeline code stays as it is; a variant patches what `create_pipeline` or the model code
uses, in the benchmark's own subprocess (LocalDagRunner runs every component in it):

  tf2-tracing          Transform(force_tf_compat_v1=False): trace preprocessing_fn with TF2
  analyzer-cache       Transform(disable_analyzer_cache=False): write the (unread) analyzer cache
  transform-test       Transform also transforms the test split (which nothing reads)
  candidate-baseline   before the first push the candidate is copied in as its own baseline,
                       so TFMA evaluates the model twice

Several variants join with commas. Usage: python -m benchmarks.variant VARIANT[,VARIANT...]
[tfxp run options...]

`ARMS` names what `python -m benchmarks variants` compares: variants plus config overrides.
"""

from __future__ import annotations

import functools
import sys

VARIANTS = ("none", "tf2-tracing", "analyzer-cache", "transform-test", "candidate-baseline")

# Overrides derived from the bundled config when an arm is chosen (see `arm`).
_EXACT = "<every categorical feature: vocabulary=exact>"
_TYPE_CHECK = "<beam.extra_args without --no_pipeline_type_check>"

ARMS = {
    "default": ("none", []),
    "exact-vocabulary": ("none", [_EXACT]),
    "tf2-tracing": ("tf2-tracing", []),
    "transform-statistics": ("none", ["transform.statistics=true"]),
    "analyzer-cache": ("analyzer-cache", []),
    "transform-test": ("transform-test", []),
    "candidate-baseline": ("candidate-baseline", []),
    "pipeline-type-check": ("none", [_TYPE_CHECK]),
    # Every speed-up above undone at once: the pipeline as it was before them.
    "before": (
        "tf2-tracing,analyzer-cache,transform-test,candidate-baseline",
        [_EXACT, "transform.statistics=true", _TYPE_CHECK],
    ),
}


def _expand(override: str) -> list[str]:
    from pipeline.config import FeatureType, load_config

    if override == _EXACT:
        return [
            f"features.{name}.vocabulary=exact"
            for name, spec in load_config(None).features.items()
            if spec.type is FeatureType.CATEGORICAL
        ]
    if override == _TYPE_CHECK:
        kept = [a for a in load_config(None).beam.extra_args if a != "--no_pipeline_type_check"]
        return [f"beam.extra_args=[{','.join(kept)}]"]
    return [override]


def arm(name: str) -> tuple[str, list[str]]:
    """(variants, config overrides) of a named arm."""
    if name not in ARMS:
        raise SystemExit(f"unknown arm {name!r}; one of: {', '.join(ARMS)}")
    variant, overrides = ARMS[name]
    return variant, [o for override in overrides for o in _expand(override)]


def _transform_with(**forced) -> None:
    """Transform built with `forced` arguments, whatever the pipeline passes."""
    from tfx import v1 as tfx

    original = tfx.components.Transform

    @functools.wraps(original)
    def transform(*args, **kwargs):
        return original(*args, **{**kwargs, **forced})

    tfx.components.Transform = transform


def _candidate_baseline() -> None:
    """ServingBaseline as it was: with nothing served, the candidate becomes the baseline."""
    from tfx.utils import path_utils

    from components.serving_baseline import executor
    from contracts.serving_dir import copy_tree, latest_served

    do = executor.Executor.Do

    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 - TFX's name
        do(self, input_dict, output_dict, exec_properties)
        if latest_served(exec_properties["serving_dir"]) is None:
            [candidate], [output] = input_dict["model"], output_dict["baseline_model"]
            copy_tree(path_utils.serving_model_path(candidate.uri), path_utils.serving_model_dir(output.uri))

    executor.Executor.Do = Do


def apply(variants: str) -> None:
    for variant in variants.split(","):
        if variant not in VARIANTS:
            raise SystemExit(f"unknown variant {variant!r}; one of: {', '.join(VARIANTS)}")
        if variant == "tf2-tracing":
            _transform_with(force_tf_compat_v1=False)
        elif variant == "analyzer-cache":
            _transform_with(disable_analyzer_cache=False)
        elif variant == "transform-test":
            import pipeline.pipeline

            pipeline.pipeline.TRANSFORMED_SPLITS = ("train", "eval", "test")
        elif variant == "candidate-baseline":
            _candidate_baseline()


def main(argv: list[str]) -> int:
    if not argv:
        raise SystemExit(__doc__)
    apply(argv[0])
    from tfxp.main import main as tfxp

    return tfxp(["run", *argv[1:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
