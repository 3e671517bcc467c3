"""Keeping the terminal to a command's own lines while libraries write to descriptors 1 and 2.

The local runner shows progress lines only, and `tfxp monitor` its result, while TensorFlow,
Beam and Keras write their start-up lines, worker output and progress bars straight to the
file descriptors: `terminal_output` points the descriptors at a log file and hands back the
terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator, TextIO


@contextlib.contextmanager
def terminal_output(log_path: str, verbose: bool) -> Iterator[TextIO]:
    """Sends whatever is written to file descriptors 1 and 2 to the log; yields the terminal.

    TensorFlow's C++ start-up lines, Beam's worker processes and Keras' progress bars write
    straight to those descriptors, so only swapping the descriptors keeps the terminal to
    the progress lines. With `verbose` nothing is redirected.

    The log may sit on a full disk: nothing written for it may raise, and descriptors 1 and 2
    are the terminal again before the block's own error (or success) goes on.
    """
    if verbose:
        yield sys.stdout
        return
    sys.stdout.flush()
    sys.stderr.flush()
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    try:
        yield terminal
    finally:
        flush_to_log()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log_fd):
            os.close(fd)
        with contextlib.suppress(OSError):
            terminal.close()


def flush_to_log() -> None:
    """Flushes Python's stdout and stderr into the log; what the log cannot take is dropped.

    A failed flush keeps its bytes buffered, and they would reach the terminal once
    descriptors 1 and 2 point there again: they are flushed into /dev/null instead.
    """
    for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):
        try:
            stream.flush()
        except (OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
            with contextlib.suppress(OSError):
                stream.flush()
