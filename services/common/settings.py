"""Command-line flags that also read from the environment (`--storage-root` <- VIDEOPHY_STORAGE_ROOT).

Every flag of every service goes through `env_flag`, so a Kubernetes ConfigMap and a shell user
configure the same thing the same way, and `--help` shows the variable next to each flag.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

ENV_PREFIX = "VIDEOPHY_"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def _parse_bool(value: str) -> bool:
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _env_error(message: str) -> NoReturn:
    """A bad environment value is a usage error, like a bad flag: one line, exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _from_env(var: str, env: str, type: Any, choices: Any) -> Any:
    """Convert and check an environment value as argparse would a flag (argparse never checks defaults)."""
    try:
        value = type(env)
    except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
        _env_error(f"{var}={env!r}: {exc}")
    if choices is not None and value not in choices:
        _env_error(f"{var}={env!r}: invalid choice (choose from {', '.join(map(str, choices))})")
    return value


def env_flag(parser: argparse.ArgumentParser | Any, flag: str, *, default: Any = None,
             help: str = "", type: Any = str, **kwargs: Any) -> None:
    """Add `flag` whose default comes from VIDEOPHY_<FLAG> when set, else `default`."""
    var = env_name(flag)
    if kwargs.get("action") == "store_true":
        env = os.environ.get(var)
        value = _from_env(var, env, _parse_bool, None) if env is not None else bool(default)
        parser.add_argument(flag, default=value, help=f"{help} [env {var}]", **kwargs)
        return
    env = os.environ.get(var)
    value = _from_env(var, env, type, kwargs.get("choices")) if env is not None else default
    parser.add_argument(flag, default=value, type=type, help=f"{help} [env {var}; default: %(default)s]",
                        **kwargs)


def add_server_flags(parser: argparse.ArgumentParser, default_port: int) -> None:
    """Flags every gRPC service takes: bind address, storage, auth, TLS, drain."""
    g = parser.add_argument_group("server")
    env_flag(g, "--bind", default=f"127.0.0.1:{default_port}",
             help="host:port to listen on (loopback by default; 0.0.0.0:PORT in a pod; port 0 picks one)")
    env_flag(g, "--health-bind", default=None,
             help="extra plaintext host:port serving only grpc.health.v1 (Kubernetes probes with TLS on)")
    env_flag(g, "--storage-root", default="./storage", help="shared storage root all artifacts live under")
    env_flag(g, "--auth-token", default=None, help="bearer token callers must send (unset: no token)")
    env_flag(g, "--auth-token-file", default=None, help="file holding the bearer token (a mounted Secret)")
    env_flag(g, "--tls-cert", default=None, help="PEM server certificate (enables TLS)")
    env_flag(g, "--tls-key", default=None, help="PEM server private key")
    env_flag(g, "--tls-client-ca", default=None,
             help="PEM CA bundle; when set, clients must present a certificate (mTLS)")
    env_flag(g, "--grace-s", default=900.0, type=float,
             help="seconds the current item may take to finish after SIGTERM")
    env_flag(g, "--stall-limit-s", default=600.0, type=float,
             help="liveness fails while one device step (a denoising step, a decode, a judge batch) runs "
                  "longer than this: a wedged GPU gets its container restarted (0: off)")
    env_flag(g, "--port-file", default=None, help="write the bound port here once serving (for local mode)")
    env_flag(g, "--log-level", default="INFO", help="logging level")


def read_token(token: str | None, token_file: str | None) -> str | None:
    if token_file:
        with open(token_file, encoding="utf-8") as f:
            return f.read().strip() or None
    return token or None
