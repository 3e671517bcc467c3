"""`tfxp` and Python run in subprocesses as a user runs them, and what they leave: the helpers
the fault, kill and doctor tests share."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap

PROJECT = pathlib.Path(__file__).resolve().parents[1]
SERVING_VERSION = re.compile(r"^\d+$")

# A process that holds the run lock of the output directory it is given until killed.
HOLDER = textwrap.dedent("""
    import sys, time
    from pipeline import run_lock

    with run_lock.hold(sys.argv[1]):
        print("held", flush=True)
        time.sleep(600)
""")


def python(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """`python ARGS` from the checkout, with its code first on the path; output captured as text."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs}
    return subprocess.run([sys.executable, *args], text=True, timeout=600, cwd=PROJECT, env=env, **streams)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def versions(serving: pathlib.Path) -> list[str]:
    """The version directories TF Serving would see under `serving`, in name order."""
    return sorted(p.name for p in serving.iterdir() if SERVING_VERSION.match(p.name)) if serving.exists() else []


def writable_as_fs_group(paths) -> None:
    """Makes host directories that a step's container mounts writable by the image's user (uid
    10001, the Dockerfile's USER), as a pod's fsGroup makes its volumes group-writable: the
    test machine's directories are root's. A missing directory is made (the engine would
    make it root's); every directory and file under each one gets read and write permission
    for all. A file mounted by itself (a binary) is left as it is."""
    for top in paths:
        top = pathlib.Path(top)
        if top.is_file():
            continue
        top.mkdir(parents=True, exist_ok=True)
        for path in [top, *top.rglob("*")]:
            if path.is_symlink():
                continue
            path.chmod(path.stat().st_mode | (0o777 if path.is_dir() else 0o666))
