"""`python -m cofid.simworker`: the same as `cofi-simworker`."""

from cofid.simworker.cli import main

main()
