"""The Spark tier needs the local Spark cluster (scripts/spark/cluster.sh): it runs only when
asked for with `-m spark` (`make test-spark` starts the cluster, runs it and stops the cluster),
and is skipped, saying so, in every other run."""

from __future__ import annotations

import pytest

SUMMARY: list[str] = []


def pytest_collection_modifyitems(config, items):
    if "spark" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="needs the local Spark cluster: run with `make test-spark`")
    for item in items:
        if item.get_closest_marker("spark"):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    # The line that says the outputs are equal comes last (the make target's last line).
    if exitstatus == 0:
        for line in SUMMARY:
            terminalreporter.write_line(line)
