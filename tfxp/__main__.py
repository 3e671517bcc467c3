"""`python -m tfxp` is the `tfxp` command."""

from tfxp.main import entry_point

entry_point()
