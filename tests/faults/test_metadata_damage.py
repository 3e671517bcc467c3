"""A damaged ML Metadata store (truncated, overwritten, a page of garbage): every command that
reads it ends with one line naming the file, saying the served models are untouched and what
to do; `tfxp doctor` finds it and `--fix` moves it and the pipeline root aside, kept, so the
next run starts a fresh store and compares against the model served.

The fast tests build a real store (ML Metadata's SQLite) and damage it; the slow one runs the
pipeline, damages its store, and runs it again after `tfxp doctor --fix`.
"""

from __future__ import annotations

import os
import pathlib
import re

import pytest

from tests.serving import fake_saved_model
from tests.subprocesses import PROJECT, error_lines, python, versions

PIPELINE = "taxi-big-tipper"
TINY_DATA = PROJECT / "tests" / "data"


def _truncate(path: pathlib.Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _overwrite_head(path: pathlib.Path) -> None:
    with open(path, "r+b") as f:
        f.write(b"x" * 100)


def _garbage_page(path: pathlib.Path) -> None:
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(bytes(range(256)) * 32)


DAMAGE = {"truncated": _truncate, "overwritten": _overwrite_head, "garbage page": _garbage_page}


def _store_with_records(path: pathlib.Path) -> None:
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as mlmd

    from pipeline.metadata import sqlite_config

    store = metadata_store.MetadataStore(sqlite_config(str(path)))
    artifact_type = store.put_artifact_type(mlmd.ArtifactType(name="Examples"))
    store.put_artifacts([mlmd.Artifact(type_id=artifact_type, uri=f"/outputs/{i}") for i in range(300)])


@pytest.fixture
def damaged(request, tmp_path):
    """An output directory whose store is damaged (truncated, unless the test says how), with a
    served version and accepted statistics."""
    out = tmp_path / "out"
    store = out / "metadata" / PIPELINE / "metadata.sqlite"
    store.parent.mkdir(parents=True)
    _store_with_records(store)
    DAMAGE[getattr(request, "param", "truncated")](store)
    # A stray journal: SQLite drops one whose header it cannot read (a read-only connection
    # cannot, and reported the store locked).
    (store.parent / "metadata.sqlite-journal").write_bytes(b"a journal of the damaged store")
    root = out / "pipelines" / PIPELINE
    (root / "Trainer" / "model" / "7").mkdir(parents=True)
    (root / "Trainer" / "model" / "7" / "weights").write_text("an old execution's output")
    (root / "AcceptedStatistics" / "span-0").mkdir(parents=True)
    (root / "AcceptedStatistics" / "span-0" / "FeatureStats.pb").write_text("accepted statistics")
    serving = out / "serving" / "taxi"
    fake_saved_model.write(serving / "1796000000", "served")
    return out


def _settings(out: pathlib.Path) -> list[str]:
    return ["--set", f"output_dir={out}", "--set", f"data.path={TINY_DATA}"]


def _one_line_about(out: pathlib.Path, stderr: str) -> str:
    [line] = error_lines(stderr)
    store = out / "metadata" / PIPELINE / "metadata.sqlite"
    assert line.startswith(f"error: the ML Metadata store {store} is damaged (")
    assert "are untouched" in line and "`tfxp doctor --fix`" in line
    return line


@pytest.mark.parametrize("damaged", list(DAMAGE), indirect=True)
def test_commands_that_read_the_store_name_it_in_one_line(damaged):
    for command in (["runs"], ["lineage"]):
        shown = python("-m", "tfxp", *command, *_settings(damaged))
        assert shown.returncode == 1, shown.stderr[-2000:]
        _one_line_about(damaged, shown.stderr)


def test_a_run_on_a_damaged_store_stops_before_any_component(damaged):
    run = python("-m", "tfxp", "run", *_settings(damaged))
    assert run.returncode == 1, run.stderr[-2000:]
    line = _one_line_about(damaged, run.stderr)
    assert str(damaged / "serving" / "taxi") in line
    assert "[1/" not in run.stdout  # no component started
    assert versions(damaged / "serving" / "taxi") == ["1796000000"]


def test_doctor_finds_the_store_and_fix_moves_it_aside_kept(damaged):
    store = damaged / "metadata" / PIPELINE / "metadata.sqlite"
    root = damaged / "pipelines" / PIPELINE
    before = store.read_bytes()
    found = python("-m", "tfxp", "doctor", *_settings(damaged))
    assert found.returncode == 1
    assert f"{store}: the ML Metadata store does not open (" in found.stdout
    assert "run `tfxp doctor --fix` to move the store aside" in found.stdout

    fixed = python("-m", "tfxp", "doctor", "--fix", *_settings(damaged))
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    [kept_store] = store.parent.glob("metadata.sqlite.damaged-*")
    assert re.fullmatch(r"metadata\.sqlite\.damaged-\d{8}T\d{6}Z", kept_store.name)
    assert kept_store.read_bytes() == before
    assert not store.exists() and not (store.parent / "metadata.sqlite-journal").exists()
    [kept_root] = root.parent.glob(f"{PIPELINE}.damaged-*")
    assert (kept_root / "Trainer" / "model" / "7" / "weights").read_text() == "an old execution's output"
    assert sorted(p.name for p in root.iterdir()) == ["AcceptedStatistics"]  # the drift history stays
    assert (root / "AcceptedStatistics" / "span-0" / "FeatureStats.pb").read_text() == "accepted statistics"
    assert versions(damaged / "serving" / "taxi") == ["1796000000"]

    again = python("-m", "tfxp", "doctor", *_settings(damaged))
    assert again.returncode == 0 and "no leftovers" in again.stdout


def test_a_sound_or_empty_store_is_not_damaged(tmp_path):
    from pipeline.metadata import store_damage

    store = tmp_path / "metadata.sqlite"
    _store_with_records(store)
    assert store_damage(str(store)) is None
    store.write_bytes(b"")
    assert store_damage(str(store)) is None  # ML Metadata makes a new store in an empty file
    assert store_damage(str(tmp_path / "absent.sqlite")) is None


@pytest.mark.slow
def test_after_doctor_fix_the_next_run_compares_against_the_served_model(taxi_config, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    rows = pathlib.Path(taxi_config.data.path, "data.csv").read_text().splitlines(keepends=True)[:3001]
    (data / "data.csv").write_text("".join(rows))
    settings = [
        "--set",
        f"data.path={data}",
        "--set",
        f"output_dir={out}",
        "--set",
        "tuner.enabled=false",
        "--set",
        "trainer.train_steps=300",
        "--set",
        "trainer.eval_steps=10",
    ]

    def run():
        return python("-m", "tfxp", "run", *settings)

    first = run()
    assert first.returncode == 0, first.stderr[-3000:]
    serving = out / "serving" / "taxi"
    [served] = versions(serving)
    _truncate(out / "metadata" / PIPELINE / "metadata.sqlite")

    refused = run()
    assert refused.returncode == 1
    _one_line_about(out, refused.stderr)
    assert python("-m", "tfxp", "doctor", "--fix", *settings).returncode == 0

    after = run()
    # 0: a better model pushed; 3: refused, not better than the served one. Either way it was
    # compared against the served model, which a fresh store does not know of.
    assert after.returncode in (0, 3), after.stderr[-3000:]
    [baseline] = [line for line in after.stdout.splitlines() if line.strip().startswith("baseline:")]
    assert served in baseline, after.stdout
    # The summary's gate label says what the evaluation did: compared with the served version.
    assert "first-run gate" not in after.stdout and "gate from the data, besides the baseline: auc" in after.stdout
    assert served in versions(serving)
    assert "data span: 0" in after.stdout
