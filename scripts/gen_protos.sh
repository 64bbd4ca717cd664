#!/usr/bin/env bash
# Regenerate the Python modules of the gRPC contract (what `make protos` runs).
#
#   scripts/gen_protos.sh            # writes protos/cofi/v1/*_pb2.py, *_pb2_grpc.py, *_pb2.pyi
#   scripts/gen_protos.sh OUT_DIR    # writes OUT_DIR/cofi/v1/... instead (tests compare)
#
# PYTHON selects the interpreter (default: .venv/bin/python if present, else python3); it
# must have grpcio-tools. The output depends only on the .proto files and the grpcio-tools
# version (which pins protoc and the protobuf gencode version), so regenerating with the
# same grpcio-tools gives byte-identical files; tests/api/test_protos.py checks that.
#
# protoc is run with `-I protos`, so the descriptors are named "cofi/v1/<file>.proto" and
# the generated cross-module imports read `from cofi.v1 import x_pb2`. The fix-up below
# rewrites them to `from protos.cofi.v1 import x_pb2`, which resolves both from a checkout
# (repo root on sys.path) and from the installed distribution (package `protos`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then
        PYTHON="$ROOT/.venv/bin/python"
    else
        PYTHON=python3
    fi
fi
OUT="${1:-$ROOT/protos}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# Sorted bytewise. protoc names each file relative to the -I root ("cofi/v1/x.proto").
cd "$ROOT"
export LC_ALL=C
shopt -s nullglob
PROTOS=(protos/cofi/v1/*.proto)
if [[ ${#PROTOS[@]} -eq 0 ]]; then
    echo "gen_protos: no .proto files under protos/cofi/v1" >&2
    exit 1
fi

"$PYTHON" -m grpc_tools.protoc \
    -I protos \
    --python_out="$TMP" \
    --grpc_python_out="$TMP" \
    --pyi_out="$TMP" \
    "${PROTOS[@]}"

"$PYTHON" - "$TMP/cofi/v1" <<'PY'
import pathlib
import re
import sys

gen = pathlib.Path(sys.argv[1])
pattern = re.compile(r"^(from|import) cofi\.v1(\b)", re.MULTILINE)
for path in sorted(gen.iterdir()):
    if not path.name.endswith(("_pb2.py", "_pb2_grpc.py", "_pb2.pyi")):
        continue
    text = path.read_text(encoding="utf-8")
    fixed = pattern.sub(r"\1 protos.cofi.v1\2", text)
    if path.suffix == ".pyi" and not fixed.startswith("# ruff: noqa"):
        # Generated stubs are neither linted nor formatted (pyproject.toml excludes only
        # the generated .py files).
        fixed = "# ruff: noqa\n# fmt: off\n" + fixed
    path.write_text(fixed, encoding="utf-8")
PY

mkdir -p "$OUT/cofi/v1"
rm -f "$OUT"/cofi/v1/*_pb2.py "$OUT"/cofi/v1/*_pb2_grpc.py "$OUT"/cofi/v1/*_pb2.pyi
cp "$TMP"/cofi/v1/*_pb2.py "$TMP"/cofi/v1/*_pb2_grpc.py "$TMP"/cofi/v1/*_pb2.pyi "$OUT/cofi/v1/"
echo "gen_protos: wrote $(cd "$TMP/cofi/v1" && ls | wc -l | tr -d ' ') files to $OUT/cofi/v1"
