"""pipeline/run_fingerprint.py (what `tfxp run` reuses a finished run by): every input a local run reads
changes the fingerprint, equal inputs keep it, a record is written whole, and computing it
imports neither TFX nor TensorFlow."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from pipeline import run_fingerprint as rf
from pipeline.config import load_config
from tests.conftest import TINY_CSV

NO_ENGINE = {"which": lambda name: None}  # never asks docker or podman in a test


@pytest.fixture
def run_dir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(TINY_CSV, data / "data.csv")
    requests = tmp_path / "requests"
    requests.mkdir()
    return tmp_path


def _config(run_dir, *overrides):
    return load_config(
        None,
        [
            f"data.path={run_dir / 'data'}",
            f"output_dir={run_dir / 'out'}",
            f"drift.serving_requests={run_dir / 'requests'}",
            *overrides,
        ],
    )


def _inputs(config):
    return rf.run_inputs(config, **NO_ENGINE)


def _version(serving, version, tags=("serve",)):
    """A served version as ServingBaseline's key reads it: a saved_model.pb TF Serving parses."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.meta_graphs.add().meta_info_def.tags.extend(tags)
    (serving / str(version)).mkdir(parents=True, exist_ok=True)
    (serving / str(version) / "saved_model.pb").write_bytes(saved.SerializeToString())


def test_equal_inputs_give_an_equal_fingerprint(run_dir):
    config = _config(run_dir)
    first, second = _inputs(config), _inputs(config)
    assert rf.fingerprint(first) == rf.fingerprint(second)
    assert rf.changed(first, second) == []
    assert [os.path.basename(entry[0]) for entry in first["data"]] == ["data.csv"]


def test_a_changed_config_changes_it(run_dir):
    before = _inputs(_config(run_dir))
    after = _inputs(_config(run_dir, "trainer.train_steps=7"))
    assert rf.changed(before, after) == ["config"]


def _package(root, name: str, module: str, source: str, monkeypatch):
    """An importable package `name` under `root` with one module; returns the package directory."""
    package = root / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / module).write_text(source)
    monkeypatch.syspath_prepend(str(root))
    return package


def test_a_changed_code_file_changes_it(run_dir, tmp_path, monkeypatch):
    package = _package(tmp_path / "code", "fingerprinted_pkg", "steps.py", "STEPS = 1\n", monkeypatch)
    monkeypatch.setattr(rf, "CODE_PACKAGES", (*rf.CODE_PACKAGES, "fingerprinted_pkg"))
    config = _config(run_dir)
    before = _inputs(config)
    (package / "steps.py").write_text("STEPS = 2\n")  # the same size: the content decides
    assert rf.changed(before, _inputs(config)) == ["code"]


def test_a_changed_run_fn_outside_the_project_changes_it(run_dir, tmp_path, monkeypatch):
    package = _package(
        tmp_path / "user_code", "user_trainer", "train.py", "def run_fn(fn_args):\n    return 1\n", monkeypatch
    )
    config = _config(run_dir, "trainer.run_fn=user_trainer.train.run_fn")
    before = _inputs(config)
    (package / "train.py").write_text("def run_fn(fn_args):\n    return 2\n")
    assert rf.changed(before, _inputs(config)) == ["model_code"]


def test_a_changed_or_added_data_file_changes_it(run_dir):
    config = _config(run_dir)
    before = _inputs(config)
    csv = run_dir / "data" / "data.csv"
    stat = csv.stat()
    os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # rewritten in place
    touched = _inputs(config)
    assert rf.changed(before, touched) == ["data"]
    shutil.copy(TINY_CSV, run_dir / "data" / "more.csv")
    assert rf.changed(touched, _inputs(config)) == ["data"]


def test_a_new_or_relabelled_served_model_changes_it(run_dir):
    from contracts import model_config

    config = _config(run_dir)
    serving = run_dir / "out" / "serving" / config.model_name
    _version(serving, 1)
    one = _inputs(config)
    _version(serving, 2)
    two = _inputs(config)
    assert rf.changed(one, two) == ["served"]
    model_config.write_config(
        str(serving), model_config.ModelConfig(config.model_name, str(serving), (1, 2), {"stable": 1})
    )
    assert rf.changed(two, _inputs(config)) == ["served"]


def test_what_changes_servings_cache_key_changes_the_fingerprint(run_dir):
    """`served` is a listing, not local_runner.served_state: each change of that key is one of it."""
    from contracts import model_config
    from pipeline.local_runner import served_state
    from pipeline.pipeline import statistics_history_dir

    config = _config(run_dir)
    assert rf.history_dir(config) == statistics_history_dir(config.pipeline_root)
    serving = run_dir / "out" / "serving" / config.model_name
    seen = []
    for change in (
        lambda: _version(serving, 1),
        lambda: _version(serving, 2),
        lambda: model_config.write_config(
            str(serving), model_config.ModelConfig(config.model_name, str(serving), (1, 2), {"stable": 1})
        ),
        lambda: _version(serving, 1, tags=("serve", "rewritten")),  # the stable one, rewritten in place
    ):
        change()
        seen.append((served_state(str(serving)), rf.fingerprint(_inputs(config))))
    keys, fingerprints = zip(*seen)
    assert len(set(keys)) == 3  # steps 1 and 3 serve the same file: the same key, rightly
    assert len(set(fingerprints)) == len(fingerprints)  # every step: a new fingerprint


def test_a_logged_request_or_an_accepted_span_changes_it(run_dir):
    config = _config(run_dir)
    before = _inputs(config)
    (run_dir / "requests" / "requests-1-host-2-abc.tfrecord").write_bytes(b"x")
    (run_dir / "requests" / "notes.txt").write_text("not a request log")  # DriftCheck reads no such file
    logged = _inputs(config)
    assert rf.changed(before, logged) == ["requests"]
    span = os.path.join(rf.history_dir(config), "span-0")
    os.makedirs(span)
    with open(os.path.join(span, "FeatureStats.pb"), "wb") as f:
        f.write(b"stats")
    assert rf.changed(logged, _inputs(config)) == ["accepted_statistics", "pipeline_root"]


def test_a_changed_metadata_store_changes_it(run_dir):
    config = _config(run_dir)
    os.makedirs(os.path.dirname(config.metadata_path))
    with open(config.metadata_path, "wb") as f:
        f.write(b"store")
    before = _inputs(config)
    with open(config.metadata_path, "ab") as f:
        f.write(b" and another run")
    assert rf.changed(before, _inputs(config)) == ["store"]


def test_a_record_matches_only_the_inputs_it_was_written_for(run_dir):
    config = _config(run_dir)
    path = rf.record_path(config)
    assert not rf.unchanged(config, rf.load(path), **NO_ENGINE)  # no record yet
    rf.save(path, _inputs(config), "the summary")
    record = rf.load(path)
    assert record["summary"] == "the summary"
    assert rf.unchanged(config, record, **NO_ENGINE)
    assert not rf.unchanged(_config(run_dir, "trainer.train_steps=7"), record, **NO_ENGINE)


def test_a_record_is_written_whole_or_not_at_all(run_dir, monkeypatch):
    config = _config(run_dir)
    path = rf.record_path(config)
    rf.save(path, _inputs(config), "the old summary")

    def fail_halfway(record, f, **kwargs):
        f.write(json.dumps(record)[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rf.json, "dump", fail_halfway)
    with pytest.raises(OSError):
        rf.save(path, _inputs(config), "the new summary")
    assert rf.load(path)["summary"] == "the old summary"
    assert os.listdir(os.path.dirname(path)) == ["last-run.json"]  # no partial file left


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": 0, "inputs": {}, "fingerprint": "x"}), "[]"])
def test_an_unreadable_or_foreign_record_is_never_reused(run_dir, content):
    config = _config(run_dir)
    path = rf.record_path(config)
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write(content)
    assert rf.load(path) is None
    assert not rf.unchanged(config, rf.load(path), **NO_ENGINE)


def test_it_imports_neither_tfx_nor_tensorflow(run_dir):
    """The point of it: deciding costs a fraction of a second, not TFX's start-up."""
    code = (
        "import sys; from pipeline import run_fingerprint as rf; from pipeline.config import load_config; "
        f"c = load_config(None, ['data.path={run_dir / 'data'}', 'output_dir={run_dir / 'out'}']); "
        "rf.fingerprint(rf.run_inputs(c, which=lambda name: None)); "
        "print(sorted(m for m in ('tensorflow', 'tfx', 'apache_beam') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_run_without_the_cache_is_never_reused(run_dir):
    config = _config(run_dir, "enable_cache=false")
    rf.save(rf.record_path(config), _inputs(config), "the summary")
    assert not rf.unchanged(config, rf.load(rf.record_path(config)), **NO_ENGINE)


def test_a_changed_dependency_changes_it(run_dir, monkeypatch):
    config = _config(run_dir)
    before = _inputs(config)
    monkeypatch.setattr(rf, "runtime_versions", lambda: [*before["runtime"], "some-dependency==2.0"])
    assert rf.changed(before, _inputs(config)) == ["runtime"]


def test_what_a_run_changes_itself_is_kept_as_it_read_it(run_dir):
    """A run's own push or newly accepted span makes the next run a real one; the store it
    records in, and AnomaliesGate's rewrite of an accepted span's statistics, do not."""
    config = _config(run_dir)
    span = run_dir / "out" / "pipelines" / config.pipeline_name / "AcceptedStatistics" / "span-0"
    span.mkdir(parents=True)
    (span / "FeatureStats.pb").write_bytes(b"statistics")
    os.makedirs(os.path.dirname(config.metadata_path))
    with open(config.metadata_path, "wb") as f:
        f.write(b"store")
    start = _inputs(config)
    with open(config.metadata_path, "ab") as f:
        f.write(b" and this run")
    (span / "FeatureStats.pb").write_bytes(b"statistics")  # the same file again, at another time
    os.utime(span / "FeatureStats.pb", ns=(1, 1))
    end = _inputs(config)
    assert rf.changed(start, end) == ["accepted_statistics", "store"]
    assert rf.own_changes(start, end) == []
    assert rf.record_inputs(start, end) == end

    (span.parent / "span-1").mkdir()
    (span.parent / "span-1" / "FeatureStats.pb").write_bytes(b"newly accepted")
    _version(pathlib.Path(config.serving_dir), 1796000000)
    end = _inputs(config)
    assert rf.own_changes(start, end) == ["accepted_statistics", "served"]
    saved = rf.record_inputs(start, end)
    assert saved["served"] == start["served"] and saved["store"] == end["store"]
    assert rf.differences({"inputs": saved, "fingerprint": rf.fingerprint(saved)}, end) == [
        "accepted_statistics",
        "served",
    ]
