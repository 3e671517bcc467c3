"""Where a cached `tfxp run` spends its CPU (docs/cached-run.md), in three measurements:

  phases OUTPUT_DIR     one `tfxp run --force --set output_dir=OUTPUT_DIR` in this process, with
                        the CPU seconds (time.process_time) of its phases: TFX's import,
                        preflight, create_pipeline, the compile, each launcher's preparation, the
                        executors (--force: TFX's cached path; without it a run with nothing
                        changed is not run at all, pipeline/run_fingerprint.py)
  imports MODULE...     the CPU seconds and module count of importing MODULEs in a fresh process
  importtime LOG [PKG...]  `python -X importtime` lines in LOG: self time summed by package, and
                        for each PKG the chain of imports that first brought it in

CPU seconds, not wall time: the figures in docs/cached-run.md were taken on shared cores.
Run inside the runtime: scripts/runtime.sh python -m benchmarks.cached_run phases build/cr-out
"""

from __future__ import annotations

import collections
import functools
import re
import resource
import subprocess
import sys
import time

_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")
HEAVY = (
    "tensorflow",
    "apache_beam",
    "tensorflow_data_validation",
    "tensorflow_transform",
    "tensorflow_model_analysis",
    "keras_tuner",
    "kubernetes",
    "tfx.components",
)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def importtime_rows(lines) -> list[tuple[int, str, int, int]]:
    """(depth, module, self us, cumulative us) of each `-X importtime` line, in the order printed
    (a module after the modules it imported)."""
    rows = []
    for line in lines:
        match = _IMPORTTIME.search(line)
        if match:
            rows.append((len(match[3]) // 2, match[4], int(match[1]), int(match[2])))
    return rows


def by_package(rows) -> list[tuple[str, int, int]]:
    """(package, self us, modules) summed by top-level package (two levels for tfx and google)."""
    spent, count = collections.Counter(), collections.Counter()
    for _, name, self_us, _ in rows:
        parts = name.split(".")
        package = ".".join(parts[:2]) if parts[0] in ("tfx", "google") else parts[0]
        spent[package] += self_us
        count[package] += 1
    return [(package, us, count[package]) for package, us in spent.most_common()]


def import_chain(rows, package: str) -> list[tuple[str, int]]:
    """The first import of `package` and each module above it, to the top-level import."""
    first = next((i for i, row in enumerate(rows) if row[1] == package or row[1].startswith(package + ".")), None)
    if first is None:
        return []
    depth, name, _, cumulative = rows[first]
    chain = [(name, cumulative)]
    for row_depth, row_name, _, row_cumulative in rows[first + 1 :]:
        if row_depth < depth:
            chain.append((row_name, row_cumulative))
            depth = row_depth
            if depth == 0:
                break
    return chain


def _importtime(log: str, packages: list[str]) -> None:
    with open(log, errors="replace") as f:
        rows = importtime_rows(f)
    print(f"{sum(r[2] for r in rows) / 1e6:.2f} s self time in {len(rows)} modules")
    for package, us, modules in by_package(rows)[:25]:
        print(f"{us / 1e6:7.2f} s {modules:5d} {package}")
    for package in packages:
        chain = import_chain(rows, package)
        print(" <- ".join(f"{name} ({us / 1e6:.2f})" for name, us in chain) or f"{package}: not imported")


def _imports(modules: list[str]) -> None:
    code = (
        "import importlib, resource, sys\n"
        "before = len(sys.modules)\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "u = resource.getrusage(resource.RUSAGE_SELF)\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(f'{u.ru_utime + u.ru_stime:.2f} s cpu, {len(sys.modules) - before} modules; loaded: {heavy}')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    print(f"{' + '.join(modules)}: {done.stdout.strip()}")


def _phases(output_dir: str) -> None:
    spent: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter = collections.Counter()

    def timed(owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            start = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.process_time() - start
                calls[label] += 1

        setattr(owner, name, wrapper)

    start = time.process_time()
    import tfxp.main

    spent["import tfxp.main"] = time.process_time() - start
    start = time.process_time()
    from tfx.orchestration.local import local_dag_runner  # what local_runner.run imports first

    spent["import tfx...local_dag_runner (TFX's launcher)"] = time.process_time() - start
    from tfx.orchestration.portable import launcher, python_driver_operator, tfx_runner

    from pipeline import local_runner, metadata, preflight

    timed(preflight, "check_data", "preflight.check_data")
    timed(metadata, "check_store", "metadata.check_store")
    timed(metadata, "mark_interrupted", "metadata.mark_interrupted")
    timed(local_runner, "build", "local_runner.build (create_pipeline)")
    timed(tfx_runner, "_make_pipeline_proto", "compile (tfx_runner._make_pipeline_proto)")
    timed(launcher.Launcher, "__init__", "Launcher.__init__ (imports the executor)")
    timed(launcher.Launcher, "_prepare_execution", "Launcher._prepare_execution (MLMD, cache check)")
    timed(python_driver_operator.PythonDriverOperator, "run_driver", "ExampleGen's driver")
    timed(launcher.Launcher, "_run_executor", "executors")
    timed(local_dag_runner.LocalDagRunner, "run_with_ir", "LocalDagRunner.run_with_ir")
    sys.argv = ["tfxp", "run", "--force", "--set", f"output_dir={output_dir}"]
    start = time.process_time()
    tfxp.main.main()
    spent["tfxp.main.main (the whole command)"] = time.process_time() - start
    print(f"\nprocess: {_cpu():.2f} s cpu, {len(sys.modules)} modules", file=sys.stderr)
    for label, seconds in spent.items():
        print(f"{seconds:7.2f} s cpu {calls[label] or 1:3d}x {label}", file=sys.stderr)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "phases":
        _phases(argv[1])
    elif len(argv) >= 2 and argv[0] == "imports":
        _imports(argv[1:])
    elif len(argv) >= 2 and argv[0] == "importtime":
        _importtime(argv[1], argv[2:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
