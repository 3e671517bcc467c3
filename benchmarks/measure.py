"""Measuring helpers: the machine, a subprocess's wall time and peak memory, and tables."""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import subprocess
import threading
import time
from typing import Sequence


def machine() -> str:
    """One line: cores, RAM, CPU model, and the load averages right now."""
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return (
        f"{os.cpu_count()} cores, {kib / 2**20:.1f} GiB RAM, {model}, "
        f"Linux {platform.release()}, Python {platform.python_version()}; loadavg {load}"
    )


@dataclasses.dataclass
class Sample:
    at: float  # time.time() of the sample
    tree_rss: int  # bytes: RSS summed over the process tree
    tree_pss: int  # bytes: PSS summed over the process tree (shared pages split between sharers)
    tree_cpu: float = 0.0  # CPU seconds used so far by the tree's processes (and their reaped children)


@dataclasses.dataclass
class Measured:
    seconds: float
    peak_process_rss: int  # bytes: the largest RSS of any single process (kernel's count)
    returncode: int
    samples: list[Sample] = dataclasses.field(default_factory=list)

    @property
    def peak_tree_rss(self) -> int:
        """Bytes: the largest sampled sum of RSS over the process tree."""
        return max((s.tree_rss for s in self.samples), default=0)

    @property
    def peak_tree_pss(self) -> int:
        """Bytes: the largest sampled sum of PSS over the tree. With several processes (Beam's
        multi_processing workers) summed RSS counts the pages they share (TensorFlow's libraries)
        once per process; PSS counts each page once, which is what the machine must hold."""
        return max((s.tree_pss for s in self.samples), default=0)

    def peak_pss_between(self, start: float, end: float) -> int | None:
        """The largest tree PSS sampled from `start` to `end` (time.time() seconds), if any was."""
        inside = [s.tree_pss for s in self.samples if start <= s.at <= end]
        return max(inside) if inside else None

    def cores_between(self, start: float, end: float) -> float | None:
        """Average cores the tree kept busy from `start` to `end`: CPU seconds over wall seconds
        between the first and the last sample inside the window (None with fewer than two)."""
        inside = [s for s in self.samples if start <= s.at <= end]
        if len(inside) < 2 or inside[-1].at <= inside[0].at:
            return None
        # CPU seconds only grow; a child reaped between reading its stat and its parent's can
        # make one sample read low, so the window ends at the highest reading.
        return (max(s.tree_cpu for s in inside) - inside[0].tree_cpu) / (inside[-1].at - inside[0].at)


def _tree(pid: int) -> dict[int, tuple[int, float]]:
    """{pid: (RSS in bytes, CPU seconds)} for a process and all its descendants, from /proc.

    A process's CPU seconds include those of its children that it has waited for, so the
    tree's sum keeps counting workers that have already exited.
    """
    children: dict[int, list[int]] = {}
    usage: dict[int, tuple[int, float]] = {}
    page, tick = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        child, parent = int(entry), int(fields[1])
        children.setdefault(parent, []).append(child)
        # utime, stime, cutime, cstime (fields 14-17) in clock ticks; rss (field 24) in pages
        usage[child] = int(fields[21]) * page, sum(int(f) for f in fields[11:15]) / tick
    found, todo = {}, [pid]
    while todo:
        current = todo.pop()
        if current in usage:
            found[current] = usage[current]
        todo += children.get(current, [])
    return found


def _pss(pid: int) -> int:
    """A process's proportional set size in bytes (0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def sample(pid: int) -> Sample:
    """The memory and CPU seconds of a process tree now."""
    tree = _tree(pid)
    return Sample(
        time.time(),
        sum(rss for rss, _ in tree.values()),
        sum(_pss(p) for p in tree),
        sum(cpu for _, cpu in tree.values()),
    )


def run(
    cmd: Sequence[str],
    *,
    env: dict | None = None,
    cwd: str | None = None,
    log_path: str | None = None,
    interval: float = 0.5,
) -> Measured:
    """Runs `cmd`, sampling the RSS, PSS and CPU seconds of its process tree; output goes to
    `log_path`."""
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    try:
        started = time.monotonic()
        proc = subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        samples: list[Sample] = []
        done = threading.Event()

        def sampler_loop() -> None:
            while not done.wait(interval):
                now = sample(proc.pid)
                if now.tree_rss:  # nothing left to read once the process has been reaped
                    samples.append(now)

        sampler = threading.Thread(target=sampler_loop, daemon=True)
        sampler.start()
        # wait4 gives this child's own resource usage (it includes its reaped descendants).
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if log_path:
            log.close()
    return Measured(seconds, usage.ru_maxrss * 1024, proc.returncode, samples)


def stop(proc: subprocess.Popen, timeout: float) -> None:
    """Terminates a helper process, killing it if it does not leave within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, numbers right-aligned, as printed and as pasted in the README."""
    cells = [[str(c) for c in header]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    numeric = [all(_is_number(r[i]) for r in cells[1:] if r[i]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _is_number(text: str) -> bool:
    if text == "-":  # no value
        return True
    try:
        float(text.rstrip("x%"))
        return True
    except ValueError:
        return False
