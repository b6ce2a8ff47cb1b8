"""`python -m traede_local`: the same as `traede-local`."""

import sys

from traede_local.cli import main

sys.exit(main())
