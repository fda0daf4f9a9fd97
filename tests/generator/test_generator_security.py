"""Bearer token and (mutual) TLS on the generator, reached with the project's own client config."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from generator_harness import (
    SERVICE_NAME,
    SERVING,
    generate,
    generate_code,
    health_status,
    request,
    tiny_backend,
)
from generator_harness import running_generator as serving
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from videophy_bench.common.channel import ClientConfig, is_ready
from videophy_bench.proto.v1 import common_pb2, generator_pb2_grpc

UNAUTH = grpc.StatusCode.UNAUTHENTICATED


async def _info_code(ch: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.StatusCode:
    try:
        await generator_pb2_grpc.GeneratorServiceStub(ch).GetInfo(
            common_pb2.GetInfoRequest(), metadata=metadata, timeout=5
        )
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


async def _reflection_code(
    ch: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] = ()
) -> grpc.StatusCode:
    stub = reflection_pb2_grpc.ServerReflectionStub(ch)
    try:
        async for _ in stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), metadata=metadata, timeout=5
        ):
            pass
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("source", ["flag", "file"])
def test_token_required_except_for_health(tmp_path: Path, source: str) -> None:
    secret = "s3cret-token"
    if source == "file":
        (tmp_path / "token").write_text(secret + "\n")  # as a mounted Secret: trailing newline
        flags = ["--auth-token-file", str(tmp_path / "token")]
    else:
        flags = ["--auth-token", secret]
    backend = tiny_backend("tiny")

    async def main() -> None:
        async with serving(backend, tmp_path / "st", flags) as run, run.channel() as ch:
            good = ClientConfig(token=secret).metadata
            wrong = ClientConfig(token="nope").metadata
            assert await _info_code(ch) == UNAUTH
            assert await _info_code(ch, wrong) == UNAUTH
            assert await _info_code(ch, (("authorization", secret),)) == UNAUTH  # no "Bearer "
            assert await _info_code(ch, good) == grpc.StatusCode.OK
            assert (await generate_code(ch, request("r1")))[0] == UNAUTH
            assert (await generate_code(ch, request("r1"), metadata=wrong))[0] == UNAUTH
            assert backend.generate_calls == 0
            _, res = await generate(ch, request("r1"), metadata=good)
            assert res.artifact.uri == "videos/p1/r1.mp4"
            # Reflection is stream-stream: it must be behind the token as well.
            assert await _reflection_code(ch) == UNAUTH
            assert await _reflection_code(ch, good) == grpc.StatusCode.OK
            # Kubernetes probes send no token: health stays open, Check and Watch.
            for service in ("", "readiness", SERVICE_NAME):
                assert await health_status(run.target, service) == SERVING
            watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service="readiness"))
            assert (await watch.read()).status == SERVING
            watch.cancel()

    asyncio.run(main())


def test_tls_accepts_trusting_clients_only(tmp_path: Path, tls_material) -> None:
    t = tls_material
    flags = ["--tls-cert", str(t.server_cert), "--tls-key", str(t.server_key)]
    trusting = ClientConfig(tls_ca=str(t.ca))

    async def main() -> None:
        async with serving(tiny_backend("tiny"), tmp_path, flags, client=trusting) as run:
            async with run.channel(trusting) as ch:
                assert await _info_code(ch) == grpc.StatusCode.OK
                _, res = await generate(ch, request("tls"))
                assert res.artifact.uri
                assert await is_ready(ch)
            async with run.channel(ClientConfig(tls_ca=str(t.other_ca))) as ch:
                assert await _info_code(ch) == grpc.StatusCode.UNAVAILABLE  # unknown issuer
            async with run.channel() as ch:  # plaintext against a TLS port
                assert await _info_code(ch) == grpc.StatusCode.UNAVAILABLE

    asyncio.run(main())


def test_mtls_refuses_clients_without_a_certificate(tmp_path: Path, tls_material) -> None:
    t = tls_material
    flags = [
        "--tls-cert",
        str(t.server_cert),
        "--tls-key",
        str(t.server_key),
        "--tls-client-ca",
        str(t.ca),
        "--auth-token",
        "tok",
    ]
    with_cert = ClientConfig(
        tls_ca=str(t.ca), tls_cert=str(t.client_cert), tls_key=str(t.client_key), token="tok"
    )

    async def main() -> None:
        async with serving(tiny_backend("tiny"), tmp_path, flags, client=with_cert) as run:
            async with run.channel(with_cert) as ch:
                assert await _info_code(ch, with_cert.metadata) == grpc.StatusCode.OK
                assert await _info_code(ch) == UNAUTH  # mTLS does not replace the token
            async with run.channel(ClientConfig(tls_ca=str(t.ca), token="tok")) as ch:
                assert await _info_code(ch, (("authorization", "Bearer tok"),)) == grpc.StatusCode.UNAVAILABLE
                assert not await is_ready(ch)

    asyncio.run(main())


def test_plaintext_health_port_answers_probes_while_the_service_port_is_tls_only(
    tmp_path: Path, tls_material
) -> None:
    """Kubernetes' gRPC probes speak plaintext: --health-bind serves health alone, without TLS."""
    t = tls_material
    flags = ["--tls-cert", str(t.server_cert), "--tls-key", str(t.server_key), "--health-bind", "127.0.0.1:0"]
    trusting = ClientConfig(tls_ca=str(t.ca))

    async def main() -> None:
        async with serving(tiny_backend("tiny"), tmp_path, flags, client=trusting) as run:
            assert run.host.health_port and run.host.health_port != run.host.port
            async with grpc.aio.insecure_channel(f"127.0.0.1:{run.host.health_port}") as ch:
                assert await is_ready(ch)  # readiness over plaintext
                code = await _info_code(ch)  # ... and nothing but health there
                assert code == grpc.StatusCode.UNIMPLEMENTED

    asyncio.run(main())
