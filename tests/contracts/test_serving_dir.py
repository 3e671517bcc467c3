"""The serving directory: the versions that hold a complete SavedModel, the ones cut short, and
the atomic publish of a new version."""

import subprocess
import sys

from contracts import serving_dir
from tests.serving import fake_saved_model


def _saved_model(directory, marker: str):
    return fake_saved_model.write(directory, marker)


def test_versions_are_numeric_dirs_holding_a_saved_model(tmp_path):
    _saved_model(tmp_path / "2", "two")
    _saved_model(tmp_path / "10", "ten")
    (tmp_path / "11").mkdir()  # an unfinished push: no SavedModel yet
    _saved_model(tmp_path / "backup", "x")  # not a version
    assert serving_dir.served_versions(str(tmp_path)) == [2, 10]
    assert serving_dir.latest_served(str(tmp_path)) == str(tmp_path / "10")


def test_nothing_served(tmp_path):
    assert serving_dir.served_versions(str(tmp_path / "missing")) == []
    assert serving_dir.latest_served(str(tmp_path)) is None


def test_copy_tree_copies_nested_files(tmp_path):
    source = _saved_model(tmp_path / "src", "m")
    serving_dir.copy_tree(str(source), str(tmp_path / "dst"))
    assert (tmp_path / "dst" / "variables" / "variables.index").read_text() == "m"
    assert fake_saved_model.marker(tmp_path / "dst") == "m"


def test_versions_cut_short_are_skipped_saying_which_and_why(tmp_path, caplog):
    _saved_model(tmp_path / "1", "whole")
    cut = _saved_model(tmp_path / "2", "cut")
    data = (cut / "saved_model.pb").read_bytes()
    (cut / "saved_model.pb").write_bytes(data[: len(data) // 2])
    sharded = fake_saved_model.write(tmp_path / "3", "sharded", shards=2)
    (sharded / "variables" / "variables.data-00001-of-00002").unlink()
    (tmp_path / "4").mkdir()  # a copy killed before its first file
    assert serving_dir.served_versions(str(tmp_path)) == [1]
    reasons = {record.getMessage().split(":", 1)[0]: record.getMessage() for record in caplog.records}
    assert "does not parse" in reasons[f"skipping {tmp_path / '2'}"]
    assert "shard(s) [1] of 2 are missing" in reasons[f"skipping {tmp_path / '3'}"]
    assert "no saved_model.pb" in reasons[f"skipping {tmp_path / '4'}"]


def test_a_version_is_published_whole_or_not_at_all(tmp_path, monkeypatch):
    source = _saved_model(tmp_path / "model", "new")
    serving = tmp_path / "serving"
    version, path = serving_dir.publish_version(str(source), str(serving), 5)
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
        serving_dir.publish_version(str(source), str(serving), 6)
    except OSError as err:
        assert err.errno == 28
    else:
        raise AssertionError("the failing copy was not reported")
    assert sorted(p.name for p in serving.iterdir()) == ["5"]  # neither 6 nor its hidden copy
    assert serving_dir.served_versions(str(serving)) == [5]


def test_a_copy_that_is_not_a_complete_saved_model_is_refused(tmp_path):
    source = _saved_model(tmp_path / "model", "x")
    (source / "saved_model.pb").write_bytes(b"\x0a\xff")  # a truncated message
    serving = tmp_path / "serving"
    try:
        serving_dir.publish_version(str(source), str(serving), 7)
    except OSError as err:
        assert "not a complete SavedModel" in str(err)
    else:
        raise AssertionError("an incomplete copy was published")
    assert list(serving.iterdir()) == []


def test_version_names_are_every_all_digit_directory_complete_or_not(tmp_path):
    _saved_model(tmp_path / "10", "ten")
    (tmp_path / "9").mkdir()  # cut short: a version all the same, which TF Serving would try
    (tmp_path / f"{serving_dir.PARTIAL_PREFIX}11").mkdir()
    (tmp_path / "backup").mkdir()
    assert serving_dir.version_names(str(tmp_path)) == ["9", "10"]
    assert serving_dir.version_names(str(tmp_path / "missing")) == []


def test_the_contracts_import_no_tensorflow_and_list_a_local_directory_without_it(tmp_path):
    (tmp_path / "1").mkdir()
    code = (
        "import sys\n"
        "from contracts import saved_model, serving_dir\n"
        f"assert serving_dir.version_names({str(tmp_path)!r}) == ['1']\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_extra_files_in_subdirectories_are_in_the_version_when_it_appears(tmp_path, monkeypatch):
    """The Pusher's model card (assets.extra/model_card.*) is written into the hidden copy: the
    version appears with it, and a card that cannot be written leaves no version at all."""
    source = _saved_model(tmp_path / "model", "new")
    serving = tmp_path / "serving"
    extra = {"tfxp-push.json": b"{}", "assets.extra/model_card.md": b"# card\n"}
    serving_dir.publish_version(str(source), str(serving), 5, extra_files=extra)
    assert (serving / "5" / "assets.extra" / "model_card.md").read_bytes() == b"# card\n"

    import tensorflow as tf

    real_open = tf.io.gfile.GFile

    def no_card(path, mode="r"):
        if str(path).endswith("model_card.md"):
            raise OSError(28, "No space left on device", path)
        return real_open(path, mode)

    monkeypatch.setattr(tf.io.gfile, "GFile", no_card)
    try:
        serving_dir.publish_version(str(source), str(serving), 6, extra_files=extra)
    except OSError as err:
        assert err.errno == 28
    else:
        raise AssertionError("the failing card was not reported")
    assert sorted(p.name for p in serving.iterdir()) == ["5"]
