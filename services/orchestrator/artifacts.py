"""Artifact checks the orchestrator makes itself before trusting a video: present, sha256, decodable."""

from __future__ import annotations

from pathlib import Path

from videophy_bench.common.errors import PathEscape
from videophy_bench.common.storage import Storage, sha256_file


class ArtifactError(RuntimeError):
    """The video is missing, differs from its recorded sha256, or does not decode."""


def _probe(path: Path) -> None:
    """Full decode (every frame), in process with PyAV (fast; no fork while gRPC threads run), else
    imageio-ffmpeg. One decoder thread: calls already run in parallel on a thread pool, and FFmpeg's
    automatic frame threading would start threads per file, which costs more than a short video's decode."""
    try:
        import av
    except ImportError:
        from videophy_bench.common.video import CorruptVideo, probe_mp4

        try:
            probe_mp4(path)
        except CorruptVideo as exc:
            raise ArtifactError(str(exc)) from exc
        return
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "NONE"
            stream.codec_context.thread_count = 1
            frames = 0
            for _ in container.decode(stream):
                frames += 1
            if not frames:
                raise ArtifactError(f"{path}: no frames")
    except (av.FFmpegError, IndexError, ValueError, OSError) as exc:  # IndexError: no video stream
        raise ArtifactError(f"{path}: cannot decode ({exc})") from exc


def verify(storage: Storage, uri: str, sha256: str, *, decode: bool = True) -> Path:
    """Return the artifact's path when intact; raise ArtifactError otherwise. Blocking (use a thread)."""
    try:
        path = storage.resolve(uri)
    except PathEscape as exc:
        raise ArtifactError(str(exc)) from exc
    if not path.is_file() or path.stat().st_size == 0:
        raise ArtifactError(f"{uri}: missing or empty")
    actual = sha256_file(path)
    if actual != sha256:
        raise ArtifactError(f"{uri}: sha256 {actual[:12]}... does not match the recorded {sha256[:12]}...")
    if decode:
        _probe(path)
    return path
