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
