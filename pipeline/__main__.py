"""`python -m pipeline` is the `tfxp` command."""

from pipeline.cli import entry_point

entry_point()
