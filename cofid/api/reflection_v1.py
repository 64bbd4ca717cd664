"""Server reflection as grpc.reflection.v1 as well as grpc.reflection.v1alpha.

grpcio-reflection (1.85 here) ships only the v1alpha service, while current clients
(grpcurl ≥ 1.9, Postman, grpcui) ask for grpc.reflection.v1 first. The two protocols are
the same messages under two package names (grpc/reflection/v1/reflection.proto is
v1alpha's with the package renamed; every field keeps its number and type), so the bytes
on the wire are identical: the v1 method is registered here as a generic handler that
hands v1alpha's servicer the same request messages. When grpcio-reflection gains v1, use
its module instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"


def enable(service_names: Sequence[str], server: grpc.Server) -> None:
    """Serve reflection for `service_names` (and both reflection services) on `server`."""
    names = (*service_names, reflection.SERVICE_NAME, V1_SERVICE_NAME)
    servicer = reflection.ReflectionServicer(names)
    reflection.enable_server_reflection(names, server)
    handler = grpc.method_handlers_generic_handler(
        V1_SERVICE_NAME,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            ),
        },
    )
    server.add_generic_rpc_handlers((handler,))
