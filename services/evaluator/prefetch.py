"""Decode and normalise videos on CPU threads while the accelerator works on earlier videos."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch

from videophy_bench.evaluator.model.frames import NUM_FRAMES, PixelNormalizer, decode_video


@dataclass(frozen=True)
class PreparedVideo:
    pixels: torch.Tensor  # float32 [3, T, 224, 224]
    frame_indices: list[int]
    total_frames: int
    decode_seconds: float


def prepare_video(path: str, normalizer: PixelNormalizer, num_frames: int = NUM_FRAMES) -> PreparedVideo:
    start = time.perf_counter()
    decoded = decode_video(path, num_frames)
    pixels = normalizer.to_pixels(decoded.frames)
    return PreparedVideo(pixels, decoded.indices, decoded.total_frames, time.perf_counter() - start)


class FramePrefetcher:
    """A small thread pool; ``submit`` returns a future whose ``result()`` re-raises decode errors."""

    def __init__(self, normalizer: PixelNormalizer, workers: int = 2, num_frames: int = NUM_FRAMES) -> None:
        self.normalizer = normalizer
        self.num_frames = num_frames
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="frames")

    def submit(self, path: str) -> Future[PreparedVideo]:
        return self._pool.submit(prepare_video, path, self.normalizer, self.num_frames)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
