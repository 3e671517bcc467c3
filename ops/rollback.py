"""`tfxp rollback`: serve an earlier pushed version again.

It pushes a copy of that version as the newest: TF Serving's default version policy (and the
stand-in) serve the newest version, and the history of what was served stays on disk. The
copy names its source (assets.extra/rolled_back_from), so `tfxp lineage` reports the source's
lineage for it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from contracts.saved_model import ASSETS_EXTRA, ROLLED_BACK_FROM
from contracts.serving_dir import ROLLBACK_PREFIX, publish_version, served_versions
from pipeline import run_lock
from pipeline.config import ConfigError, PipelineConfig


def roll_back(config: PipelineConfig, version: int) -> int:
    """`rollback` in the config's serving directory, holding the output directory's run lock
    (`doctor --fix` must not take its staging copy for a leftover). Raises run_lock.LockHeld."""
    with run_lock.hold(config.output_dir, command="rollback"):
        return rollback(config.serving_dir, version)


def rollback(serving_dir: str, version: int) -> int:
    """Serves `version` again: copies it in as a new, newest version; returns that version."""
    versions = served_versions(serving_dir)
    if version not in versions:
        raise ConfigError(
            f"version {version} is not in {serving_dir}; served versions: {', '.join(map(str, versions)) or 'none'}"
        )
    if version == versions[-1]:
        raise ConfigError(f"version {version} is already the newest, the one being served")
    # Published like a push (hidden copy, checked, renamed), with a note of where it came from.
    with tempfile.TemporaryDirectory(dir=serving_dir, prefix=ROLLBACK_PREFIX) as staging:
        source = os.path.join(staging, "model")
        shutil.copytree(os.path.join(serving_dir, str(version)), source)
        os.makedirs(os.path.join(source, ASSETS_EXTRA), exist_ok=True)
        with open(os.path.join(source, ASSETS_EXTRA, ROLLED_BACK_FROM), "w") as f:
            f.write(f"{version}\n")
        new_version, _ = publish_version(source, serving_dir, max(int(time.time()), versions[-1] + 1))
    return new_version
