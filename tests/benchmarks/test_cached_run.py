"""benchmarks/cached_run.py's reading of `python -X importtime` lines."""

from benchmarks.cached_run import by_package, import_chain, importtime_rows

# As Python prints them: a module after what it imported, nesting by two spaces.
LOG = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |     tensorflow.python
import time:       400 |        500 |   tensorflow
import time:        50 |        550 | tfx.dsl.io.fileio
import time:        20 |         20 |   tfx.dsl.io.plugins
import time:        30 |         50 | tfx.orchestration.metadata
unrelated line
"""


def test_rows_keep_depth_self_and_cumulative_times():
    rows = importtime_rows(LOG.splitlines())
    assert rows[0] == (2, "tensorflow.python", 100, 100)
    assert rows[2] == (0, "tfx.dsl.io.fileio", 50, 550)
    assert len(rows) == 5


def test_self_time_is_summed_by_package():
    assert by_package(importtime_rows(LOG.splitlines())) == [
        ("tensorflow", 500, 2),
        ("tfx.dsl", 70, 2),
        ("tfx.orchestration", 30, 1),
    ]


def test_the_chain_climbs_to_the_top_level_import():
    rows = importtime_rows(LOG.splitlines())
    assert import_chain(rows, "tensorflow") == [
        ("tensorflow.python", 100),
        ("tensorflow", 500),
        ("tfx.dsl.io.fileio", 550),
    ]
    assert import_chain(rows, "keras") == []
