"""Domain errors and their one mapping onto gRPC status codes.

Backends and servicers raise these; `services.common.interceptors.ErrorMappingInterceptor` turns
them into status codes in one place, so no servicer calls `context.abort` by hand.
"""

from __future__ import annotations

import grpc


class ServiceError(Exception):
    """Base of every error a service reports to its caller."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidRequest(ServiceError):
    """The request can never succeed as sent (bad size, empty prompt, unknown task...)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class PathEscape(InvalidRequest):
    """A path would leave the storage root."""


class FailedPrecondition(ServiceError):
    """The request is well formed but the world is not as it needs (missing or corrupt video)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Busy(ServiceError):
    """The replica is working on another item; the caller should try another replica."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class OutOfMemory(ServiceError):
    """The device ran out of memory even after the low-memory fallback."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class NotReady(ServiceError):
    """The model is not loaded yet, or the server is draining."""

    code = grpc.StatusCode.UNAVAILABLE


class Upstream(ServiceError):
    """A service this one depends on (a model endpoint) kept failing; the caller may try again later."""

    code = grpc.StatusCode.UNAVAILABLE


class Cancelled(ServiceError):
    """The caller cancelled or its deadline expired; work stopped at a step boundary."""

    code = grpc.StatusCode.CANCELLED


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """Status code and message for any exception; unknown ones are INTERNAL with their type."""
    if isinstance(exc, ServiceError):
        return exc.code, str(exc) or type(exc).__name__
    return grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"
