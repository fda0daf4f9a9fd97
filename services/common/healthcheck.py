"""Container health check over grpc.health.v1: exit 0 when the service reports SERVING.

Used by the images' Docker HEALTHCHECK (`python -m videophy_bench.common.healthcheck`); Kubernetes uses its
native gRPC probes instead. The port comes from VIDEOPHY_HEALTH_BIND (the plaintext health-only
listener a TLS server adds) or else VIDEOPHY_BIND. Health needs no token (interceptors.OPEN_METHOD_PREFIXES).
"""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from videophy_bench.common.arguments import Parser
from videophy_bench.common.server import READINESS


def target_from_bind(bind: str) -> str:
    """`0.0.0.0:50051` / `[::]:50051` -> `127.0.0.1:50051`: a wildcard bind is reached via loopback."""
    host, _, port = bind.rpartition(":")
    if host in {"", "0.0.0.0", "[::]", "::"}:
        host = "127.0.0.1"
    return f"{host}:{port}"


def check(target: str, service: str, timeout_s: float) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            resp = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError as e:
            print(f"unhealthy: {target} service={service!r}: {e.code().name}", file=sys.stderr)
            return False
    ok = resp.status == health_pb2.HealthCheckResponse.SERVING
    if not ok:
        name = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
        print(f"unhealthy: {target} service={service!r}: {name}", file=sys.stderr)
    return ok


def main(argv: list[str] | None = None) -> int:
    p = Parser(
        allow_abbrev=False, prog="python -m videophy_bench.common.healthcheck", description=__doc__)
    p.add_argument("--target", default=None,
                   help="host:port (default: VIDEOPHY_HEALTH_BIND, else VIDEOPHY_BIND, else 127.0.0.1:50051)")
    p.add_argument("--service", default=READINESS, help="health service name ('' = liveness, 'readiness')")
    p.add_argument("--timeout-s", type=float, default=3.0)
    args = p.parse_args(argv)
    bind = os.environ.get("VIDEOPHY_HEALTH_BIND") or os.environ.get("VIDEOPHY_BIND", "127.0.0.1:50051")
    target = args.target or target_from_bind(bind)
    return 0 if check(target, args.service, args.timeout_s) else 1


if __name__ == "__main__":
    sys.exit(main())
