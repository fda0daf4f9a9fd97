"""grpc.aio server bootstrap shared by the generator and the evaluator.

Health (`""` for liveness, `readiness` and the service's full name for readiness), reflection,
the token and error interceptors, optional (mutual) TLS, and a SIGTERM drain: readiness goes
NOT_SERVING, the item in flight gets `grace_s` to finish, then the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.interceptors import ErrorMappingInterceptor, TokenAuthInterceptor

log = logging.getLogger(__name__)

READINESS = "readiness"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# Item results travel as URIs; the limit is raised only as a margin for long raw judge texts.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass
class TlsFiles:
    cert: str
    key: str
    client_ca: str | None = None

    def credentials(self) -> grpc.ServerCredentials:
        pair = [(Path(self.key).read_bytes(), Path(self.cert).read_bytes())]
        if self.client_ca:
            return grpc.ssl_server_credentials(
                pair, root_certificates=Path(self.client_ca).read_bytes(), require_client_auth=True
            )
        return grpc.ssl_server_credentials(pair)


@dataclass
class ServiceHost:
    """One aio server hosting one domain servicer plus health and reflection."""

    bind: str
    service_names: Sequence[str]
    register: Callable[[aio.Server], None]
    token: str | None = None
    tls: TlsFiles | None = None
    grace_s: float = 900.0
    health: health.aio.HealthServicer = field(default_factory=health.aio.HealthServicer)
    server: aio.Server | None = None
    port: int = 0
    draining: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> int:
        interceptors: list[aio.ServerInterceptor] = []
        if self.token:
            interceptors.append(TokenAuthInterceptor(self.token))
        interceptors.append(ErrorMappingInterceptor())
        self.server = aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self.register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*self.service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME),
            self.server,
        )
        if self.tls:
            self.port = self.server.add_secure_port(self.bind, self.tls.credentials())
        else:
            self.port = self.server.add_insecure_port(self.bind)
        if self.port == 0:
            raise RuntimeError(f"could not bind {self.bind}")
        await self.set_ready(False)
        await self.server.start()
        log.info("listening on %s (port %d, tls=%s, token=%s)", self.bind, self.port, bool(self.tls),
                 bool(self.token))
        return self.port

    async def set_ready(self, ready: bool) -> None:
        status = SERVING if ready else NOT_SERVING
        for name in (READINESS, *self.service_names):
            await self.health.set(name, status)

    async def drain(self) -> None:
        """Readiness off, finish in-flight work within the grace period, stop."""
        if self.draining.is_set() or self.server is None:
            return
        self.draining.set()
        log.info("draining: readiness NOT_SERVING, grace %.0fs", self.grace_s)
        await self.set_ready(False)  # liveness ("") stays SERVING through the drain
        await self.server.stop(self.grace_s)

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(self.drain()))

    async def wait(self) -> None:
        assert self.server is not None
        await self.server.wait_for_termination()


def write_port_file(path: str | None, port: int) -> None:
    """Local mode learns an ephemeral port from this file; written atomically."""
    if not path:
        return
    p = Path(path)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(str(port))
    tmp.replace(p)
