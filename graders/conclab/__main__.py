"""`python -m conclab`: the same as the `conclab` command."""

import sys

from .cli import main

sys.exit(main())
