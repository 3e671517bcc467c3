"""The setup tests build whole environments (minutes, network): they run only when asked for with
`-m setup` (`make test-setup`), and are skipped, saying so, in every other run (`make test`)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    if "setup" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="builds a whole environment (minutes, network): run with `make test-setup`")
    for item in items:
        if item.get_closest_marker("setup"):
            item.add_marker(skip)
