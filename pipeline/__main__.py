"""`python -m pipeline` is the `tfxp` command."""

import sys

from pipeline.cli import main

sys.exit(main())
