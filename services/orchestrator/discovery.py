"""Replica discovery: a comma list of `host:port` and/or `dns:///name:port` targets.

A `dns:///` target is resolved with getaddrinfo to every address (a Kubernetes headless Service
returns one A record per ready pod) and re-resolved by the dispatcher every few seconds, so
replicas can join and leave during a run. Plain `host:port` entries are used as written. A
`Target.pool` (local mode) asks its owner for the current addresses at every resolve: a supervised
child restarted on a new port is picked up like a pod that joined.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

DNS_SCHEME = "dns:///"


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    dns: bool
    addresses: Callable[[], set[str]] | None = field(default=None, compare=False)

    @classmethod
    def pool(cls, name: str, addresses: Callable[[], set[str]]) -> Target:
        """Replicas whose addresses `addresses()` gives at each resolve (e.g. supervised children)."""
        return cls(name, 0, False, addresses)


def _split_host_port(text: str, spec: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad replica address {text!r} in {spec!r}: expected host:port or dns:///name:port")
    return host.strip("[]"), int(port)


def parse_targets(spec: str | None) -> list[Target]:
    """Parse `a:1,b:2,dns:///svc.ns.svc.cluster.local:50051`; empty or None gives []."""
    out = []
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        dns = part.startswith(DNS_SCHEME)
        host, port = _split_host_port(part[len(DNS_SCHEME) :] if dns else part, spec or "")
        out.append(Target(host, port, dns))
    return out


def format_address(host: str, port: int) -> str:
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


def _lookup(target: Target) -> set[str]:
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return set()  # a headless Service with no ready pod has no records: no replicas for now
    return {format_address(info[4][0], target.port) for info in infos}


async def resolve(targets: list[Target]) -> set[str]:
    """Current replica addresses of all targets (DNS lookups run off the event loop)."""
    out: set[str] = set()
    for t in targets:
        if t.addresses is not None:
            out |= t.addresses()
        elif t.dns:
            out |= await asyncio.to_thread(_lookup, t)
        else:
            out.add(format_address(t.host, t.port))
    return out
