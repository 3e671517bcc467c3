"""ExampleGen's input fingerprint sees a file edited in place with the same size and time."""

import os

from tfx.proto import example_gen_pb2

from components.example_gen import fingerprint
from components.example_gen.driver import ContentFingerprintInputProcessor


def _edit_in_place(path, text):
    """New contents, same size and modification time: what TFX's fingerprint cannot see."""
    stat = path.stat()
    assert len(text.encode()) == stat.st_size
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _fingerprint(base, pattern):
    processor = ContentFingerprintInputProcessor(
        str(base), [example_gen_pb2.Input.Split(name="single_split", pattern=pattern)]
    )
    span, version = processor.resolve_span_and_version()
    return processor.get_input_fingerprint(span, version)


def test_an_in_place_edit_changes_the_fingerprint(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    before = _fingerprint(tmp_path, "*.csv")
    _edit_in_place(data, "a,b\n3,4\n")
    after = _fingerprint(tmp_path, "*.csv")
    assert before.splitlines()[0] == after.splitlines()[0]  # TFX's own part: size and mtime
    assert before != after


def test_every_span_the_pattern_can_match_is_hashed(tmp_path):
    for span in (1, 2):
        (tmp_path / f"span-{span}").mkdir()
        (tmp_path / f"span-{span}" / "part.csv").write_text(f"a\n{span}\n")
    files = fingerprint.files_for(str(tmp_path), ["span-{SPAN}/*.csv"])
    assert files == [str(tmp_path / "span-1" / "part.csv"), str(tmp_path / "span-2" / "part.csv")]
    before = fingerprint.content_fingerprint(str(tmp_path), ["span-{SPAN}/*.csv"])
    _edit_in_place(tmp_path / "span-1" / "part.csv", "a\n9\n")
    assert fingerprint.content_fingerprint(str(tmp_path), ["span-{SPAN}/*.csv"]) != before


def test_the_same_files_give_the_same_fingerprint(tmp_path):
    (tmp_path / "x.csv").write_text("a\n1\n")
    assert fingerprint.content_fingerprint(str(tmp_path), ["*.csv"]) == fingerprint.content_fingerprint(
        str(tmp_path), ["*.csv"]
    )


def _kfp_exec_properties(base):
    """ExampleGen's exec properties as the compiled pipeline hands them over where no driver ran."""
    from tfx.proto import range_config_pb2
    from tfx.utils import proto_utils

    return {
        "input_base": str(base),
        "input_config": proto_utils.proto_to_json(
            example_gen_pb2.Input(
                splits=[example_gen_pb2.Input.Split(name="single_split", pattern="span-{SPAN}/*.csv")]
            )
        ),
        "range_config": proto_utils.proto_to_json(
            range_config_pb2.RangeConfig(rolling_range=range_config_pb2.RollingRange(num_spans=1))
        ),
    }


def test_without_a_driver_the_executor_resolves_the_newest_span(tmp_path):
    from tfx.types import standard_artifacts

    from components.example_gen import span_resolution

    for span in (1, 2, 10):
        (tmp_path / f"span-{span}").mkdir()
        (tmp_path / f"span-{span}" / "data.csv").write_text(f"a\n{span}\n")
    exec_properties = _kfp_exec_properties(tmp_path)
    resolved = span_resolution.resolve(exec_properties)
    assert span_resolution.resolve(resolved) is resolved  # nothing left to resolve
    assert '"pattern": "span-10/*.csv"' in resolved["input_config"]
    assert resolved["span"] == 10 and resolved["version"] is None
    assert "content sha256:" in resolved["input_fingerprint"]
    examples = standard_artifacts.Examples()
    span_resolution.record(examples, resolved)
    assert examples.span == 10 and examples.get_string_custom_property("input_fingerprint")


def test_the_executor_runs_on_resolved_patterns(tmp_path):
    """Resolves, then runs the CSV ExampleGen on span 2 only and records span 2 on its output."""
    from tfx.proto import example_gen_pb2 as eg
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from components.example_gen.csv_executor import Executor

    for span, rows in ((1, "1\n1\n"), (2, "2\n2\n2\n2\n")):
        (tmp_path / f"span-{span}").mkdir()
        (tmp_path / f"span-{span}" / "data.csv").write_text("a\n" + rows)
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "out")
    exec_properties = {
        **_kfp_exec_properties(tmp_path),
        "output_config": proto_utils.proto_to_json(
            eg.Output(split_config=eg.SplitConfig(splits=[eg.SplitConfig.Split(name="train", hash_buckets=1)]))
        ),
    }
    Executor().Do({}, {"examples": [examples]}, exec_properties)
    assert examples.span == 2
    written = list((tmp_path / "out" / "Split-train").iterdir())
    assert written, "no examples written"
    import tensorflow as tf

    records = [r for path in written for r in tf.data.TFRecordDataset(str(path), compression_type="GZIP")]
    values = {tf.train.Example.FromString(r.numpy()).features.feature["a"].int64_list.value[0] for r in records}
    assert values == {2} and len(records) == 4
