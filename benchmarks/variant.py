"""`tfxp run` with a proposed change applied in this process only, to measure its effect.

The pipeline code stays as it is; a variant patches what `create_pipeline` calls, in the
benchmark's own subprocess:

  no-transform-stats  Transform(disable_statistics=True): no pre/post-transform TFDV pass

Usage: python -m benchmarks.variant VARIANT [tfxp run options...]
"""

from __future__ import annotations

import functools
import sys

VARIANTS = ("none", "no-transform-stats")


def apply(variant: str) -> None:
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}; one of: {', '.join(VARIANTS)}")
    if variant == "no-transform-stats":
        from tfx import v1 as tfx

        tfx.components.Transform = functools.partial(tfx.components.Transform, disable_statistics=True)


def main(argv: list[str]) -> int:
    if not argv:
        raise SystemExit(__doc__)
    apply(argv[0])
    from pipeline.cli import main as tfxp

    return tfxp(["run", *argv[1:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
