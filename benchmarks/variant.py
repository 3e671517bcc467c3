"""`tfxp run` with a proposed change applied in this process only, to measure its effect.

The pipeline code stays as it is; a variant patches what `create_pipeline` calls, in the
benchmark's own subprocess:

  no-transform-stats  Transform(disable_statistics=True): no pre/post-transform TFDV pass
  tf-compat-v1        Transform(force_tf_compat_v1=True): trace preprocessing_fn as a TF1 graph

Usage: python -m benchmarks.variant VARIANT [tfxp run options...]

`ARMS` names what `python -m benchmarks variants` compares: a code variant plus config
overrides.
"""

from __future__ import annotations

import functools
import sys

VARIANTS = ("none", "no-transform-stats", "tf-compat-v1")

_IN_MEMORY = ["beam.direct_running_mode=in_memory", "beam.direct_num_workers=1"]
# DirectRunner flags that skip work a local run does not need: a non-empty
# sdk_container_image stops TFX from building an sdist of itself for remote workers
# (1-2 s per Beam component); update_compatibility_version (set to the installed Beam's
# own version: no behaviour change) stops DirectRunner from first trying Prism, which it
# would download from GitHub.
_SKIP = "beam.extra_args=[--sdk_container_image=localhost/tfx-kfp-pipeline:latest,--update_compatibility_version={beam}]"

ARMS = {
    "multi_processing": ("none", ["beam.direct_running_mode=multi_processing", "beam.direct_num_workers=2"]),
    "in_memory": ("none", _IN_MEMORY),
    "in_memory+skip": ("none", [*_IN_MEMORY, _SKIP]),
    "in_memory+skip+no-transform-stats": ("no-transform-stats", [*_IN_MEMORY, _SKIP]),
    "default": ("none", []),
    "default+tf-compat-v1": ("tf-compat-v1", []),
}


def arm(name: str) -> tuple[str, list[str]]:
    """(code variant, config overrides) of a named arm."""
    import apache_beam

    if name not in ARMS:
        raise SystemExit(f"unknown arm {name!r}; one of: {', '.join(ARMS)}")
    variant, overrides = ARMS[name]
    return variant, [o.format(beam=apache_beam.__version__) for o in overrides]


def apply(variant: str) -> None:
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}; one of: {', '.join(VARIANTS)}")
    if variant == "no-transform-stats":
        from tfx import v1 as tfx

        tfx.components.Transform = functools.partial(tfx.components.Transform, disable_statistics=True)
    if variant == "tf-compat-v1":
        from tfx import v1 as tfx

        tfx.components.Transform = functools.partial(tfx.components.Transform, force_tf_compat_v1=True)


def main(argv: list[str]) -> int:
    if not argv:
        raise SystemExit(__doc__)
    apply(argv[0])
    from pipeline.cli import main as tfxp

    return tfxp(["run", *argv[1:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
