"""Fixtures shared by every service's tests (keep this small; per-service fixtures live beside the tests)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class TlsMaterial:
    """A throwaway PKI: one CA, a server cert for 127.0.0.1/localhost, a client cert, and a stranger CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # signed nothing here: a client trusting only this must refuse the server


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _new_key(name: str) -> tuple[str, ...]:
    """`openssl req` arguments for a fresh unencrypted P-256 key written to <name>.key."""
    return ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key")


def _ca(name: str, d: Path) -> None:
    _openssl("req", "-x509", *_new_key(name), "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
             cwd=d)


def _leaf(name: str, ca: str, ext: str, d: Path) -> None:
    _openssl("req", *_new_key(name), "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    (d / f"{name}.ext").write_text(ext)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """Certificates made with the openssl CLI (the `cryptography` package is not installed here)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    d = tmp_path_factory.mktemp("pki")
    _ca("ca", d)
    _ca("other-ca", d)
    _leaf("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n", d)
    _leaf("client", "ca", "extendedKeyUsage=clientAuth\n", d)
    return TlsMaterial(
        ca=d / "ca.pem",
        server_cert=d / "server.pem",
        server_key=d / "server.key",
        client_cert=d / "client.pem",
        client_key=d / "client.key",
        other_ca=d / "other-ca.pem",
    )
