"""`cofi-tui`: live monitoring over the gRPC event stream."""

import sys


def main() -> int:
    print("cofi-tui: not yet available in this version (the gRPC control plane lands first)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
