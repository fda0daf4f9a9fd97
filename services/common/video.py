"""MP4 encoding and probing through imageio-ffmpeg (libx264, yuv420p), shared by every service."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# imageio-ffmpeg starts ffmpeg with preexec_fn=os.setpgrp unless this is set. A preexec_fn forces a plain
# fork() that runs Python in the child, which Python documents as unsafe with threads: in our servers
# (gRPC, torch and the device thread all running) the child intermittently segfaulted or deadlocked
# before exec, so the MP4 write or read failed or hung (seen in tests/generator; imageio-ffmpeg #58).
# Without it, subprocess uses vfork/exec. Set at import, before any thread of ours calls ffmpeg.
os.environ["IMAGEIO_FFMPEG_NO_PREVENT_SIGINT"] = "1"

# The official Wan code saves with imageio's libx264 at quality 8 (crf ~10); keep that default so
# the judge sees what the official pipeline would have written.
DEFAULT_QUALITY = 8.0


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] (diffusers `output_type="np"`) -> uint8, rounding to nearest."""
    if frames.dtype == np.uint8:
        return frames
    return np.clip(np.rint(frames.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def encode_mp4(frames: np.ndarray, path: Path, fps: int, quality: float = DEFAULT_QUALITY) -> None:
    """Write (F, H, W, 3) frames as H.264 yuv420p MP4 at `path` (caller makes it atomic)."""
    import imageio_ffmpeg

    frames = to_uint8(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"expected (F, H, W, 3) frames, got {frames.shape}")
    _, h, w, _ = frames.shape
    writer = imageio_ffmpeg.write_frames(
        str(path), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p", quality=quality,
        macro_block_size=1, output_params=["-movflags", "+faststart", "-f", "mp4"],
        ffmpeg_log_level="error",
    )
    writer.send(None)
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
    finally:
        writer.close()


@dataclass(frozen=True)
class VideoMeta:
    frames: int
    fps: float
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps if self.fps else 0.0


class CorruptVideo(ValueError):
    """The file is not a decodable video (truncated, empty, not an MP4...)."""


def decode_mp4(path: Path) -> tuple[np.ndarray, VideoMeta]:
    """Decode every frame as uint8 (F, H, W, 3); raises CorruptVideo when it cannot be decoded."""
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise CorruptVideo(f"{path}: missing or empty")
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = reader.__next__()
        w, h = meta["size"]
        frames = [np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3) for buf in reader]
    except (RuntimeError, OSError, StopIteration, KeyError, ValueError) as exc:
        raise CorruptVideo(f"{path}: cannot decode ({exc})") from exc
    if not frames:
        raise CorruptVideo(f"{path}: no frames")
    return np.stack(frames), VideoMeta(len(frames), float(meta.get("fps") or 0.0), w, h)


def probe_mp4(path: Path) -> VideoMeta:
    """Full decode (catches truncation that container metadata alone would miss)."""
    return decode_mp4(path)[1]
