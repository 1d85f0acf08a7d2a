"""An independent gRPC client for ecca: health, reflection (v1 and v1alpha), and a dynamic call.

Usage: grpc_client_check.py HOST:PORT CREDENTIAL_DIR
Exits non-zero (with a message) on any deviation.
"""
import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

SERVICE = "ecca.v1.CertificateAuthority"


def main(addr: str, cred_dir: str) -> None:
    def read(name: str) -> bytes:
        with open(f"{cred_dir}/{name}", "rb") as f:
            return f.read()

    creds = grpc.ssl_channel_credentials(
        root_certificates=read("ca.pem"), private_key=read("key.pem"), certificate_chain=read("cert.pem")
    )
    channel = grpc.secure_channel(addr, creds)

    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
        if status != health_pb2.HealthCheckResponse.SERVING:
            sys.exit(f"health({service!r}) = {status}")
    print("health: SERVING")

    # The v1 and v1alpha messages are identical on the wire.
    for version in ("v1", "v1alpha"):
        call = channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        responses = list(call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
        names = [s.name for s in responses[0].list_services_response.service]
        if SERVICE not in names:
            sys.exit(f"reflection {version} does not list {SERVICE}: {names}")
        print(f"reflection {version}: {', '.join(sorted(names))}")

    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    method = pool.FindServiceByName(SERVICE).methods_by_name["ListProfiles"]
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    list_profiles = channel.unary_unary(
        f"/{SERVICE}/ListProfiles",
        request_serializer=request_cls.SerializeToString,
        response_deserializer=response_cls.FromString,
    )
    profiles = [p.name for p in list_profiles(request_cls(), timeout=10).profiles]
    print(f"profiles via reflection: {', '.join(profiles)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
