"""ExampleGen's input fingerprint sees a file edited in place with the same size and time."""

import os

from tfx.proto import example_gen_pb2

from components.content_fingerprint import fingerprint
from components.content_fingerprint.driver import ContentFingerprintInputProcessor


def _edit_in_place(path, text):
    """New contents, same size and modification time: what TFX's fingerprint cannot see."""
    stat = path.stat()
    assert len(text.encode()) == stat.st_size
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _fingerprint(base, pattern):
    processor = ContentFingerprintInputProcessor(
        str(base), [example_gen_pb2.Input.Split(name="single_split", pattern=pattern)])
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
    assert fingerprint.content_fingerprint(str(tmp_path), ["*.csv"]) == \
        fingerprint.content_fingerprint(str(tmp_path), ["*.csv"])
