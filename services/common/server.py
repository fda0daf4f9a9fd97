"""grpc.aio server bootstrap shared by the generator and the evaluator.

Health (`""` for liveness, `readiness` and the service's full name for readiness; liveness also fails
while the device watchdog sees a stalled step, services/common/watchdog.py), reflection,
the token and error interceptors, optional (mutual) TLS, and a SIGTERM drain: readiness goes
NOT_SERVING, new calls get UNAVAILABLE, the item in flight gets `grace_s` to finish while health
keeps answering (`""` stays SERVING), then the server stops and the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from videophy_bench.common.entry import one_line
from videophy_bench.common.interceptors import DrainInterceptor, ErrorMappingInterceptor, TokenAuthInterceptor
from videophy_bench.common.watchdog import DeviceWatchdog

log = logging.getLogger(__name__)

READINESS = "readiness"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# Item results travel as URIs; the limit is raised only as a margin for long raw judge texts.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class WatchedHealth(health.aio.HealthServicer):
    """grpc.health.v1 whose liveness ("") is NOT_SERVING while the watchdog names a stalled device step.

    Computed at each Check (the kubelet's probe), so nothing has to poll the watchdog; the first failing
    check logs the reason once per stall."""

    def __init__(self) -> None:
        super().__init__()
        self.watchdog: DeviceWatchdog | None = None  # set by run_service from the servicer's
        self._reported: str | None = None

    async def Check(self, request, context):
        if request.service == "" and self.watchdog is not None:
            reason = self.watchdog.stalled()
            if reason is not None:
                if self._reported is None:
                    log.error("liveness NOT_SERVING: %s (a wedged device?)", reason)
                self._reported = reason
                return health_pb2.HealthCheckResponse(status=NOT_SERVING)
            if self._reported is not None:
                log.warning("liveness SERVING again: the stalled step finished")
                self._reported = None
        return await super().Check(request, context)


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
    # Plaintext health-only listener: Kubernetes' native gRPC probes cannot speak TLS.
    health_bind: str | None = None
    health_server: aio.Server | None = None
    health_port: int = 0
    health: WatchedHealth = field(default_factory=WatchedHealth)
    server: aio.Server | None = None
    port: int = 0
    draining: asyncio.Event = field(default_factory=asyncio.Event)
    drain_interceptor: DrainInterceptor = field(default_factory=DrainInterceptor, init=False, repr=False)
    _signal_tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    async def start(self) -> int:
        interceptors: list[aio.ServerInterceptor] = [self.drain_interceptor]
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
        if self.health_bind:
            self.health_server = aio.server(options=[("grpc.so_reuseport", 0)])
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.health_server)
            self.health_port = self.health_server.add_insecure_port(self.health_bind)
            if self.health_port == 0:
                raise RuntimeError(f"could not bind {self.health_bind}")
            await self.health_server.start()
            log.info("health (plaintext) on %s (port %d)", self.health_bind, self.health_port)
        log.info("listening on %s (port %d, tls=%s, token=%s)", self.bind, self.port, bool(self.tls),
                 bool(self.token))
        return self.port

    async def set_ready(self, ready: bool) -> None:
        if ready and self.draining.is_set():
            return  # a load that finishes during the drain must not turn readiness back on
        status = SERVING if ready else NOT_SERVING
        for name in (READINESS, *self.service_names):
            await self.health.set(name, status)

    async def drain(self) -> None:
        """Readiness off, finish in-flight work within the grace period, stop."""
        if self.draining.is_set() or self.server is None:
            return
        self.draining.set()
        log.info("draining: readiness NOT_SERVING, grace %.0fs", self.grace_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace_s
        await self.set_ready(False)  # liveness ("") stays SERVING through the drain
        # server.stop(grace) would refuse health checks at once, so wait for idle with it still up.
        self.drain_interceptor.draining = True
        try:
            await asyncio.wait_for(self.drain_interceptor.wait_idle(), self.grace_s)
        except TimeoutError:
            log.warning("grace period over with %d call(s) in flight; cancelling them",
                        self.drain_interceptor.inflight)
        await self.server.stop(max(0.0, deadline - loop.time()))
        if self.health_server is not None:
            await self.health_server.stop(0)

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            task = asyncio.ensure_future(self.drain())
            self._signal_tasks.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._signal_tasks.discard)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)

    async def wait(self) -> None:
        assert self.server is not None
        await self.server.wait_for_termination()


class ModelLoadError(RuntimeError):
    """The service's model could not be loaded; the process exits (code 1)."""


def write_port_file(path: str | None, port: int) -> None:
    """Local mode learns an ephemeral port from this file; written atomically."""
    if not path:
        return
    p = Path(path)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(str(port))
    tmp.replace(p)


async def run_service(args, service_name: str, register: Callable[[aio.Server], None],
                      load: Callable[[], Awaitable[None]],
                      on_listening: Callable[[ServiceHost], None] | None = None,
                      watchdog: DeviceWatchdog | None = None) -> None:
    """Serve until SIGTERM/SIGINT: bind (health NOT_SERVING), load the model, go ready, drain on signal.

    `args` carries the flags of `settings.add_server_flags`. The port is bound before the (minutes
    long) model load so probes and local mode see the process at once. `watchdog` (the servicer's, on
    its device threads) turns liveness NOT_SERVING while a step is stalled.
    """
    from videophy_bench.common.settings import read_token

    tls = TlsFiles(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    host = ServiceHost(bind=args.bind, service_names=[service_name], register=register,
                       token=read_token(args.auth_token, args.auth_token_file), tls=tls, grace_s=args.grace_s,
                       health_bind=args.health_bind)
    if watchdog is not None:
        host.health.watchdog = watchdog
    port = await host.start()
    host.install_signal_handlers()
    write_port_file(args.port_file, port)
    if on_listening is not None:
        on_listening(host)  # embedding and tests reach the port and `host.drain()` through it
    try:
        await load()
    except Exception as exc:
        await host.server.stop(0)
        # One line for the caller to print (the entry point shows the chained traceback at DEBUG).
        raise ModelLoadError(f"model load failed: {one_line(exc)}") from exc
    await host.set_ready(True)
    await host.wait()
