"""`python -m edgefx.cli`: the same as the `edgefx` command."""

import sys

from edgefx.cli import main

sys.exit(main())
