"""The plain-venv path (hosts with glibc >= 2.38: Debian 13, Ubuntu 24.04), built for real.

Runs inside the Debian 13 runtime root, which is such a host (glibc 2.41, Python 3.13): there
scripts/runtime.sh in auto mode must pick the venv, build it from the requirement files under
a cache of the test's own (in the checkout's build/, on the host's disk), and run the TFX stack
and `tfxp` from it; a second call must reuse it. pip keeps its usual download cache (~/.cache/pip
of the runtime), so the install is the one a user gets, resolved against the package index.
Minutes and network: `make test-setup` runs it.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import time

import pytest

PROJECT = pathlib.Path(__file__).resolve().parents[2]
RUNTIME = PROJECT / "scripts" / "runtime.sh"

pytestmark = pytest.mark.setup


def glibc() -> tuple[int, ...]:
    out = subprocess.run(["getconf", "GNU_LIBC_VERSION"], capture_output=True, text=True).stdout.split()
    return tuple(int(p) for p in out[-1].split(".")[:2]) if out else ()


@pytest.fixture
def cache():
    path = PROJECT / "build" / "setup-venv-cache"
    shutil.rmtree(path, ignore_errors=True)
    yield path
    if not os.environ.get("TFXP_KEEP_SETUP"):
        shutil.rmtree(path, ignore_errors=True)


def runtime(cache: pathlib.Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    # A user's shell on such a host: the system python3 first, no runtime variables of ours.
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "TFXP_CACHE": str(cache),
    }
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        if name in os.environ:
            env[name] = os.environ[name]
    start = time.monotonic()
    done = subprocess.run([str(RUNTIME), *args], capture_output=True, text=True, env=env, cwd=PROJECT, timeout=1800)
    return done, time.monotonic() - start


@pytest.mark.skipif(glibc() < (2, 38), reason="needs a host with glibc >= 2.38: run it in the runtime root")
def test_auto_builds_and_uses_a_plain_venv(cache):
    done, first = runtime(cache, "python", "-c", "import sys, tfx; print(tfx.__version__, sys.prefix)")
    assert done.returncode == 0, done.stderr
    venvs = list(cache.glob("venv-*"))
    assert len(venvs) == 1 and (venvs[0] / ".complete").exists(), list(cache.iterdir())
    version, prefix = done.stdout.split()
    assert version == "1.21.0"
    assert prefix == str(venvs[0]), "python did not run from the venv"
    assert "building the virtual environment in " + str(venvs[0]) in done.stderr
    assert not list(cache.glob("root*")), "auto built a Debian root where a venv does"

    done, second = runtime(cache, "tfxp", "--help")
    assert done.returncode == 0, done.stderr
    assert "usage: tfxp" in done.stdout
    assert "building" not in done.stderr, "the second call built again"
    assert (venvs[0] / "bin" / "tfxp").exists()
    print(f"venv path: build and first command {first:.0f} s, second call {second:.1f} s")
