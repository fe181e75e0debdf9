"""`python -m attnlab` runs the command line (also how `torchrun -m attnlab` starts it)."""

import sys

from attnlab.cli import main

sys.exit(main())
