"""Preflight of the shared volumes: write, flock and measure throughput as the pods' UID.

`python -m videophy_bench.orchestrator.volume_check DIR [DIR ...]` runs in the preflight Job of
`videophy-bench cluster check` (the orchestrator image, the run's volumes and securityContext). For each
directory it creates a scratch file, takes the exclusive fcntl.flock the run lock takes (ledger.py), and
writes then reads back `--size-mib` with fsync. Each failure is one line naming the problem: EACCES
with the process's UID/GID and the mount's owner and mode (RWX CSI drivers often ignore fsGroup), or a
file system without flock. Exit 0 when every directory passes, 1 otherwise.

The read-back is cold where the kernel allows it (the scratch file's pages are dropped first), since it
sizes the startup probes: `--hf-home DIR` also lists the model snapshots cached there with their
sizes, and the last line (`report {json}`) carries the figures for `cluster check`
(services/orchestrator/startup_sizing.py).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from videophy_bench.common.arguments import Parser

SCRATCH = ".videophy-preflight-{pid}"
CHUNK = 1 << 20


@dataclass(frozen=True)
class VolumeReport:
    path: str
    ok: bool
    message: str
    write_mb_s: float = 0.0
    read_mb_s: float = 0.0


def _owner(path: Path) -> str:
    st = path.stat()
    return f"owned by {st.st_uid}:{st.st_gid} mode {st.st_mode & 0o7777:04o}"


def check_volume(path: str | Path, size_mib: int = 64) -> VolumeReport:
    root = Path(path)
    who = f"uid {os.getuid()} gid {os.getgid()} (groups {','.join(map(str, os.getgroups())) or '-'})"
    if not root.is_dir():
        return VolumeReport(str(root), False, f"{root}: not a directory (is the volume mounted?)")
    scratch = root / SCRATCH.format(pid=os.getpid())
    try:
        fd = os.open(scratch, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    except PermissionError:
        return VolumeReport(str(root), False, f"{root}: EACCES writing as {who}; the mount is {_owner(root)} "
                            "(fsGroup is ignored by many RWX drivers: see docs/deploy.md, 'Shared volumes')")
    except OSError as exc:
        return VolumeReport(str(root), False, f"{root}: cannot create a file: {exc.strerror or exc}")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError as exc:
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                code = errno.errorcode[exc.errno]
                return VolumeReport(str(root), False, f"{root}: flock unsupported ({code}); "
                                    "the run lock needs it (NFSv4.1, CephFS, EFS: see docs/deploy.md)")
            return VolumeReport(str(root), False, f"{root}: flock failed: {exc.strerror or exc}")
        block = os.urandom(CHUNK)
        start = time.perf_counter()
        for _ in range(size_mib):
            os.write(fd, block)
        os.fsync(fd)
        write_s = time.perf_counter() - start
        if hasattr(os, "posix_fadvise"):  # read from the storage, not from the pages just written
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.lseek(fd, 0, os.SEEK_SET)
        start = time.perf_counter()
        while os.read(fd, CHUNK):
            pass
        read_s = time.perf_counter() - start
    except OSError as exc:
        return VolumeReport(str(root), False, f"{root}: I/O failed: {exc.strerror or exc}")
    finally:
        os.close(fd)
        scratch.unlink(missing_ok=True)
    w, r = size_mib / max(write_s, 1e-9), size_mib / max(read_s, 1e-9)
    text = f"{root}: ok as {who}: write {w:.0f} MiB/s (fsync), read {r:.0f} MiB/s (cold)"
    return VolumeReport(str(root), True, text, w, r)


def cached_models(hf_home: str | Path) -> dict[str, int]:
    """`repo@revision` -> bytes of each model snapshot in a Hugging Face cache (HF_HOME/hub)."""
    out: dict[str, int] = {}
    for repo_dir in sorted((Path(hf_home) / "hub").glob("models--*")):
        repo = repo_dir.name.removeprefix("models--").replace("--", "/")
        for snap in sorted((repo_dir / "snapshots").glob("*")):
            seen: set[Path] = set()
            total = 0
            for f in snap.rglob("*"):
                real = f.resolve()
                if real.is_file() and real not in seen:  # snapshot files are links to shared blobs
                    seen.add(real)
                    total += real.stat().st_size
            out[f"{repo}@{snap.name}"] = total
    return out


REPORT_PREFIX = "report "


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m videophy_bench.orchestrator.volume_check", allow_abbrev=False,
               description="Write, flock and measure throughput on each directory (the shared volumes).")
    p.add_argument("paths", nargs="+", help="mount points to check, e.g. /data /cache/hf")
    p.add_argument("--size-mib", type=int, default=256, help="MiB written and read back per volume")
    p.add_argument("--hf-home", default=None, help="also list the model snapshots cached under this HF_HOME")
    args = p.parse_args(argv)
    reports = [check_volume(path, args.size_mib) for path in args.paths]
    for rep in reports:
        print(("ok    " if rep.ok else "FAIL  ") + rep.message, file=sys.stdout if rep.ok else sys.stderr)
    models = cached_models(args.hf_home) if args.hf_home else {}
    for key, size in models.items():
        print(f"model {key}: {size / 2**30:.1f} GiB in the cache")
    report = {"volumes": [r.__dict__ for r in reports], "models": models}
    print(REPORT_PREFIX + json.dumps(report), flush=True)
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
