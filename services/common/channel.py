"""Client side: channels with optional (mutual) TLS and the bearer token, plus health checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from videophy_bench.common.server import MAX_MESSAGE_BYTES, READINESS

CHANNEL_OPTIONS = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Long items stream progress, so keepalive pings are never needed to keep calls alive.
    ("grpc.enable_retries", 0),
)


@dataclass(frozen=True)
class ClientConfig:
    token: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    server_name: str | None = None

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def open(self, target: str) -> aio.Channel:
        options = list(CHANNEL_OPTIONS)
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        if self.tls_ca or self.tls_cert:
            creds = grpc.ssl_channel_credentials(
                root_certificates=Path(self.tls_ca).read_bytes() if self.tls_ca else None,
                private_key=Path(self.tls_key).read_bytes() if self.tls_key else None,
                certificate_chain=Path(self.tls_cert).read_bytes() if self.tls_cert else None,
            )
            return aio.secure_channel(target, creds, options=options)
        return aio.insecure_channel(target, options=options)


async def is_ready(channel: aio.Channel, timeout_s: float = 2.0, service: str = READINESS) -> bool:
    """True when the replica's readiness health status is SERVING."""
    try:
        resp = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
        )
    except grpc.aio.AioRpcError:
        return False
    return resp.status == health_pb2.HealthCheckResponse.SERVING
