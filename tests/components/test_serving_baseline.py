"""ServingBaseline: finding the served version and copying it, with and without TFX."""

from tfx.types import standard_artifacts

from components.evaluator.executor import without_empty_baseline
from components.serving_baseline import baseline
from components.serving_baseline.executor import NOTHING_SERVED, SOURCE_PROPERTY, Executor
from tests.serving import fake_saved_model


def _saved_model(directory, marker: str):
    return fake_saved_model.write(directory, marker)


def test_versions_are_numeric_dirs_holding_a_saved_model(tmp_path):
    _saved_model(tmp_path / "2", "two")
    _saved_model(tmp_path / "10", "ten")
    (tmp_path / "11").mkdir()  # an unfinished push: no SavedModel yet
    _saved_model(tmp_path / "backup", "x")  # not a version
    assert baseline.served_versions(str(tmp_path)) == [2, 10]
    assert baseline.latest_served(str(tmp_path)) == str(tmp_path / "10")


def test_nothing_served(tmp_path):
    assert baseline.served_versions(str(tmp_path / "missing")) == []
    assert baseline.latest_served(str(tmp_path)) is None


def test_copy_tree_copies_nested_files(tmp_path):
    source = _saved_model(tmp_path / "src", "m")
    baseline.copy_tree(str(source), str(tmp_path / "dst"))
    assert (tmp_path / "dst" / "variables" / "variables.index").read_text() == "m"
    assert fake_saved_model.marker(tmp_path / "dst") == "m"


def _run_executor(tmp_path, serving_dir):
    candidate = standard_artifacts.Model()
    candidate.uri = str(tmp_path / "candidate")
    _saved_model(tmp_path / "candidate" / "Format-Serving", "candidate")
    output = standard_artifacts.Model()
    output.uri = str(tmp_path / "out")
    Executor().Do({"model": [candidate]}, {"baseline_model": [output]}, {"serving_dir": str(serving_dir)})
    return output


def test_executor_takes_the_newest_served_model(tmp_path):
    serving = tmp_path / "serving"
    _saved_model(serving / "1", "old")
    _saved_model(serving / "3", "served")
    output = _run_executor(tmp_path, serving)
    assert fake_saved_model.marker(tmp_path / "out" / "Format-Serving") == "served"
    assert output.get_string_custom_property(SOURCE_PROPERTY) == str(serving / "3")


def test_executor_leaves_the_baseline_empty_before_the_first_push(tmp_path):
    output = _run_executor(tmp_path, tmp_path / "serving")
    assert not (tmp_path / "out" / "Format-Serving").exists()
    assert not baseline.holds_serving_model(output.uri)
    assert output.get_string_custom_property(SOURCE_PROPERTY) == NOTHING_SERVED


def _model_artifact(uri):
    artifact = standard_artifacts.Model()
    artifact.uri = str(uri)
    return artifact


def test_evaluator_drops_an_empty_baseline_and_keeps_a_real_one(tmp_path):
    _saved_model(tmp_path / "served" / "Format-Serving", "served")
    (tmp_path / "empty").mkdir()
    candidate, served, empty = (_model_artifact(tmp_path / n) for n in ("candidate", "served", "empty"))
    assert baseline.holds_serving_model(served.uri) and not baseline.holds_serving_model(empty.uri)

    inputs = {"model": [candidate], "baseline_model": [served]}
    assert without_empty_baseline(inputs) == inputs
    assert without_empty_baseline({"model": [candidate], "baseline_model": [empty]}) == {"model": [candidate]}
    assert without_empty_baseline({"model": [candidate]}) == {"model": [candidate]}


def test_versions_cut_short_are_skipped_saying_which_and_why(tmp_path, caplog):
    _saved_model(tmp_path / "1", "whole")
    cut = _saved_model(tmp_path / "2", "cut")
    data = (cut / "saved_model.pb").read_bytes()
    (cut / "saved_model.pb").write_bytes(data[: len(data) // 2])
    sharded = fake_saved_model.write(tmp_path / "3", "sharded", shards=2)
    (sharded / "variables" / "variables.data-00001-of-00002").unlink()
    (tmp_path / "4").mkdir()  # a copy killed before its first file
    assert baseline.served_versions(str(tmp_path)) == [1]
    reasons = {record.getMessage().split(":", 1)[0]: record.getMessage() for record in caplog.records}
    assert "does not parse" in reasons[f"skipping {tmp_path / '2'}"]
    assert "shard(s) [1] of 2 are missing" in reasons[f"skipping {tmp_path / '3'}"]
    assert "no saved_model.pb" in reasons[f"skipping {tmp_path / '4'}"]


def test_a_version_is_published_whole_or_not_at_all(tmp_path, monkeypatch):
    source = _saved_model(tmp_path / "model", "new")
    serving = tmp_path / "serving"
    version, path = baseline.publish_version(str(source), str(serving), 5)
    assert (version, path) == (5, str(serving / "5"))
    assert fake_saved_model.marker(serving / "5") == "new"
    assert sorted(p.name for p in serving.iterdir()) == ["5"]  # no hidden copy left

    import tensorflow as tf

    real_copy, copied = tf.io.gfile.copy, []

    def copy_then_fail(src, dst, overwrite=False):
        if len(copied) == 2:
            raise OSError(28, "No space left on device", dst)
        copied.append(dst)
        real_copy(src, dst, overwrite=overwrite)

    monkeypatch.setattr(tf.io.gfile, "copy", copy_then_fail)
    try:
        baseline.publish_version(str(source), str(serving), 6)
    except OSError as err:
        assert err.errno == 28
    else:
        raise AssertionError("the failing copy was not reported")
    assert sorted(p.name for p in serving.iterdir()) == ["5"]  # neither 6 nor its hidden copy
    assert baseline.served_versions(str(serving)) == [5]


def test_a_copy_that_is_not_a_complete_saved_model_is_refused(tmp_path):
    source = _saved_model(tmp_path / "model", "x")
    (source / "saved_model.pb").write_bytes(b"\x0a\xff")  # a truncated message
    serving = tmp_path / "serving"
    try:
        baseline.publish_version(str(source), str(serving), 7)
    except OSError as err:
        assert "not a complete SavedModel" in str(err)
    else:
        raise AssertionError("an incomplete copy was published")
    assert list(serving.iterdir()) == []


def test_the_same_model_is_told_apart_by_tensorflows_fingerprint(tmp_path):
    from tensorflow.core.protobuf import fingerprint_pb2

    def fingerprint(directory, checkpoint_hash, uuid):
        (directory / "fingerprint.pb").write_bytes(
            fingerprint_pb2.FingerprintDef(
                saved_model_checksum=len(uuid) + checkpoint_hash,
                graph_def_program_hash=2,
                checkpoint_hash=checkpoint_hash,
                uuid=uuid,
            ).SerializeToString()
        )

    one, copy, other = (_saved_model(tmp_path / n, n) for n in ("one", "copy", "other"))
    fingerprint(one, 3, "a")
    fingerprint(copy, 3, "bb")  # the same model saved again: uuid and saved_model.pb's checksum differ
    fingerprint(other, 4, "a")
    assert baseline.same_saved_model(str(one), str(copy))
    assert not baseline.same_saved_model(str(one), str(other))
    (copy / "fingerprint.pb").unlink()
    assert not baseline.same_saved_model(str(one), str(copy))  # unknown: pushed


def test_a_push_record_is_published_with_the_version_and_left_out_of_the_comparison(tmp_path):
    source = _saved_model(tmp_path / "model", "m")
    (source / "fingerprint.pb").write_bytes(b"\x10\x07")  # graph_def_program_hash: 7
    serving = tmp_path / "serving"
    record = b'{"run_id": "r1"}'
    _, path = baseline.publish_version(str(source), str(serving), 8, extra_files={baseline.PUSH_RECORD: record})
    assert (serving / "8" / baseline.PUSH_RECORD).read_bytes() == record
    assert baseline.read_push_record(path) == {"run_id": "r1"}
    assert baseline.read_push_record(str(source)) is None
    assert baseline.incomplete_reason(path) is None and baseline.served_versions(str(serving)) == [8]
    assert baseline.same_saved_model(str(source), path)  # the record is not part of the model
