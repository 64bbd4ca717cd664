"""`python -m cofid.demo` (what `make demo` runs)."""

import sys

from cofid.demo.run import main

sys.exit(main())
