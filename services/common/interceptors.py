"""Server interceptors: the SIGTERM drain, the bearer token, and the mapping of domain errors to codes."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from videophy_bench.common import errors

log = logging.getLogger(__name__)

# Kubernetes' native gRPC probes cannot send a token, so health stays open.
OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/",)
# Infrastructure methods: not domain work, so neither counted by the drain nor error-mapped.
INFRA_METHOD_PREFIXES = (*OPEN_METHOD_PREFIXES, "/grpc.reflection.")

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]


def _rebuild(handler: grpc.RpcMethodHandler, **behaviours: Any) -> grpc.RpcMethodHandler:
    """Same handler with some behaviours replaced (request/response (de)serializers kept)."""
    return handler._replace(**behaviours)  # RpcMethodHandler is a namedtuple in grpcio


def _kind(handler: grpc.RpcMethodHandler) -> str:
    """Name of the handler field that holds the behaviour: unary_unary, unary_stream, ..."""
    request = "stream" if handler.request_streaming else "unary"
    return f"{request}_{'stream' if handler.response_streaming else 'unary'}"


async def _iterate(behaviour: Callable[..., Any], request: Any,
                   context: aio.ServicerContext) -> AsyncIterator[Any]:
    """Run a response-streaming behaviour, whether it is an async generator or a coroutine that
    writes through `context.write` (grpc's own health `Watch` is the latter)."""
    result = behaviour(request, context)
    if hasattr(result, "__aiter__"):
        async for item in result:
            yield item
    else:
        await result


def _wrap(handler: grpc.RpcMethodHandler,
          around: Callable[[Any, aio.ServicerContext], Awaitable[None]]) -> grpc.RpcMethodHandler:
    """`handler` with `around(request, context)` awaited before its behaviour (any of the four kinds)."""
    kind = _kind(handler)
    inner = getattr(handler, kind)
    if handler.response_streaming:
        async def stream(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
            await around(request, context)
            async for item in _iterate(inner, request, context):
                yield item

        return _rebuild(handler, **{kind: stream})

    async def unary(request: Any, context: aio.ServicerContext) -> Any:
        await around(request, context)
        return await inner(request, context)

    return _rebuild(handler, **{kind: unary})



# The one mapping of domain errors onto status codes; the most specific class listed first wins.
STATUS_CODES: tuple[tuple[type[errors.ServiceError], grpc.StatusCode], ...] = (
    (errors.InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),  # PathEscape included
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Busy, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.OutOfMemory, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.NotReady, grpc.StatusCode.UNAVAILABLE),
    (errors.Upstream, grpc.StatusCode.UNAVAILABLE),
    (errors.Cancelled, grpc.StatusCode.CANCELLED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
)


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """Status code and message for any exception; unknown ones are INTERNAL with their type."""
    if isinstance(exc, errors.ServiceError):
        code = next((c for cls, c in STATUS_CODES if isinstance(exc, cls)), grpc.StatusCode.INTERNAL)
        return code, str(exc) or type(exc).__name__
    return grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"

class DrainInterceptor(aio.ServerInterceptor):
    """Counts domain calls in flight and, once draining, refuses new ones with UNAVAILABLE.

    grpc's `server.stop(grace)` refuses every new call at once, health checks included (checked), so
    the drain keeps the server up until this count reaches zero and only then stops it.
    """

    def __init__(self) -> None:
        self.draining = False
        self.inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def _done(self, _: object) -> None:
        self.inflight -= 1
        if self.inflight == 0:
            self._idle.set()

    async def _enter(self, request: Any, context: aio.ServicerContext) -> None:
        if self.draining:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "server is draining; try another replica")
        self.inflight += 1
        self._idle.clear()
        # Fires on every ending (ok, error, cancel, deadline), unlike a finally in a suspended generator.
        context.add_done_callback(self._done)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def intercept_service(self, continuation: Continuation,
                                details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(INFRA_METHOD_PREFIXES):
            return handler
        return _wrap(handler, self._enter)


class TokenAuthInterceptor(aio.ServerInterceptor):
    """Refuses every call but health checks unless it carries `authorization: Bearer <token>`."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(self, continuation: Continuation,
                                details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        if details.method.startswith(OPEN_METHOD_PREFIXES):
            return await continuation(details)
        sent = dict(details.invocation_metadata or ()).get("authorization", "")
        sent_b = sent.encode() if isinstance(sent, str) else sent
        handler = await continuation(details)
        if handler is None or hmac.compare_digest(sent_b, self._expected):
            return handler

        async def deny(request: Any, context: aio.ServicerContext) -> None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

        # Every kind is wrapped: reflection is stream-stream and must not slip through.
        return _wrap(handler, deny)


class ErrorMappingInterceptor(aio.ServerInterceptor):
    """The one place where exceptions become status codes (KServe-style)."""

    async def intercept_service(self, continuation: Continuation,
                                details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(INFRA_METHOD_PREFIXES):
            return handler
        method = details.method
        kind = _kind(handler)
        inner = getattr(handler, kind)
        if handler.response_streaming:
            async def stream(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    async for item in _iterate(inner, request, context):
                        yield item
                except (aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    await _abort(context, method, exc)

            return _rebuild(handler, **{kind: stream})

        async def unary(request: Any, context: aio.ServicerContext) -> Any:
            try:
                return await inner(request, context)
            except (aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as exc:
                await _abort(context, method, exc)

        return _rebuild(handler, **{kind: unary})


async def _abort(context: aio.ServicerContext, method: str, exc: BaseException) -> None:
    code, message = status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.exception("%s failed", method, exc_info=exc)
    else:
        log.info("%s -> %s: %s", method, code.name, message)
    await context.abort(code, message)
