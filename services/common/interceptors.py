"""Server interceptors: one for the bearer token, one that maps domain errors to status codes."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from services.common.errors import status_for

log = logging.getLogger(__name__)

# Kubernetes' native gRPC probes cannot send a token, so health stays open.
OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/",)


def _rebuild(handler: grpc.RpcMethodHandler, **behaviours: Any) -> grpc.RpcMethodHandler:
    """Same handler with some behaviours replaced (request/response (de)serializers kept)."""
    return handler._replace(**behaviours)  # RpcMethodHandler is a namedtuple in grpcio


class TokenAuthInterceptor(aio.ServerInterceptor):
    """Refuses every call but health checks unless it carries `authorization: Bearer <token>`."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if details.method.startswith(OPEN_METHOD_PREFIXES):
            return await continuation(details)
        sent = dict(details.invocation_metadata or ()).get("authorization", "")
        sent_b = sent.encode() if isinstance(sent, str) else sent
        if hmac.compare_digest(sent_b, self._expected):
            return await continuation(details)
        handler = await continuation(details)
        if handler is None:
            return None

        async def deny_unary(request: Any, context: aio.ServicerContext) -> None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

        async def deny_stream(request: Any, context: aio.ServicerContext):  # noqa: ANN202
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
            yield  # pragma: no cover - makes this an async generator

        if handler.unary_stream:
            return _rebuild(handler, unary_stream=deny_stream)
        return _rebuild(handler, unary_unary=deny_unary)


class ErrorMappingInterceptor(aio.ServerInterceptor):
    """The one place where exceptions become status codes (KServe-style)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        if handler.unary_unary:
            inner_uu = handler.unary_unary

            async def unary(request: Any, context: aio.ServicerContext) -> Any:
                try:
                    return await inner_uu(request, context)
                except (aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    await _abort(context, method, exc)

            return _rebuild(handler, unary_unary=unary)
        if handler.unary_stream:
            inner_us = handler.unary_stream

            async def stream(request: Any, context: aio.ServicerContext):  # noqa: ANN202
                try:
                    async for item in inner_us(request, context):
                        yield item
                except (aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    await _abort(context, method, exc)

            return _rebuild(handler, unary_stream=stream)
        return handler


async def _abort(context: aio.ServicerContext, method: str, exc: BaseException) -> None:
    code, message = status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.exception("%s failed", method, exc_info=exc)
    else:
        log.info("%s -> %s: %s", method, code.name, message)
    await context.abort(code, message)
