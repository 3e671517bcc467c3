"""The Trainer alone: `run_fn` on a scale run's transformed splits, called as TFX's Trainer calls it.

`python -m benchmarks trainer --rows 150000` reads the newest Transform outputs of
`python -m benchmarks scale --rows 150000` (build/bench/scale/rows150000) and runs `run_fn` in a
fresh process per repeat, with the same config overrides (`--set`). Each run prints one JSON
line: run_fn's seconds, the garbage collector's seconds and its longest pause (the tf.data
stalls of benchmarks/README.md were 30-60 s collections), and the model exported. The parent
measures the process's wall time, peak PSS and cores busy.

The child: python -m benchmarks.trainer TRANSFORM_GRAPH TRANSFORMED_EXAMPLES WORK [--set K=V ...]
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import sys
import time

from benchmarks import measure

RESULT = "trainer-result: "


def transform_outputs(scale_dir: str) -> tuple[str, str]:
    """(transform_graph, transformed_examples) of the newest Transform execution under a scale
    run's output directory; a clear error when the scale run is missing."""
    pattern = os.path.join(scale_dir, "pipelines", "*", "Transform")
    graphs = sorted(glob.glob(os.path.join(pattern, "transform_graph", "*")), key=os.path.getmtime)
    examples = sorted(glob.glob(os.path.join(pattern, "transformed_examples", "*")), key=os.path.getmtime)
    if not graphs or not examples:
        raise SystemExit(
            f"no Transform outputs under {scale_dir}: run `python -m benchmarks scale --rows N` first, "
            "with the same --set overrides"
        )
    return graphs[-1], examples[-1]


def compare(rows: list[int], repeats: int, overrides: list[str], work: str) -> str:
    """Runs run_fn `repeats` times per data set size, each in a fresh process; the table."""
    lines = [
        "| rows | run | run_fn, s | process wall, s | cores busy | peak PSS, GiB | gc, s | longest gc, s | exported |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    medians = []
    for count in rows:
        graph, examples = transform_outputs(os.path.join(work, "scale", f"rows{count}"))
        seconds = []
        for repeat in range(repeats):
            out = os.path.abspath(os.path.join(work, "trainer", f"rows{count}-{repeat}"))
            os.makedirs(out, exist_ok=True)
            cmd = [sys.executable, "-m", "benchmarks.trainer", graph, examples, out]
            cmd += [a for s in overrides for a in ("--set", s)]
            log = os.path.join(out, "trainer.log")
            measured = measure.run(cmd, log_path=log)
            if measured.returncode != 0:
                raise SystemExit(f"run_fn failed (exit {measured.returncode}); its log: {log}")
            result = _result(log)
            seconds.append(result["run_fn_seconds"])
            cores = (
                measured.cores_between(measured.samples[0].at, measured.samples[-1].at) if measured.samples else None
            )
            cores_cell = "-" if cores is None else f"{cores:.2f}"  # too short a run to sample twice
            lines.append(
                f"| {count} | {repeat + 1} | {result['run_fn_seconds']:.1f} | {measured.seconds:.1f} | "
                f"{cores_cell} | {measure.gib(measured.peak_tree_pss)} | {result['gc_seconds']:.1f} | "
                f"{result['longest_gc_seconds']:.1f} | {result['exported']} |"
            )
        medians.append(f"{count} rows: median run_fn {measure.median(seconds):.1f} s over {len(seconds)} run(s)")
    return "\n".join(lines) + "\n\n" + "\n".join(medians)


def _result(log: str) -> dict:
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(RESULT):
                return json.loads(line[len(RESULT) :])
    raise SystemExit(f"run_fn printed no result; its log: {log}")


def _run(graph: str, examples: str, work: str, overrides: list[str]) -> dict:
    """Calls run_fn as TFX's Trainer executor does, timing the garbage collector."""
    from absl import logging
    from tfx.components.trainer import fn_args_utils
    from tfx.components.util import tfxio_utils
    from tfx.types import standard_artifacts

    from contracts.saved_model import ASSETS_EXTRA, TRAINER_CHOICE
    from models import model as model_lib
    from pipeline.config import load_config

    artifact = standard_artifacts.Examples()
    artifact.uri = examples
    artifact.split_names = json.dumps(["train", "eval"])
    accessor = fn_args_utils.DataAccessor(
        tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([artifact], []),
        record_batch_factory=None,
        data_view_decode_fn=None,
    )
    config = load_config(None, overrides)
    logging.set_verbosity(logging.INFO)
    pauses: list[float] = []
    started = [0.0]

    def timed(phase, info):
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(timed)
    model_dir = os.path.join(work, "model")
    began = time.perf_counter()
    model_lib.run_fn(
        fn_args_utils.FnArgs(
            train_files=[os.path.join(examples, "Split-train", "*")],
            eval_files=[os.path.join(examples, "Split-eval", "*")],
            transform_output=graph,
            serving_model_dir=model_dir,
            model_run_dir=os.path.join(work, "logs"),
            train_steps=None,
            eval_steps=None,
            custom_config=config.model_code_config(),
            data_accessor=accessor,
        )
    )
    seconds = time.perf_counter() - began
    gc.callbacks.remove(timed)
    with open(os.path.join(model_dir, ASSETS_EXTRA, TRAINER_CHOICE), encoding="utf-8") as f:
        exported = json.load(f).get("model", "?")
    return {
        "run_fn_seconds": seconds,
        "gc_seconds": sum(pauses),
        "longest_gc_seconds": max(pauses, default=0.0),
        "exported": exported,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trainer")
    parser.add_argument("transform_graph")
    parser.add_argument("transformed_examples")
    parser.add_argument("work")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args(argv)
    result = _run(args.transform_graph, args.transformed_examples, args.work, args.set)
    print(RESULT + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
