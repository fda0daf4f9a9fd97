"""videophy_bench.common.video: MP4 encode/decode round trip, and corrupt files are recognised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from videophy_bench.common.video import CorruptVideo, decode_mp4, encode_mp4, probe_mp4, to_uint8


def _smooth(frames: int = 9, h: int = 32, w: int = 48) -> np.ndarray:
    """A moving colour gradient: easy for H.264, so the round trip is close."""
    t, y, x = np.meshgrid(
        np.linspace(0, 1, frames), np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij"
    )
    return np.stack([(x + t) % 1.0, y, np.full_like(x, 0.5)], -1).astype(np.float32)


def test_to_uint8_rounds_and_clips() -> None:
    out = to_uint8(np.array([-0.5, 0.0, 0.5, 1.0, 2.0], dtype=np.float32))
    assert out.tolist() == [0, 0, 128, 255, 255]


def test_round_trip_keeps_count_size_fps_and_content(tmp_path: Path) -> None:
    frames = _smooth()
    path = tmp_path / "v.mp4"
    encode_mp4(frames, path, fps=16)
    decoded, meta = decode_mp4(path)
    assert decoded.shape == (9, 32, 48, 3) and decoded.dtype == np.uint8
    assert (meta.frames, meta.width, meta.height, meta.fps) == (9, 48, 32, 16.0)
    assert meta.duration_s == pytest.approx(9 / 16)
    assert np.abs(decoded.astype(float) - to_uint8(frames)).mean() < 4
    assert probe_mp4(path) == meta


def test_encode_refuses_bad_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        encode_mp4(np.zeros((9, 32, 32), np.float32), tmp_path / "x.mp4", fps=8)
    with pytest.raises(ValueError):
        encode_mp4(np.zeros((0, 32, 32, 3), np.float32), tmp_path / "x.mp4", fps=8)


@pytest.mark.parametrize("content", [b"", b"not an mp4 at all", None])
def test_corrupt_or_missing_video_is_reported(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CorruptVideo):
        decode_mp4(path)


def test_truncated_video_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    encode_mp4(_smooth(), path, fps=8)  # +faststart: the index is at the front, frames behind it
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(CorruptVideo):
        decode_mp4(path)
