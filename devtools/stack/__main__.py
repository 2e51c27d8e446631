"""`python3 -m devtools.stack` is `scripts/stack`."""

import sys

from devtools.stack.cli import main

sys.exit(main())
