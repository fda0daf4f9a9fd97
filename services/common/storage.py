"""The shared storage root: URIs are POSIX paths relative to it, writes are atomic.

Every service mounts the same volume (a ReadWriteMany PVC on Kubernetes, a directory locally),
possibly at different mount points, so only root-relative URIs cross the wire.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from videophy_bench.common.errors import PathEscape

FILE_MODE = 0o644
_SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def safe_component(value: str, what: str = "name") -> str:
    """Return `value` if it is safe as one path component (no separators, no dot-dot), else raise."""
    if not _SAFE_COMPONENT.fullmatch(value) or value in {".", ".."}:
        raise PathEscape(f"{what} {value!r} is not a safe file name (letters, digits, '.', '_', '-')")
    return value


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class Storage:
    """A directory tree that no URI may escape."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def resolve(self, uri: str) -> Path:
        """Absolute path of a root-relative URI; raises PathEscape for anything that leaves the root."""
        if not uri or "\x00" in uri:
            raise PathEscape("empty or NUL-containing storage URI")
        rel = PurePosixPath(uri)
        if rel.is_absolute() or ".." in rel.parts:
            raise PathEscape(f"storage URI {uri!r} must be relative and stay under the storage root")
        path = (self.root / rel).resolve()
        if path != self.root and self.root not in path.parents:
            raise PathEscape(f"storage URI {uri!r} resolves outside the storage root")
        return path

    def uri_of(self, path: Path) -> str:
        path = Path(path).resolve()
        if self.root not in path.parents:
            raise PathEscape(f"{path} is not under the storage root {self.root}")
        return path.relative_to(self.root).as_posix()

    @contextmanager
    def atomic_path(self, uri: str, suffix: str = "") -> Iterator[Path]:
        """Yield a temporary path beside `uri`; on success rename it into place, else delete it."""
        final = self.resolve(uri)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{suffix}", dir=final.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            with open(tmp_path, "rb") as f:
                os.fsync(f.fileno())
            # mkstemp creates 0600; other services (often another UID on the shared volume) must read it.
            os.chmod(tmp_path, FILE_MODE)
            os.replace(tmp_path, final)
        finally:
            tmp_path.unlink(missing_ok=True)

    def write_bytes_atomic(self, uri: str, data: bytes) -> Path:
        with self.atomic_path(uri) as tmp:
            tmp.write_bytes(data)
        return self.resolve(uri)

    def intact(self, uri: str, sha256: str | None = None) -> bool:
        """True when the file exists, is non-empty and (if given) has the expected sha256."""
        try:
            path = self.resolve(uri)
        except PathEscape:
            return False
        if not path.is_file() or path.stat().st_size == 0:
            return False
        return sha256 is None or sha256_file(path) == sha256
