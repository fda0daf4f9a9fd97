"""Which frames of a video a judge over an endpoint sees, as one documented rule (torch-free: the
orchestrator builds, checks and forwards it before anything starts).

The rule (docs/evaluator.md, "The VLM judge"): the video is decoded with decord, as the AutoEval decodes
it; `frames` indices come from the official `get_index` over its frame count (segment midpoints;
`frames=32` gives exactly the AutoEval's indices; indices repeat when the video has fewer frames);
each frame keeps its aspect ratio and is shrunk (bicubic, never enlarged) so that its longer side is at
most `max_side` pixels; it is sent as a lossless PNG (or a JPEG at quality 90) data URL.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from videophy_bench.common.cli_fields import add_cli_args, cli_field, cli_values

IMAGE_FORMATS = ("png", "jpeg")
MAX_FRAMES = 64  # a request of 64 images is already far beyond what VLM servers accept by default
JPEG_QUALITY = 90


FRAMES = "frames of a judge over an endpoint (openai-vlm; part of its configuration)"


@dataclass(frozen=True)
class FrameRule:
    frames: int = cli_field("--judge-frames", "frames sent per video (official get_index; 32 = the "
                            "AutoEval's frames)", FRAMES, env=True, dest="judge_frames", default=8, type=int)
    max_side: int = cli_field("--judge-frame-side", "longer side of each frame in pixels (aspect kept, never "
                              "enlarged)", FRAMES, env=True, dest="judge_frame_side", default=448, type=int)
    image_format: str = cli_field("--judge-image-format", "png (lossless) or jpeg (quality 90)", FRAMES,
                                  env=True, dest="judge_image_format", default="png", choices=IMAGE_FORMATS)

    def __post_init__(self) -> None:
        if not 1 <= self.frames <= MAX_FRAMES:
            raise ValueError(f"--judge-frames {self.frames}: must be in 1..{MAX_FRAMES}")
        if self.max_side < 16:
            raise ValueError(f"--judge-frame-side {self.max_side}: must be >= 16")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"--judge-image-format {self.image_format}: choose {', '.join(IMAGE_FORMATS)}")

    @classmethod
    def from_cli_args(cls, args: argparse.Namespace) -> FrameRule:
        """The rule the flags give; ValueError (a usage error) names a bad one."""
        return cls(**cli_values(cls, args))

    def describe(self) -> str:
        """The rule in a few words (part of the judge's revision, so runs with other frames never mix)."""
        return f"frames={self.frames}:get_index side<={self.max_side} {self.image_format}"

    def argv(self) -> list[str]:
        return ["--judge-frames", str(self.frames), "--judge-frame-side", str(self.max_side),
                "--judge-image-format", self.image_format]


def add_frame_flags(parser: argparse.ArgumentParser, groups: dict[str, Any] | None = None) -> dict[str, Any]:
    return add_cli_args(FrameRule, parser, groups)
