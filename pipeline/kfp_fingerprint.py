"""The DataFingerprint step of the compiled pipeline: a hash of the files ExampleGen will read.

KFP caches a task by its parameters and input artifacts (backend/src/v2/cacheutils/cache.go
`GenerateCacheKey`); ExampleGen's only inputs are parameters that name a directory, so new
files under the same `data_root` would be a cache hit and the old examples, model and push
would be reused. This step runs uncached before ExampleGen and hands it the content
fingerprint (components/example_gen/fingerprint.py: every file any split pattern can match, spans
included) as a parameter: new or edited data is a cache miss, unchanged data a hit.
"""

from __future__ import annotations

import argparse
import os
import sys

COMMAND = ["python", "-m", "pipeline.kfp_fingerprint"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.kfp_fingerprint")
    parser.add_argument("--input-base", required=True)
    parser.add_argument("--pattern", action="append", required=True, help="a split pattern ({SPAN} allowed)")
    parser.add_argument("--output-file", required=True, help="the output parameter's file")
    args = parser.parse_args(argv)

    from components.example_gen.fingerprint import content_fingerprint, files_for

    files = files_for(args.input_base, args.pattern)
    if not files:
        print(
            f"error: no file under {args.input_base} matches {', '.join(args.pattern)}; put the data there "
            "or pass the data_root run parameter",
            file=sys.stderr,
        )
        return 2
    fingerprint = content_fingerprint(args.input_base, args.pattern)
    os.makedirs(os.path.dirname(args.output_file) or ".", exist_ok=True)
    with open(args.output_file, "w") as f:
        f.write(fingerprint)
    print(f"{len(files)} files under {args.input_base}: {fingerprint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
