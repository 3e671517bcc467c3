"""The `tfxp` program: its parser, `main` (the config loaded once, errors to exit codes) and the entry point."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
from typing import NoReturn

from pipeline.config import PipelineConfig, load_config
from tfxp import kubeflow_pipelines, live_monitoring, local_runs, model_server, operations
from tfxp.commands import EXIT_BAD_INPUT, EXIT_FAILED, Commands

DESCRIPTION = "The `tfxp` command: run the pipeline locally and inspect its runs in ML Metadata."

# The errors a command ends with as one line, `error: ...`, on stderr, and their exit codes: 2 for
# the user's input (a config, an option, a file, a lock another run holds), 1 for a step that
# failed. The most derived class listed decides. Named, not imported: the module that raises one
# is loaded by then, and importing the others here would load TensorFlow for commands that need
# none (tests/tfxp/test_cli.py checks that each name is a class at that path).
# Not an error: a run that completes with its model refused returns 3 (commands.EXIT_REFUSED,
# tfxp/local_runs.py), a run that pushes or finds its model already served 0.
EXIT_CODES = {
    "pipeline.config.ConfigError": EXIT_BAD_INPUT,
    "pipeline.run_lock.LockHeld": EXIT_BAD_INPUT,
    "ops.doctor.RunInProgress": EXIT_BAD_INPUT,
    "serving.launch.LaunchError": EXIT_BAD_INPUT,
    "serving.metrics.MonitoringConfigError": EXIT_BAD_INPUT,
    "serving.logging_proxy.ProxyError": EXIT_BAD_INPUT,
    "pipeline.local_runner.PipelineFailed": EXIT_FAILED,
    "pipeline.metadata.StoreDamaged": EXIT_FAILED,
    "pipeline.submit.SubmitError": EXIT_FAILED,
    "serving.client.ClientError": EXIT_FAILED,
    "builtins.OSError": EXIT_FAILED,  # an output directory that cannot be written, a full disk
}


def _exit_code(err: BaseException) -> int | None:
    """The exit code EXIT_CODES gives `err`, or None for an error not listed."""
    for cls in type(err).__mro__:
        code = EXIT_CODES.get(f"{cls.__module__}.{cls.__qualname__}")
        if code is not None:
            return code
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfxp", description=DESCRIPTION)
    commands = Commands(parser)
    for group in (local_runs, operations, kubeflow_pipelines, model_server, live_monitoring):
        group.register(commands)
    commands.add("config", _show_config, "print the resolved configuration")  # last in the help
    return parser


def _show_config(args, config: PipelineConfig) -> int:
    print(json.dumps(config.as_dict(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config, args.overrides) if args.takes_config else None
        return args.handler(args, config)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        code = _exit_code(err)
        if code is None:
            raise
        print(f"error: {err}", file=sys.stderr)
        return code


def entry_point() -> NoReturn:
    """The `tfxp` program: `main`, then a prompt exit.

    With TensorFlow, Beam and TFX loaded, the interpreter's own shutdown (module teardown and
    native destructors) takes seconds after the command has finished (benchmarks/README.md,
    quick tier). Exit handlers run and the output is flushed first; then the process ends. Output
    that cannot be written (a full disk under a redirect) makes a successful command fail; a
    failed command keeps its exit code.
    """
    try:
        code = main()
    except SystemExit as err:  # argparse: usage errors and --help
        code = err.code if isinstance(err.code, int) else EXIT_FAILED if err.code else 0
        if isinstance(err.code, str):
            _last_words(err.code)
    except BaseException as err:  # noqa: BLE001 - whatever it is, the exit code must say failure
        _last_words(f"error: {type(err).__name__}: {err}")
        code = EXIT_FAILED
    # Private: the exit handlers (logging's flush and close, Beam workers kept by this run) must run
    # before os._exit, which skips them; atexit has no public call that runs them early. (os._exit
    # itself is public: the documented way to end a process without the interpreter's teardown.)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError) as err:
            code = code or EXIT_FAILED
            if stream is sys.stdout:
                _last_words(f"error: the output could not be written: {err}")
    os._exit(code)


def _last_words(line: str) -> None:
    """Writes a line straight to descriptor 2, past Python's buffers (which may be what failed)."""
    try:
        os.write(2, (line.rstrip("\n") + "\n").encode(errors="replace"))
    except OSError:
        pass
