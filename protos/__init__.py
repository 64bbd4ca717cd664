"""The gRPC contract of cofid (``protos/cofi/v1/*.proto``) and its generated modules.

Import the generated code as ``from protos.cofi.v1 import cofi_pb2, cofi_pb2_grpc``; the
modules are committed and regenerated with ``make protos`` (scripts/gen_protos.sh).
"""
