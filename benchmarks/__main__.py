"""`python -m benchmarks TIER`: runs a benchmark tier and prints its table.

  quick    15k rows: our pipeline, the TFX taxi template and scikit-learn, side by side
  scale    our pipeline on --rows (e.g. 150000 1500000): rows/s per component
  beam     StatisticsGen, Transform, Evaluator under each DirectRunner mode and PortableRunner
  serving  the pushed model in-process (batch 1, 64) and through `tfxp serve` (REST, gRPC)
  data     only generate a data set of --rows rows

Run inside the runtime: scripts/runtime.sh python -m benchmarks quick  (or `make bench`).
Outputs go under build/bench/ (git-ignored).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

from benchmarks import measure

WORK = "build/bench"
SAMPLE_DIR = "package://tfx/examples/chicago_taxi_pipeline/data/simple"


def _header(title: str) -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    return f"{title} ({now:%Y-%m-%d %H:%M} UTC)\nmachine: {measure.machine()}"


def data_path(rows: int, seed: int) -> str:
    """The bundled sample for 15k rows (what the quick tier compares on); else generated."""
    from pipeline.config import resolve_path

    if rows <= 0:
        return resolve_path(SAMPLE_DIR)
    from benchmarks import datagen

    out = os.path.abspath(os.path.join(WORK, "data", f"rows{rows}-seed{seed}"))
    datagen.generate(rows, out, seed)
    return out


def quick(args) -> str:
    from benchmarks import endtoend

    data = data_path(args.rows, args.seed)
    ours, template = [], []
    # Alternate the two pipelines so that load from elsewhere hits both alike.
    for repeat in range(args.repeats):
        ours.append(endtoend.run_ours("ours", data, os.path.join(WORK, "quick", f"ours-{repeat}")))
        template.append(endtoend.run_template(data, os.path.join(WORK, "quick", f"template-{repeat}")))
    sklearn = endtoend.run_sklearn(endtoend.examples_dir(ours[-1].output_dir))
    return _header(f"Quick tier: {'the bundled sample' if args.rows <= 0 else f'{args.rows} rows'}, "
                   f"Tuner off, cache off, {args.repeats} run(s) each, medians") + "\n\n" + \
        endtoend.comparison_table(ours, template, sklearn)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="tier", required=True)
    q = sub.add_parser("quick", help="our pipeline vs the TFX taxi template vs scikit-learn")
    q.add_argument("--rows", type=int, default=0, help="rows (default 0: the bundled ~15k-row sample)")
    q.add_argument("--repeats", type=int, default=1, help="runs of each pipeline, alternated (default 1)")
    d = sub.add_parser("data", help="generate a data set")
    d.add_argument("--rows", type=int, required=True)
    for p in (q, d):
        p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    args = parser.parse_args(argv)
    if args.tier == "data":
        print(data_path(args.rows, args.seed))
        return 0
    report = {"quick": quick}[args.tier](args)
    print(report)
    os.makedirs(WORK, exist_ok=True)
    with open(os.path.join(WORK, f"{args.tier}-latest.txt"), "w") as f:
        f.write(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
