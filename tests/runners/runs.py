"""The pipeline on the tiny sample, as the cluster runners' tiers run it (tests/flink, tests/spark)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from tests.conftest import TINY_CSV

PROJECT = pathlib.Path(__file__).resolve().parents[2]
# The SDK harness a cluster's workers start (Beam's PROCESS environment): Beam's boot program in
# the project's runtime (docs/beam.md). The Flink and Spark clusters use the same one.
HARNESS = PROJECT / "scripts" / "flink" / "sdk-harness.sh"


def portable_overrides(runner: str, job_endpoint: str, parallelism: int | None = None) -> list[str]:
    """`beam` config for a local cluster: its job server, harnesses started by its workers."""
    extra = [
        f"--job_endpoint={job_endpoint}",
        "--environment_type=PROCESS",
        "--environment_config=" + json.dumps({"command": str(HARNESS)}),
        # Keep a worker's harness from one task of a job to the next, not one per task.
        "--environment_cache_millis=60000",
        *([f"--parallelism={parallelism}"] if parallelism else []),
        "--no_pipeline_type_check",
    ]
    return [f"beam.runner={runner}", "beam.extra_args=" + json.dumps(extra)]


def tfxp_run_command(output_dir: pathlib.Path, overrides: list[str]) -> list[str]:
    sets = [f"output_dir={output_dir}", f"data.path={TINY_CSV}", "enable_cache=false", "tuner.enabled=false"]
    return [sys.executable, "-m", "tfxp", "run"] + [a for s in [*sets, *overrides] for a in ("--set", s)]


def run_pipeline(output_dir: pathlib.Path, overrides: list[str]) -> None:
    """`tfxp run` into output_dir (its log beside it, OUTPUT_DIR.log); it must succeed."""
    log = output_dir.with_suffix(".log")
    with open(log, "w") as f:
        done = subprocess.run(
            tfxp_run_command(output_dir, overrides), stdout=f, stderr=subprocess.STDOUT, timeout=1800, check=False
        )
    assert done.returncode == 0, f"tfxp run exited {done.returncode}; see {log}"
