"""The local runner's progress lines, fed the log records LocalDagRunner emits."""

import io
import logging

from pipeline.local_runner import ProgressHandler


def _record(msg, *args):
    return logging.LogRecord("absl", logging.INFO, __file__, 1, msg, args, None)


def test_progress_counts_components_and_marks_cached_ones():
    out = io.StringIO()
    progress = ProgressHandler(2, out)
    for record in [
        _record("Component %s is running.", "ExampleGen"),
        _record("A cached execution %d is used.", 7),
        _record("Component %s is finished.", "ExampleGen"),
        _record("Component %s is running.", "Trainer"),
        _record("Some other line %s", "x"),
    ]:
        progress.emit(record)
    lines = out.getvalue().splitlines()
    assert lines == ["[1/2] ExampleGen ...", "[1/2] ExampleGen cached", "[2/2] Trainer ..."]
    assert progress.current == "Trainer"  # what a failure report names
    progress.emit(_record("Component %s is finished.", "Trainer"))
    assert out.getvalue().splitlines()[-1].startswith("[2/2] Trainer done (")
    assert progress.current is None


def test_the_baseline_cache_key_follows_the_served_stable_version(tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    from contracts import model_config
    from pipeline.local_runner import served_state

    serving = tmp_path / "taxi"
    assert served_state(str(serving)) == "none"  # no directory yet
    for version in (1, 2):
        saved = saved_model_pb2.SavedModel()
        saved.meta_graphs.add().meta_info_def.tags.append("serve")
        (serving / str(version)).mkdir(parents=True)
        (serving / str(version) / "saved_model.pb").write_bytes(saved.SerializeToString())
    newest = served_state(str(serving))
    assert newest.startswith("2:") and served_state(str(serving)) == newest  # the same state, the same key
    model_config.write_config(str(serving), model_config.ModelConfig("taxi", str(serving), (1, 2), {"stable": 1}))
    assert served_state(str(serving)).startswith("1:")  # the stable label decides, not the newest


def test_auto_beam_mode_follows_the_input_size_and_says_so(tmp_path):
    from pipeline.config import AUTO_MULTI_PROCESSING_BYTES, load_config
    from pipeline.local_runner import beam_line, build, input_bytes

    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small.write_text("a\n1\n")
    with open(large, "wb") as f:
        f.truncate(AUTO_MULTI_PROCESSING_BYTES)
    assert input_bytes([str(small), str(large)]) == 4 + AUTO_MULTI_PROCESSING_BYTES
    assert input_bytes([str(tmp_path / "gone.csv")]) is None

    config = load_config(None, [f"output_dir={tmp_path / 'out'}"])
    assert beam_line(config, 4) == (
        "  Beam: in_memory (one process), for 0.0 MiB of input data (beam.direct_running_mode auto; set it to choose)"
    )
    line = beam_line(config, AUTO_MULTI_PROCESSING_BYTES)
    if config.beam.direct_mode(AUTO_MULTI_PROCESSING_BYTES)[1] > 1:  # a machine of two or more cores
        size = f"{AUTO_MULTI_PROCESSING_BYTES / 2**20:.1f} MiB"
        assert line.startswith("  Beam: multi_processing, ") and f"workers, kept across components, for {size}" in line
        assert "--direct_running_mode=multi_processing" in build(config, AUTO_MULTI_PROCESSING_BYTES).beam_pipeline_args
    assert "--direct_running_mode=in_memory" in build(config, 4).beam_pipeline_args
    assert beam_line(load_config(None, ["beam.direct_running_mode=in_memory"]), AUTO_MULTI_PROCESSING_BYTES) is None
