"""Rolling serving back: a copy of an earlier version pushed as the newest."""

import pytest

from contracts.saved_model import ROLLED_BACK_FROM
from ops.rollback import rollback
from pipeline.config import ConfigError
from tests.serving import fake_saved_model


def test_rollback_pushes_a_copy_as_the_newest_version(tmp_path):
    serving = tmp_path / "serving"
    for version, text in ((100, "first"), (200, "second")):
        fake_saved_model.write(serving / str(version), text)
    new = rollback(str(serving), 100)
    assert new > 200
    assert fake_saved_model.marker(serving / str(new)) == "first"
    assert (serving / str(new) / "assets.extra" / ROLLED_BACK_FROM).read_text() == "100\n"
    assert sorted(p.name for p in serving.iterdir()) == sorted(["100", "200", str(new)])  # no leftovers
    with pytest.raises(ConfigError, match="version 7 is not in"):
        rollback(str(serving), 7)
    with pytest.raises(ConfigError, match=f"version {new} is already the newest"):
        rollback(str(serving), new)
