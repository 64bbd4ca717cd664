"""`python -m cofid.ctl`: the same as the `cofictl` entry point."""

import sys

from cofid.ctl.main import main

sys.exit(main())
