"""Domain errors of the services: what went wrong, in the model's terms, without transport codes.

Backends, engines and servicers raise these; `videophy_bench.common.interceptors` maps them onto gRPC status
codes in one place (KServe's `InvalidInput` style), so this module imports no grpc and the generator's
presets, the judges and the orchestrator's early checks can raise them without a transport in sight.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a service reports to its caller (unmapped subclasses become INTERNAL)."""


class InvalidRequest(ServiceError):
    """The request can never succeed as sent (bad size, empty prompt, unknown task...)."""


class PathEscape(InvalidRequest):
    """A path would leave the storage root."""


class FailedPrecondition(ServiceError):
    """The request is well formed but the world is not as it needs (missing or corrupt video)."""


class Busy(ServiceError):
    """The replica is working on another item; the caller should try another replica."""


class OutOfMemory(ServiceError):
    """The device ran out of memory even after the low-memory fallback."""


class NotReady(ServiceError):
    """The model is not loaded yet, or the server is draining."""


class Upstream(ServiceError):
    """A service this one depends on (a model endpoint) kept failing; the caller may try again later."""


class Cancelled(ServiceError):
    """The caller cancelled or its deadline expired; work stopped at a step boundary."""


class Unauthenticated(ServiceError):
    """The caller's token is missing or wrong."""
