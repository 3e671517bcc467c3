"""WarmWorkersRunner: Beam pipelines run in worker processes that outlive each pipeline."""

import glob
import os

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import beam_workers

ARGS = [
    "--runner=pipeline.beam_workers.WarmWorkersRunner",
    "--direct_running_mode=multi_processing",
    "--direct_num_workers=2",
]


def _run(tmp_path, name: str, args=ARGS, elements: int = 200) -> tuple[set[int], list[int]]:
    """A small pipeline writing `pid value` lines; returns the pids seen and the values."""
    prefix = str(tmp_path / name / "out")
    with beam.Pipeline(options=PipelineOptions(args)) as p:
        _ = (
            p
            | beam.Create(range(elements))
            | beam.Reshuffle()
            | beam.Map(lambda x: f"{os.getpid()} {x}")
            | beam.io.WriteToText(prefix)
        )
    lines = [line.split() for path in glob.glob(prefix + "*") for line in open(path)]
    return {int(pid) for pid, _ in lines}, sorted(int(value) for _, value in lines)


@pytest.fixture
def pools():
    yield beam_workers._POOLS
    for pool in beam_workers._POOLS.values():
        pool.stop()
    beam_workers._POOLS.clear()


def test_pipelines_share_two_worker_processes_that_outlive_them(tmp_path, pools):
    pids_1, values_1 = _run(tmp_path, "first")
    workers = set(pools[2].pids())
    pids_2, values_2 = _run(tmp_path, "second")

    assert values_1 == values_2 == list(range(200))
    assert len(workers) == 2 and os.getpid() not in workers
    assert pids_1 == workers and pids_2 == workers  # both workers used, the same both times
    assert set(pools[2].pids()) == workers


def test_a_worker_process_that_died_is_replaced_before_the_next_pipeline(tmp_path, pools):
    _run(tmp_path, "first")
    dead = pools[2]._procs[0]
    dead.kill()
    dead.wait()
    pids, values = _run(tmp_path, "second")
    assert values == list(range(200))
    assert dead.pid not in pids and len(set(pools[2].pids())) == 2


def test_stop_ends_the_worker_processes(tmp_path, pools):
    _run(tmp_path, "first")
    procs = list(pools[2]._procs)
    pools[2].stop()
    assert all(proc.returncode is not None for proc in procs)
    assert pools[2].pids() == []


def test_other_running_modes_are_refused_with_the_fix(tmp_path, pools):
    args = [a.replace("multi_processing", "in_memory") for a in ARGS]
    with pytest.raises(ValueError, match="Use --runner=DirectRunner for the other modes"):
        _run(tmp_path, "in_memory", args)
