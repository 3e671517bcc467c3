"""One local run at a time per output directory.

`tfxp run` holds an exclusive flock on `<output_dir>/.tfxp-run.lock` for the whole run and
writes its pid and start time into the file, so a second run on the same directory is refused
with a line naming the first. The kernel drops the lock when the holder's process ends, however
it ends (SIGKILL included), so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import time
from typing import Callable, Iterator

LOCK_NAME = ".tfxp-run.lock"


class LockHeld(RuntimeError):
    """Another process holds the run lock of this output directory."""

    def __init__(self, path: str, holder: dict):
        self.path, self.holder = path, holder
        super().__init__(
            f"another tfxp run is using this output directory: {describe(holder)} "
            f"(lock {path}); wait for it to finish, or pass --wait-lock"
        )


def describe(holder: dict) -> str:
    if not holder:
        return "a process that has not written its pid yet"
    command = f"`tfxp {holder['command']}`, " if holder.get("command") else ""
    return f"{command}pid {holder.get('pid', '?')}, started {holder.get('started', '?')}"


def lock_path(output_dir: str) -> str:
    return os.path.join(output_dir, LOCK_NAME)


def read_holder(path: str) -> dict:
    """What the holder wrote into the lock file ({} if nothing readable)."""
    # The holder writes right after it gets the lock; a reader that comes in between waits briefly.
    for _ in range(20):
        try:
            with open(path) as f:
                text = f.read().strip()
        except FileNotFoundError:
            return {}
        if text:
            try:
                return json.loads(text)
            except ValueError:
                return {"pid": text}
        time.sleep(0.05)
    return {}


def holder_of(output_dir: str) -> dict | None:
    """What the process holding the run lock of `output_dir` wrote, or None when no process
    holds it. A probe: a shared lock taken and dropped at once (a `hold` that meets it tries
    again before it gives up)."""
    path = lock_path(output_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_holder(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def hold(
    output_dir: str, wait: bool = False, on_wait: Callable[[dict], None] | None = None, command: str = "run"
) -> Iterator[str]:
    """Holds the run lock of `output_dir` inside the block; yields the lock file's path.

    Raises LockHeld at once if another process holds it, unless `wait`: then `on_wait` is told
    who holds it and the call blocks until the lock is free. `command` is written into the
    lock file for a refused caller to read.
    """
    os.makedirs(output_dir, exist_ok=True)
    path = lock_path(output_dir)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    locked = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(path)
            # Nothing written: a `holder_of` probe had it for a moment, and it is free again.
            if holder or not _try_lock(fd):
                if not wait:
                    raise LockHeld(path, holder) from None
                if on_wait:
                    on_wait(holder)
                fcntl.flock(fd, fcntl.LOCK_EX)
        locked = True
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        try:
            os.ftruncate(fd, 0)
            note = {"pid": os.getpid(), "started": started, "command": command}
            os.pwrite(fd, (json.dumps(note) + "\n").encode(), 0)
        except OSError as err:
            # os.write's error names no file; the user needs to know which one.
            raise OSError(err.errno, os.strerror(err.errno or errno.EIO), path) from err
        yield path
    finally:
        if locked:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # the pid of a finished run would only mislead a reader
        os.close(fd)  # closing the last descriptor releases the lock


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
