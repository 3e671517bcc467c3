"""What the command groups share: how a subcommand is added, the options several take, the exit codes.

Each group module (local_runs, operations, kubeflow_pipelines, model_server, live_monitoring)
registers its subcommands here and holds their handlers. A handler gets the parsed arguments and
the config, loaded and validated once in `main`, and calls the packages: pipeline/ (runs,
compiling, submitting), ops/ and serving/. Handlers import them inside the function, so that a
command that needs no TensorFlow does not load it (tests/tfxp/test_cli_quiet.py).
"""

from __future__ import annotations

import argparse
from typing import Callable

from pipeline.config import PipelineConfig

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_REFUSED = 3  # a run that completed and pushed nothing: its model was refused (tfxp run)

Handler = Callable[[argparse.Namespace, PipelineConfig | None], int]


class Commands:
    """The `tfxp` parser's subcommands, with the parent parsers of the options several commands take:
    the config (every command that takes one), and a run's options (`run_options`; with the
    help prefixed for `monitor --retrain`, `retrain_options`)."""

    def __init__(self, parser: argparse.ArgumentParser):
        self._sub = parser.add_subparsers(dest="command", required=True)
        self._config = argparse.ArgumentParser(add_help=False)
        self._config.add_argument("--config", "-c", help="pipeline config YAML (default: the bundled taxi config)")
        self._config.add_argument(
            "--set",
            "-s",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config value, e.g. --set trainer.train_steps=200 (repeatable)",
        )
        self.run_options = _run_options("")
        self.retrain_options = _run_options("with --retrain: ")

    def add(
        self, name: str, handler: Handler, help: str, *parents: argparse.ArgumentParser, takes_config: bool = True
    ) -> argparse.ArgumentParser:
        """A subcommand; its handler gets the parsed arguments and the loaded config (None
        for a command that takes none)."""
        cmd = self._sub.add_parser(name, help=help, parents=[self._config, *parents] if takes_config else list(parents))
        cmd.set_defaults(handler=handler, takes_config=takes_config)
        return cmd


def _run_options(prefix: str) -> argparse.ArgumentParser:
    run = argparse.ArgumentParser(add_help=False)
    run.add_argument("--verbose", "-v", action="store_true", help=f"{prefix}also print TFX's own logs")
    run.add_argument(
        "--wait-lock",
        action="store_true",
        help=f"{prefix}if another run uses the output directory, wait for it"
        + ("" if prefix else " instead of stopping"),
    )
    return run
