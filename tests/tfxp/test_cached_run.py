"""`tfxp run` with nothing changed since the last finished run (pipeline/run_fingerprint.py): it
prints that run's stored summary and exits as it did, without importing TFX; `--force`, a
changed input or `enable_cache: false` run the pipeline; a failed run saves no record.

The pipeline itself is a fake (`local_runner.run` and the ML Metadata summary monkeypatched):
what is tested is the wiring around it. tests/e2e/test_local_pipeline.py runs it for real.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys

import pytest

from pipeline import run_fingerprint
from pipeline.config import load_config
from tests.conftest import TINY_CSV
from tests.subprocesses import HOLDER, PROJECT, python
from tfxp.commands import EXIT_FAILED, EXIT_REFUSED
from tfxp.main import main


@dataclasses.dataclass
class FakeRun:
    """What `ops.runs.runs` gives `tfxp run`'s summary."""

    run_id: str
    pushed_to: str | None = None
    already_served: str | None = None
    failures: list = dataclasses.field(default_factory=lambda: ["auc = 0.5 is below the threshold 0.9"])


@pytest.fixture
def work(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(TINY_CSV, data / "data.csv")
    return tmp_path


def _sets(work, *more):
    # infra_validator never: the fingerprint then asks no docker or podman for the image.
    settings = [f"data.path={work / 'data'}", f"output_dir={work / 'out'}", "serving_check.infra_validator=never"]
    return [a for s in [*settings, *more] for a in ("--set", s)]


@pytest.fixture
def pipeline(monkeypatch, work):
    """A fake `local_runner.run`: each call is a new run id that writes the store (as a real run
    does) and completes refused, unless `fail` is set; notifications are recorded."""
    from ops import runs as ops_runs
    from pipeline import local_runner, notify

    state = {"runs": [], "notified": [], "fail": False, "push": False}

    def fake_run(config, verbose=False, wait_lock=False, notes=None, finished=None):
        run_id = f"run-{len(state['runs']) + 1}"
        state["runs"].append(run_id)
        os.makedirs(os.path.dirname(config.metadata_path), exist_ok=True)
        with open(config.metadata_path, "a") as store:
            store.write(f"{run_id}\n")
        if state["push"]:  # a new version in the serving directory, which the next run evaluates against
            version = os.path.join(config.serving_dir, str(len(state["runs"])))
            os.makedirs(version)
            open(os.path.join(version, "saved_model.pb"), "w").close()
        if state["fail"]:
            raise local_runner.PipelineFailed("Trainer", RuntimeError("out of luck"), "the.log")
        finished(str(work / f"{run_id}.log"))
        return str(work / f"{run_id}.log")

    monkeypatch.setattr(local_runner, "run", fake_run)
    monkeypatch.setattr(ops_runs, "runs", lambda path, name, limit: [FakeRun(state["runs"][-1])])
    monkeypatch.setattr(ops_runs, "format_run", lambda run: f"run {run.run_id}\n  blessed: no\n  pushed model: none")
    monkeypatch.setattr(notify, "notify", lambda config, event, text, details: state["notified"].append(event))
    return state


def test_a_rerun_with_nothing_changed_prints_the_stored_summary_and_exits_as_it_did(work, pipeline, capsys):
    assert main(["run", *_sets(work)]) == EXIT_REFUSED
    first = capsys.readouterr().out
    assert pipeline["runs"] == ["run-1"] and len(pipeline["notified"]) == 1
    summary = first[first.index("Pipeline finished") :]

    assert main(["run", *_sets(work)]) == EXIT_REFUSED
    again = capsys.readouterr().out
    assert pipeline["runs"] == ["run-1"]  # not run again
    assert len(pipeline["notified"]) == 1  # nor notified again
    head, rest = again.split("\n", 1)
    assert head.startswith("nothing changed since run run-1 (finished ")
    assert head.endswith("): its summary follows; tfxp run --force runs the pipeline again")
    assert rest == "\n" + summary  # verbatim, after a blank line
    assert "run run-1\n  blessed: no\n  pushed model: none\n" in rest


def test_force_runs_the_pipeline_and_saves_a_fresh_record(work, pipeline, capsys):
    main(["run", *_sets(work)])
    assert main(["run", "--force", *_sets(work)]) == EXIT_REFUSED
    assert pipeline["runs"] == ["run-1", "run-2"]
    assert "nothing changed" not in capsys.readouterr().out
    main(["run", *_sets(work)])
    assert pipeline["runs"] == ["run-1", "run-2"]
    assert "nothing changed since run run-2 " in capsys.readouterr().out


def test_a_changed_input_runs_the_pipeline_and_says_what_changed(work, pipeline, capsys):
    main(["run", *_sets(work)])
    capsys.readouterr()
    assert main(["run", *_sets(work, "trainer.train_steps=7")]) == EXIT_REFUSED
    assert pipeline["runs"] == ["run-1", "run-2"]
    out = capsys.readouterr().out
    assert out.startswith("changed since run run-1 (finished ")
    assert out.split("\n")[0].endswith("): config; running the pipeline")

    with open(work / "data" / "data.csv", "a") as f:
        f.write(open(TINY_CSV).read().splitlines()[1] + "\n")
    main(["run", *_sets(work, "trainer.train_steps=7")])
    assert pipeline["runs"] == ["run-1", "run-2", "run-3"]
    assert capsys.readouterr().out.split("\n")[0].endswith("): data; running the pipeline")


def test_a_run_that_pushed_is_not_reused_the_next_run_is(work, pipeline, capsys):
    """A push changes what the next run reads (ServingBaseline): that run is a real one; after
    it, with nothing pushed, the run after is reused."""
    pipeline["push"] = True
    main(["run", *_sets(work)])
    pipeline["push"] = False
    capsys.readouterr()
    main(["run", *_sets(work)])
    assert pipeline["runs"] == ["run-1", "run-2"]
    assert capsys.readouterr().out.split("\n")[0].endswith("): served; running the pipeline")
    main(["run", *_sets(work)])
    assert pipeline["runs"] == ["run-1", "run-2"]
    assert capsys.readouterr().out.startswith("nothing changed since run run-2 ")


def test_a_failed_run_saves_no_record(work, pipeline, capsys):
    pipeline["fail"] = True
    assert main(["run", *_sets(work)]) == EXIT_FAILED
    config = load_config(None, _sets(work)[1::2])
    assert not os.path.exists(run_fingerprint.record_path(config))
    assert os.listdir(os.path.dirname(run_fingerprint.record_path(config))) == ["metadata.sqlite"]
    pipeline["fail"] = False
    main(["run", *_sets(work)])
    assert pipeline["runs"] == ["run-1", "run-2"]  # nothing to reuse: the failed run is run again


def test_a_failed_forced_run_is_not_reused_either(work, pipeline, capsys):
    """The record of the run before stays, but the failed run changed the store it names."""
    main(["run", *_sets(work)])
    pipeline["fail"] = True
    assert main(["run", "--force", *_sets(work)]) == EXIT_FAILED
    pipeline["fail"] = False
    capsys.readouterr()
    main(["run", *_sets(work)])
    assert pipeline["runs"] == ["run-1", "run-2", "run-3"]
    assert capsys.readouterr().out.split("\n")[0].endswith("): store; running the pipeline")


def test_without_the_cache_every_run_is_real(work, pipeline):
    main(["run", *_sets(work, "enable_cache=false")])
    main(["run", *_sets(work, "enable_cache=false")])
    assert pipeline["runs"] == ["run-1", "run-2"]


def test_a_run_holding_the_lock_is_not_answered_from_the_record(work, pipeline, capsys):
    """Another run may be changing what the record describes: the real path says who holds it."""
    main(["run", *_sets(work)])
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(work / "out")],
        cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        capsys.readouterr()
        main(["run", *_sets(work)])
        assert pipeline["runs"] == ["run-1", "run-2"]  # the fake takes no lock: it ran
    finally:
        proc.kill()
        proc.wait()


def test_the_reused_path_imports_neither_tfx_nor_tensorflow_nor_beam(work):
    """The point of it: a fraction of a second, not TFX's start-up (about 7 s of CPU)."""
    args = _sets(work)
    save = (
        "from pipeline import run_fingerprint as rf; from pipeline.config import load_config; "
        f"c = load_config(None, {args[1::2]!r}); "
        "rf.save(rf.record_path(c), rf.run_inputs(c), 'the stored summary', run_id='r1', finished='then', exit_code=3)"
    )
    python("-c", save, check=True)
    check = (
        "import sys; from tfxp.main import main; "
        f"code = main(['run', *{args!r}]); "
        "print(sorted(m for m in ('tensorflow', 'tfx', 'apache_beam') if m in sys.modules)); sys.exit(code)"
    )
    result = python("-c", check)
    assert result.returncode == EXIT_REFUSED, result.stderr
    assert result.stdout == (
        "nothing changed since run r1 (finished then): its summary follows; "
        "tfxp run --force runs the pipeline again\n\nthe stored summary\n[]\n"
    )


def test_add_span_changes_what_the_next_run_compares(work, pipeline, capsys):
    """A `tfxp` command that writes what a run reads (here a new span under data.path) makes
    the next run a real one."""
    spans = work / "spans"
    (spans / "span-0").mkdir(parents=True)
    shutil.copy(TINY_CSV, spans / "span-0" / "data.csv")
    sets = _sets(work, f"data.path={spans}", "data.span_pattern=span-{SPAN}/*.csv")
    main(["run", *sets])
    assert main(["add-span", str(TINY_CSV), "--no-run", *sets]) == 0
    capsys.readouterr()
    main(["run", *sets])
    assert pipeline["runs"] == ["run-1", "run-2"]
    assert capsys.readouterr().out.split("\n")[0].endswith("): data; running the pipeline")


def test_promote_changes_what_the_next_run_compares(work, pipeline, capsys):
    """`tfxp promote` moves the stable label (models.config): the next run evaluates against
    another version, so it is a real one."""
    from contracts import model_config
    from contracts.model_config import CANARY, STABLE, ModelConfig
    from tests.serving import fake_saved_model

    serving = work / "out" / "serving" / "taxi"
    for version in (100, 200):
        fake_saved_model.write(serving / str(version), str(version))
    model_config.write_config(str(serving), ModelConfig("taxi", str(serving), (100, 200), {STABLE: 100, CANARY: 200}))
    main(["run", *_sets(work)])
    assert main(["promote", "--skip-checks", *_sets(work)]) == 0
    capsys.readouterr()
    main(["run", *_sets(work)])
    assert pipeline["runs"] == ["run-1", "run-2"]
    assert capsys.readouterr().out.split("\n")[0].endswith("): served; running the pipeline")
