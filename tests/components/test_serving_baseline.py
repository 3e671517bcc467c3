"""ServingBaseline: the served version copied into the baseline artifact, with and without TFX;
the Evaluator without an empty baseline; the same model told apart by its fingerprint."""

from tfx.types import standard_artifacts

from components.evaluator.executor import without_empty_baseline
from components.serving_baseline import baseline
from components.serving_baseline.executor import NOTHING_SERVED, SOURCE_PROPERTY, Executor
from contracts.saved_model import PUSH_RECORD
from contracts.serving_dir import incomplete_reason, publish_version, read_push_record, served_versions
from tests.serving import fake_saved_model


def _saved_model(directory, marker: str):
    return fake_saved_model.write(directory, marker)


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
    _, path = publish_version(str(source), str(serving), 8, extra_files={PUSH_RECORD: record})
    assert (serving / "8" / PUSH_RECORD).read_bytes() == record
    assert read_push_record(path) == {"run_id": "r1"}
    assert read_push_record(str(source)) is None
    assert incomplete_reason(path) is None and served_versions(str(serving)) == [8]
    assert baseline.same_saved_model(str(source), path)  # the record is not part of the model
