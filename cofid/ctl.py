"""`cofictl`: the operators' command line over gRPC."""

import sys


def main() -> int:
    print("cofictl: not yet available in this version (the gRPC control plane lands first)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
