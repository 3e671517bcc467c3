"""The runtime mode scripts/runtime.sh picks (scripts/runtime-mode.sh), from made-up host facts.

choose_mode takes the facts as arguments (glibc, python3, uid, whether a user namespace can be
made, what a rootless build lacks), so each kind of machine is one call; --print-mode runs the
same choice on the real facts of wherever the test runs.
"""

from __future__ import annotations

import pathlib
import subprocess

import pytest

PROJECT = pathlib.Path(__file__).resolve().parents[2]
MODE_LIB = PROJECT / "scripts" / "runtime-mode.sh"


def choose(glibc: str, python: str, uid: int, userns: str = "yes", missing: str = "") -> tuple[str, str]:
    out = subprocess.run(
        ["bash", "-c", '. "$1"; shift; choose_mode "$@"', "_", str(MODE_LIB), glibc, python, str(uid), userns, missing],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out.endswith("\n") and out.count("\n") == 1, f"not one line: {out!r}"
    mode, reason = out.rstrip("\n").split("\t")
    return mode, reason


@pytest.mark.parametrize(
    ("glibc", "python", "uid", "expected"),
    [
        ("2.41", "3.13", 1000, "venv"),  # Debian 13, any user
        ("2.39", "3.12", 0, "venv"),  # Ubuntu 24.04 as root: no root needed, so none is built
        ("2.38", "3.10", 1000, "venv"),  # the oldest glibc the wheels take
        ("2.36", "3.11", 0, "chroot"),  # Debian 12 as root
        ("2.36", "3.11", 1000, "rootless"),  # Debian 12 without root
        ("2.35", "3.10", 1000, "rootless"),  # Ubuntu 22.04 without root
        ("2.4", "3.11", 1000, "rootless"),  # versions compare as numbers: 2.4 < 2.38
        ("2.100", "3.11", 1000, "venv"),  # and 2.100 > 2.38
        ("2.41", "3.14", 1000, "rootless"),  # glibc fine, Python too new for the wheels
        ("2.41", "3.9", 0, "chroot"),  # glibc fine, Python too old
        ("2.41", "", 1000, "rootless"),  # no python3 at all
        ("", "3.12", 1000, "rootless"),  # not glibc (musl)
    ],
)
def test_mode_per_kind_of_machine(glibc, python, uid, expected):
    assert choose(glibc, python, uid)[0] == expected


def test_rootless_line_says_why():
    mode, reason = choose("2.36", "3.11", 1000)
    assert mode == "rootless"
    assert reason.startswith("no root rights: using a rootless Debian 13 root (unshare)")
    assert "glibc 2.36" in reason


def test_python_reason_names_the_python():
    mode, reason = choose("2.41", "3.14", 0)
    assert mode == "chroot"
    assert "Python 3.10-3.13" in reason and "3.14" in reason


def test_root_never_uses_the_user_namespace():
    # uid 0 takes the chroot even where a user namespace could be made, and where none can
    assert choose("2.36", "3.11", 0, userns="no")[0] == "chroot"
    assert choose("2.36", "3.11", 0, missing="apt-get is missing")[0] == "chroot"


def test_no_user_namespaces_says_what_to_do():
    mode, reason = choose("2.36", "3.11", 1000, userns="no")
    assert mode == "none"
    assert "user.max_user_namespaces" in reason and "run as root" in reason


def test_missing_tool_is_named():
    mode, reason = choose("2.36", "3.11", 1000, missing="apt-get is missing (...): run as root")
    assert mode == "none"
    assert reason.endswith("cannot be built here: apt-get is missing (...): run as root")


def test_venv_host_needs_neither_root_nor_namespaces():
    assert choose("2.39", "3.12", 1000, userns="no", missing="apt-get is missing")[0] == "venv"


def run_runtime(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PROJECT / "scripts" / "runtime.sh"), *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_print_mode_on_this_machine_builds_nothing(tmp_path):
    """Here (the Debian 13 runtime: glibc 2.41, Python 3.13) auto picks the plain venv."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "TFXP_CACHE": str(tmp_path / "cache")}
    done = run_runtime("--print-mode", env=env)
    assert done.returncode == 0, done.stderr
    mode, reason = done.stdout.rstrip("\n").split("\t")
    glibc = subprocess.run(["getconf", "GNU_LIBC_VERSION"], capture_output=True, text=True).stdout.split()[-1]
    if tuple(int(p) for p in glibc.split(".")[:2]) >= (2, 38):
        assert mode == "venv", reason
    else:
        assert mode in ("chroot", "rootless"), reason
    assert f"glibc {glibc}" in reason
    assert not any((tmp_path / "cache").glob("*-*")), "--print-mode built an environment"


def test_unknown_mode_is_one_line(tmp_path):
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TFXP_CACHE": str(tmp_path / "cache"),
        "TFXP_ENV_MODE": "docker",
    }
    done = run_runtime("true", env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "TFXP_ENV_MODE must be auto, venv, chroot or rootless, not 'docker'" in done.stderr
