"""ServingBaseline: finding the served version and copying it, with and without TFX."""

from tfx.types import standard_artifacts

from components.evaluator.executor import without_empty_baseline
from components.serving_baseline import baseline
from components.serving_baseline.executor import NOTHING_SERVED, SOURCE_PROPERTY, Executor


def _saved_model(directory, marker: str):
    directory.mkdir(parents=True)
    (directory / "saved_model.pb").write_text(marker)
    (directory / "variables").mkdir()
    (directory / "variables" / "variables.index").write_text(marker)
    return directory


def test_versions_are_numeric_dirs_holding_a_saved_model(tmp_path):
    _saved_model(tmp_path / "2", "two")
    _saved_model(tmp_path / "10", "ten")
    (tmp_path / "11").mkdir()               # an unfinished push: no SavedModel yet
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
    assert (tmp_path / "out" / "Format-Serving" / "saved_model.pb").read_text() == "served"
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
